#pragma once
// A lower bound on the makespan of a run, from the task times a trace measured:
// max(total compute / devices, the longest job's compute). Compute means the events of compute
// kinds (is_compute_kind: forward, backward, update, eval); transfers are not counted, so the
// bound holds however copies overlap. The longest-job term assumes each job's tasks run one after
// another (the default training flow: one task per job at a time); a job whose tasks overlap
// (pipelined micro-batches, data-parallel replicas) can finish sooner than its compute sum.
#include <string>
#include <vector>

#include "runtime/trace.hpp"

namespace hydra {

struct TraceLowerBound {
  double total_compute = 0;      // seconds of compute over all devices
  double per_device = 0;         // total_compute / devices
  double longest_job = 0;        // the largest per-job compute sum
  std::string longest_job_name;  // its job ("" when the trace has no compute)
  double bound = 0;              // max(per_device, longest_job)
};

// Throws hydra::Error when devices < 1.
TraceLowerBound trace_lower_bound(const std::vector<TraceEvent>& trace, int devices);

}  // namespace hydra
