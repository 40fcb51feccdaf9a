#pragma once
// Moved to kernels/core/error.hpp; this forwarding header goes away once every include is updated.
#include "kernels/core/error.hpp"
