#pragma once
// Changing a running job's parallel strategy between two of its steps (re-planning, README
// "Re-planning during a run"). The shard count and cut stay; replicas, sharded data parallelism,
// micro-batches and device affinity may change:
//   1. with sharded data parallelism, the replicas' optimizer-state slices are gathered into
//      replica 0's whole parameters (as for a training-state file);
//   2. every replica's shard actors exit and new shard states and actors are spawned over the
//      same cut: the replicas' models are kept, new replicas get a model that copies replica 0's
//      parameters, optimizer state, step counts and layer state, surplus ones are dropped;
//   3. with sharded data parallelism after the switch, replica 0's whole optimizer state is
//      scattered into the new slices.
// All state lives in home memory and no task of the job is in flight between steps, so the
// switched job continues with exactly the parameters and optimizer state it had (the
// in-memory equivalent of saving a training state and resuming it with other strategy fields).
// Prefetch hints still naming an old shard state never match a new task (the scheduler matches
// by shard state), so nothing stale is loaded.
#include <vector>

#include "actors/replanner.hpp"
#include "actors/training_program.hpp"

namespace hydra::actors {

// The strategy `spec`'s fields describe, for a model cut into `shards` shards.
JobStrategy strategy_of(const JobSpec& spec, int shards);

// A switch on trial (StrategyOrder::trial_steps > 0): the step times before and after it.
struct StrategyTrial {
  enum class Phase { none, before, after } phase = Phase::none;
  StrategyOrder order;
  JobStrategy previous;               // the strategy to go back to
  std::vector<double> before, after;  // seconds per step
};

// The job's next step starts: a pending order from the replanner switches now (trial_steps 0)
// or starts a trial.
void begin_step(JobContext& job);
// The job finished a step of `seconds` (wall time): a trial switches after its `before` steps
// and, after its `after` steps, switches back when the median step did not get faster (a
// StrategyChange "measured ...: switched back", and the replanner is told).
void end_step(JobContext& job, double seconds);

// Switches the job to `order.strategy` (its shard count is ignored). Call only between steps.
// Records a StrategyChange in the run's log and a trace event of kind "strategy" on the host
// lane. Throws hydra::Error for a strategy the job cannot run (batch size not divisible, device
// out of range), changing nothing.
void switch_strategy(JobContext& job, const StrategyOrder& order);

}  // namespace hydra::actors
