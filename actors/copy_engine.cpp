#include "actors/copy_engine.hpp"

#include "kernels/core/cuda_api.hpp"

namespace hydra::actors {

CopyEngine::CopyEngine(Device device) : device_(device), thread_([this] { loop(); }) {}

CopyEngine::~CopyEngine() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void CopyEngine::loop() {
  if (device_.is_cuda()) {
    try {
      cuda::set_device(device_.index);
    } catch (...) {
      // The tasks themselves report the error when they touch the device.
    }
  }
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job();
  }
}

}  // namespace hydra::actors
