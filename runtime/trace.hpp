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
  std::string device;  // "cpu:0", "cuda:1"
  std::string job;     // job name
  int shard = -1;
  std::string kind;  // "forward", "backward", "update", "load", "store", "eval"
  double start = 0;  // seconds since the trace's origin
  double end = 0;
  std::size_t bytes = 0;  // bytes moved (transfers)
};

// The device name of events the host runs itself (the all-reduce and all-gather of data-parallel
// jobs): shown in the Chrome trace and the Gantt chart, never listed by utilisation().
inline constexpr const char* kHostLane = "host";
// forward, backward, update, eval: the kinds that count as busy time in utilisation().
bool is_compute_kind(const std::string& kind);
// Orders device names by type, then numerically by index: "cpu:0" < "cpu:2" < "cpu:10" <
// "cuda:0". The order in which reports list devices.
bool device_name_less(const std::string& a, const std::string& b);

class Trace {
 public:
  Trace();
  double now() const;  // seconds since construction (steady clock)
  void add(TraceEvent e);
  std::vector<TraceEvent> events() const;
  // Busy fraction of each device (not kHostLane) over [first event start, last event end];
  // compute kinds only (forward, backward, update, eval), overlapping events counted once.
  std::vector<std::pair<std::string, double>> utilisation() const;
  // The same busy fraction over the window [from, to] (seconds since the origin), e.g. the last
  // few seconds for a live display; every device seen so far is listed (0 when idle or when the
  // window is empty).
  std::vector<std::pair<std::string, double>> utilisation(double from, double to) const;
  void write_chrome_json(const std::string& path) const;  // throws hydra::Error on I/O failure
  // The Chrome trace as a string: {"traceEvents": [...], "displayTimeUnit": "ms"}. One process
  // (pid) per device, named by process_name metadata; one thread (tid) per job and device
  // ("<job>"), further lanes when a job's events on that device overlap ("<job> #2") and a
  // separate lane for its transfers ("<job> transfers"). Complete events (ph "X") named
  // "<job> s<shard> <kind>" with ts/dur in microseconds and args {job, shard, kind, bytes}.
  std::string chrome_json() const;

 private:
  std::int64_t origin_ns_;
  mutable std::mutex mutex_;
  std::vector<TraceEvent> events_;
};

}  // namespace hydra
