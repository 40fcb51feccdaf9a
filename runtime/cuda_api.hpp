#pragma once
// Moved to kernels/core/cuda_api.hpp; this forwarding header goes away once every include is updated.
#include "kernels/core/cuda_api.hpp"
