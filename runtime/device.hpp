#pragma once
// Moved to kernels/core/device.hpp; this forwarding header goes away once every include is updated.
#include "kernels/core/device.hpp"
