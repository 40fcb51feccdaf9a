#pragma once
// The process's resident memory (RSS), read from /proc/self/statm, and a background sampler that
// records it every period, for benchmarks that check memory use stays flat over a long run.
//
//   RssSampler sampler(std::chrono::seconds(5));   // first sample at once
//   ... work ...
//   sampler.stop();
//   for (const RssSample& s : sampler.samples()) std::printf("%.1f s %zu\n", s.seconds, s.bytes);
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

namespace hydra {

// Resident set size of this process in bytes (/proc/self/statm, second field x page size).
// Throws hydra::Error when /proc/self/statm cannot be read or parsed (non-Linux systems).
std::size_t resident_bytes();

struct RssSample {
  double seconds = 0;     // since the sampler started
  std::size_t bytes = 0;  // resident_bytes() at that time
};

// Samples resident_bytes() on its own thread: once at construction, then every `period`, and once
// more at stop() (or destruction).
class RssSampler {
 public:
  explicit RssSampler(std::chrono::milliseconds period);
  ~RssSampler();
  RssSampler(const RssSampler&) = delete;
  RssSampler& operator=(const RssSampler&) = delete;

  void stop();                             // takes a last sample and joins the thread (idempotent)
  std::vector<RssSample> samples() const;  // so far, in time order

 private:
  void sample();
  std::chrono::milliseconds period_;
  std::chrono::steady_clock::time_point start_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::vector<RssSample> samples_;
  std::thread thread_;
};

}  // namespace hydra
