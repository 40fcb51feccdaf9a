#pragma once
// Where and how a kernel runs: the device, the stream its work is queued on, and the backend.
#include <cstdint>

#include "kernels/core/device.hpp"
#include "kernels/core/stream.hpp"

namespace hydra {

class Backend;

struct ExecContext {
  Device device;
  Stream* stream;  // never null; belongs to `device`

  Backend& backend() const;
  // Context on `device`'s default stream.
  static ExecContext on(Device device);
  void synchronize() const { stream->synchronize(); }
};

}  // namespace hydra
