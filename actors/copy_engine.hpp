#pragma once
// A device's worker thread running queued jobs in order: the device actor's copy thread (loads
// and prefetches on the copy stream), so loads overlap the running task's compute (double
// buffering). The compute thread takes its tasks from the device's own queue instead
// (device_actor.cpp).
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include "kernels/core/device.hpp"

namespace hydra::actors {

class CopyEngine {
 public:
  explicit CopyEngine(Device device);
  ~CopyEngine();  // finishes queued work, then joins
  CopyEngine(const CopyEngine&) = delete;
  CopyEngine& operator=(const CopyEngine&) = delete;

  // Runs `fn` on the thread after everything queued before it.
  template <class F>
  auto submit(F fn) -> std::future<decltype(fn())> {
    using R = decltype(fn());
    auto task = std::make_shared<std::packaged_task<R()>>(std::move(fn));
    auto fut = task->get_future();
    {
      std::lock_guard lock(mutex_);
      queue_.emplace_back([task] { (*task)(); });
    }
    cv_.notify_one();
    return fut;
  }

 private:
  void loop();
  Device device_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace hydra::actors
