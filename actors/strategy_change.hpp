#pragma once
// One change of a running job's parallel strategy, decided by re-planning (actors/replanner.hpp)
// when another job ended, and applied by the job at its next step boundary
// (actors/strategy_switch.hpp). RunReport::strategy_changes lists them in the order they were
// applied; `hydra run` prints them.
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace hydra {

struct StrategyChange {
  std::string job;
  std::string from, to;   // JobStrategy::describe(): "2 shards, 2 replicas, device 1"
  std::string reason;     // the job ends that triggered the re-plan: "job a stopped early (...)"
  double decided = 0;     // seconds since the run's trace origin, when the re-plan chose it
  double applied = 0;     // when the job switched (before its next step)
  std::int64_t step = 0;  // training steps the job had done when it switched
  // The simulator's makespan of the work left (from `decided`) with the strategies before and
  // after the re-plan.
  double predicted_before = 0, predicted_after = 0;
};

// One line per change: "  3.21 s  mlp-b at step 12: 1 shard, device 0 -> 1 shard, 2 replicas
// (predicted 4.10 s -> 2.30 s left; job mlp-a stopped early: ...)". Empty for no changes.
std::string format_strategy_changes(const std::vector<StrategyChange>& changes);

// The run's record of re-planning, written by the replanner and the jobs (thread-safe).
class StrategyLog {
 public:
  void add(StrategyChange change);
  void replanned(double search_seconds);  // one re-plan ran (changes or not)
  std::vector<StrategyChange> changes() const;
  int replans() const;
  double search_seconds() const;

 private:
  mutable std::mutex mutex_;
  std::vector<StrategyChange> changes_;
  int replans_ = 0;
  double search_seconds_ = 0;
};

}  // namespace hydra
