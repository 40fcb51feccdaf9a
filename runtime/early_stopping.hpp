#pragma once
// Early stopping across the jobs of a run (successive halving, ASHA, ...): a rule the runtime
// consults after every validation of every job. The runtime serialises all calls (they come from
// one actor), so a rule needs no locking. A job told to stop ends with JobStatus::stopped, its
// shard state is released at once and the devices go to the remaining jobs.
#include <cstdint>
#include <string>

namespace hydra {

enum class StopDecision : std::uint8_t {
  go_on,  // keep training
  stop,   // end the job now
  wait,   // the rule needs other jobs' results first: ask decide() again later
};

class EarlyStopping {
 public:
  virtual ~EarlyStopping() = default;
  // Every job of the run, before any report.
  virtual void add_job(const std::string& job) = 0;
  // A job validated after `step` training steps (of `total_steps`).
  virtual void report(const std::string& job, std::int64_t step, std::int64_t total_steps,
                      double val_loss, double val_accuracy) = 0;
  // The decision for the job's last report. `wait` parks the job (its devices go to other jobs);
  // the runtime asks again for every parked job after each report and each job end.
  virtual StopDecision decide(const std::string& job) = 0;
  // A job ended (finished, failed or stopped): a synchronous rule must not wait for it any more.
  virtual void job_ended(const std::string& job) = 0;
  // Why `job` was stopped, for its JobResult (e.g. "ASHA rung 1 (step 200): 0.71 below the top
  // 1/3 (0.78)").
  virtual std::string reason(const std::string& job) const = 0;
};

}  // namespace hydra
