#pragma once
// Moved to kernels/core/memory_pool.hpp; this forwarding header goes away once every include is updated.
#include "kernels/core/memory_pool.hpp"
