#pragma once
// Moved to kernels/core/dtype.hpp; this forwarding header goes away once every include is updated.
#include "kernels/core/dtype.hpp"
