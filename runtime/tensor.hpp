#pragma once
// Moved to kernels/core/tensor.hpp; this forwarding header goes away once every include is updated.
#include "kernels/core/tensor.hpp"
