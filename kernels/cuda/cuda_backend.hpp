#pragma once
// The CUDA backend (cuBLAS, cuDNN and Hydra's own kernels). Only built when nvcc is found.
#include "kernels/backend.hpp"

namespace hydra {

// The backend instance for GPU `device` (one per device, created on first use).
Backend& cuda_backend(int device);

}  // namespace hydra
