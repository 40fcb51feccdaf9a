#include "runtime/trace_lower_bound.hpp"

#include <algorithm>
#include <map>

#include "kernels/core/error.hpp"

namespace hydra {

TraceLowerBound trace_lower_bound(const std::vector<TraceEvent>& trace, int devices) {
  check(devices >= 1,
        "trace_lower_bound: devices must be at least 1, got " + std::to_string(devices));
  TraceLowerBound b;
  std::map<std::string, double> per_job;
  for (const TraceEvent& e : trace) {
    if (!is_compute_kind(e.kind)) continue;
    const double d = std::max(0.0, e.end - e.start);
    b.total_compute += d;
    per_job[e.job] += d;
  }
  for (const auto& [job, seconds] : per_job)
    if (seconds > b.longest_job) b.longest_job = seconds, b.longest_job_name = job;
  b.per_device = b.total_compute / devices;
  b.bound = std::max(b.per_device, b.longest_job);
  return b;
}

}  // namespace hydra
