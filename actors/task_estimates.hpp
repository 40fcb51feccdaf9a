#pragma once
// Task-time estimates for the scheduling policy, refined from measured task times: for each
// (job, shard, kind) an exponential moving average of the compute seconds measured so far;
// before a task has been measured, its FLOPs (forward; backward counts twice) at the speed
// measured so far over all tasks (FLOPs per second; 10 GFLOP/s before any measurement). A
// job's remaining time is its remaining steps times the estimated time of one step.
#include <cstdint>
#include <map>
#include <tuple>
#include <vector>

#include "actors/messages.hpp"
#include "runtime/scheduling_policy.hpp"

namespace hydra::actors {

class MeasuredEstimates : public TaskEstimates {
 public:
  // A task became ready: learn the job's shape and progress.
  void note(const ShardTask& t);
  // A task finished after `seconds` of compute.
  void observe(const ShardTask& t, double seconds);
  void forget(int job);

  double task_seconds(int job, int shard, TaskKind kind) const override;
  double remaining_seconds(int job) const override;

 private:
  struct Job {
    int shards = 1;
    std::vector<double> flops;  // forward FLOPs per shard (0: unknown)
    std::int64_t total_steps = 0, step = 0;
    bool fused = true;
  };
  std::map<std::tuple<int, int, int>, double> ema_;
  std::map<int, Job> jobs_;
  double measured_seconds_ = 0, measured_flops_ = 0;
};

}  // namespace hydra::actors
