#pragma once
// Moved to kernels/core/stream.hpp; this forwarding header goes away once every include is updated.
#include "kernels/core/stream.hpp"
