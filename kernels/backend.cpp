#include "kernels/backend.hpp"

#include "kernels/core/cuda_api.hpp"

#ifdef HYDRA_WITH_CUDA
#include "kernels/cuda/cuda_backend.hpp"
#endif

namespace hydra {

Backend& backend_for(Device device) {
  if (!device.is_cuda()) return cpu_backend();
#ifdef HYDRA_WITH_CUDA
  if (device.index < 0 || device.index >= cuda::device_count())
    throw Error("no such CUDA device: " + device.str() + " (" +
                std::to_string(cuda::device_count()) + " available)");
  return cuda_backend(device.index);
#else
  throw Error("device " + device.str() + " needs the CUDA backend, which was not built");
#endif
}

Backend& ExecContext::backend() const {
  return backend_for(device);
}

ExecContext ExecContext::on(Device device) {
  return ExecContext{device, &default_stream(device)};
}

}  // namespace hydra
