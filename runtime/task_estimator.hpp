#pragma once
// Per-task time estimates for the scheduling policies. They start from FLOPs and an assumed
// device speed and are refined with measured task durations: an exponential moving average per
// (job, shard, kind), the first measurement replacing the guess. Until measured, a backward is
// estimated as twice its shard's forward estimate (measured or not) and an update as a small
// constant. Not thread-safe (used inside one actor).
//
// Jobs can also be added one at a time (add_job, e.g. as each job is partitioned; the indices
// need not be contiguous), and with Options::learn_speed the device speed used for tasks not
// measured yet is refined from the measurements: measured FLOPs over measured seconds of all
// recorded forward and backward tasks (a backward counting twice its shard's forward FLOPs).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "runtime/scheduling_policy.hpp"

namespace hydra {

class TaskEstimator : public TaskEstimates {
 public:
  struct Options {
    double ema_weight = 0.3;       // weight of a new measurement in the moving average
    double update_seconds = 1e-4;  // estimate of an update task until one is measured
    bool learn_speed = false;      // refine flops_per_second from measured tasks
  };

  // No jobs yet (add them with add_job); `flops_per_second` as in the constructor below.
  explicit TaskEstimator(double flops_per_second = 1e10);
  TaskEstimator(double flops_per_second, Options options);

  // shard_forward_flops[job][shard]: forward FLOPs of each shard for one minibatch;
  // steps_left[job]: optimizer steps the job still has to run (counting the current one);
  // flops_per_second: assumed device speed for the initial estimates.
  TaskEstimator(std::vector<std::vector<double>> shard_forward_flops,
                std::vector<std::int64_t> steps_left, double flops_per_second);
  TaskEstimator(std::vector<std::vector<double>> shard_forward_flops,
                std::vector<std::int64_t> steps_left, double flops_per_second, Options options);

  double task_seconds(int job, int shard, TaskKind kind) const override;
  // steps_left x step_seconds minus the estimates of the tasks done in the current step; 0 once
  // the job finished.
  double remaining_seconds(int job) const override;

  // Adds job `job` (any index >= 0 not added yet): forward FLOPs of each shard for one minibatch
  // and the optimizer steps it has left. Throws hydra::Error if it exists or the values are
  // invalid.
  void add_job(int job, std::vector<double> shard_forward_flops, std::int64_t steps_left);
  bool has_job(int job) const;

  // A task of `job` took `seconds`; it counts as progress within the current step.
  void record(int job, int shard, TaskKind kind, double seconds);
  void step_done(int job);  // one step (all its tasks) finished: steps_left - 1, progress reset
  void set_steps_left(int job, std::int64_t n);
  void job_finished(int job);

  double step_seconds(int job) const;  // estimated forward + backward + update of all shards
  std::int64_t steps_left(int job) const;
  bool measured(int job, int shard, TaskKind kind) const;
  // The speed the estimates of unmeasured tasks use: flops_per_second, or with learn_speed the
  // measured one once a forward or backward of a shard with FLOPs was recorded.
  double flops_per_second() const;
  // Jobs added (by the constructor or add_job); with add_job, one more than the largest index.
  std::size_t jobs() const { return jobs_.size(); }
  std::size_t shards(int job) const;

 private:
  struct Estimate {
    double seconds = 0;
    bool measured = false;
  };
  struct Job {
    std::vector<std::vector<Estimate>> tasks;  // [shard][kind]
    std::vector<std::vector<bool>> done;       // [shard][kind] done in the current step
    std::vector<double> flops;                 // [shard] forward FLOPs of one minibatch
    std::int64_t steps_left = 0;
    bool finished = false;
    bool added = true;  // false: an index skipped by add_job
  };
  Job& job_at(int job);
  const Job& job_at(int job) const;
  void check_shard(int job, int shard) const;

  void add(Job& job, const std::vector<double>& shard_forward_flops, std::int64_t steps_left,
           std::size_t index);
  double forward_guess(const Job& j, std::size_t shard) const;
  double estimate(const Job& j, std::size_t shard, std::size_t kind) const;
  double step_seconds(const Job& j) const;

  std::vector<Job> jobs_;
  Options options_;
  double flops_per_second_ = 1e10;
  double measured_flops_ = 0, measured_seconds_ = 0;
};

}  // namespace hydra
