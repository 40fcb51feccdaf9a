#pragma once
// A thread-safe record of every shard task and transfer on every device, written as a Chrome
// trace (Perfetto-compatible JSON) and summarised as per-device utilisation.
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace hydra {

struct TraceEvent {
  std::string device;    // "cpu:0", "cuda:1"
  std::string job;       // job name
  int shard = -1;
  std::string kind;      // "forward", "backward", "update", "load", "store", "eval"
  double start = 0;      // seconds since the trace's origin
  double end = 0;
  std::size_t bytes = 0; // bytes moved (transfers)
};

class Trace {
 public:
  Trace();
  double now() const;  // seconds since construction (steady clock)
  void add(TraceEvent e);
  std::vector<TraceEvent> events() const;
  // Busy fraction of each device over [first event start, last event end] of the whole trace;
  // compute kinds only (forward, backward, update, eval), overlapping events counted once.
  std::vector<std::pair<std::string, double>> utilisation() const;
  void write_chrome_json(const std::string& path) const;  // throws hydra::Error on I/O failure

 private:
  std::int64_t origin_ns_;
  mutable std::mutex mutex_;
  std::vector<TraceEvent> events_;
};

}  // namespace hydra
