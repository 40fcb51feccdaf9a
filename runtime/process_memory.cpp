#include "runtime/process_memory.hpp"

#include <unistd.h>

#include <fstream>

#include "kernels/core/error.hpp"

namespace hydra {

std::size_t resident_bytes() {
  std::ifstream in("/proc/self/statm");
  check(static_cast<bool>(in), "resident_bytes: cannot open /proc/self/statm");
  std::size_t size_pages = 0, resident_pages = 0;
  in >> size_pages >> resident_pages;
  check(static_cast<bool>(in), "resident_bytes: cannot parse /proc/self/statm");
  const long page = sysconf(_SC_PAGESIZE);
  check(page > 0, "resident_bytes: unknown page size");
  return resident_pages * static_cast<std::size_t>(page);
}

RssSampler::RssSampler(std::chrono::milliseconds period)
    : period_(period), start_(std::chrono::steady_clock::now()) {
  check(period.count() > 0,
        "RssSampler: period must be positive, got " + std::to_string(period.count()) + " ms");
  sample();
  thread_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, period_, [this] { return stopping_; })) {
      lock.unlock();
      sample();
      lock.lock();
    }
  });
}

RssSampler::~RssSampler() {
  stop();
}

void RssSampler::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  sample();
}

void RssSampler::sample() {
  const std::size_t bytes = resident_bytes();
  const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::lock_guard lock(mutex_);
  samples_.push_back({t, bytes});
}

std::vector<RssSample> RssSampler::samples() const {
  std::lock_guard lock(mutex_);
  return samples_;
}

}  // namespace hydra
