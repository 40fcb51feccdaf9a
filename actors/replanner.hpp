#pragma once
// One actor per run with a plan and RuntimeOptions::replan (README "Re-planning during a run"):
// when jobs end (done, failed, or stopped early by the early-stopping rule), it re-plans the jobs
// still training from their steps done (runtime/planner replan) and tells each job whose
// strategy changes; the job switches at its next step boundary (actors/strategy_switch.hpp).
//
//   (rp_jobs_atom, std::vector<caf::actor>)  runtime -> replanner: the job actors, by index
//   (rp_shards_atom, int job, int shards)    job -> replanner: its model's shard count (built)
//   (rp_step_atom, int job, int64 step)      job -> replanner: steps done (after every step)
//   (rp_ended_atom, int job, string why)     job -> replanner: it ended ("job a stopped early:
//                                            ..."); a re-plan follows
//   (rp_order_atom, StrategyOrder)           replanner -> job: switch at a step boundary
//   (rp_rejected_atom, int job, string rejected, int replicas, bool sharded, int micro_batches,
//    int device_affinity)                    job -> replanner: the trial of `rejected` measured
//                                            slower, the job is back on the strategy given;
//                                            `rejected` is not ordered for it again
//
// Ends that arrive while a re-plan runs are handled together by the next one. A re-plan keeps
// every job's shard count (the model is not cut again: the scheduler's per-job task estimates
// are per shard) and may change replicas, sharded data parallelism, micro-batches and device
// affinity. Its plan is applied only when the simulator predicts the work left to finish at least
// `min_gain` (a fraction) and `min_gain_seconds` sooner than with the current strategies, so a
// run where nothing would gain records nothing and small predicted gains do not make jobs switch
// back and forth. The search is bounded (PlannerOptions::max_evaluations, time_limit_seconds) and
// runs on this actor, which is detached (its own thread): the scheduler and the jobs never wait for
// it.
#include <caf/all.hpp>

#include <memory>
#include <string>
#include <vector>

#include "actors/strategy_change.hpp"
#include "runtime/planner.hpp"
#include "runtime/trace.hpp"

namespace hydra::actors {

using rp_jobs_atom = caf::atom_constant<caf::atom("rpjobs")>;
using rp_shards_atom = caf::atom_constant<caf::atom("rpshards")>;
using rp_step_atom = caf::atom_constant<caf::atom("rpstep")>;
using rp_ended_atom = caf::atom_constant<caf::atom("rpended")>;
using rp_order_atom = caf::atom_constant<caf::atom("rporder")>;
using rp_now_atom = caf::atom_constant<caf::atom("rpnow")>;
using rp_rejected_atom = caf::atom_constant<caf::atom("rprejected")>;

struct ReplannerConfig {
  std::vector<PlanJob> jobs;         // per job of the run, in order (RunPlan::jobs)
  std::vector<SimDevice> devices;    // RunPlan::devices
  PlannerOptions planner;            // bounded search
  std::vector<JobStrategy> initial;  // the strategies the jobs start with (their JobSpecs)
  double min_gain = 0.05;
  double min_gain_seconds = 0.1;
  // Each order is tried (StrategyOrder::trial_steps): a switch that measures slower is undone.
  int trial_steps = 4;
  std::shared_ptr<Trace> trace;  // the run's clock
  std::shared_ptr<StrategyLog> log;
};

// A strategy a job switches to at its next step boundary (the shard count stays).
struct StrategyOrder {
  JobStrategy strategy;
  // 0: switch before the next step. n > 0: a trial (strategy_switch.hpp): time n steps with the
  // current strategy, switch, time n more (after one warm-up step), and switch back when the new
  // strategy's median step time is not lower (the simulator's prediction was wrong here).
  int trial_steps = 0;
  std::string reason;
  double decided = 0;
  double predicted_before = 0, predicted_after = 0;
};

// What one re-plan decided, from the jobs' state (runtime/planner only; no actors): the new
// strategy per job (`changed[j]` when it differs from `current[j]`), or none when the gain is
// below `min_gain`. Throws hydra::Error when a job's shard count is not one of its plan's options.
struct ReplanDecision {
  std::vector<JobStrategy> strategies;
  std::vector<bool> changed;
  double predicted_before = 0, predicted_after = 0;
  double search_seconds = 0;
  // predicted_after < (1 - min_gain) x predicted_before and at least min_gain_seconds less
  bool apply = false;
};
ReplanDecision decide_replan(const ReplannerConfig& config, const std::vector<JobStrategy>& current,
                             const std::vector<std::int64_t>& steps_done,
                             const std::vector<bool>& ended);

caf::behavior replanner_actor(caf::event_based_actor* self, ReplannerConfig config);

}  // namespace hydra::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(hydra::actors::StrategyOrder)
