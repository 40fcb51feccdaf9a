#pragma once
// Planning a run of JobSpecs without training it ("explain"): each job's model cut for the run's
// devices (the fewest shards that fit and a few more), every distinct shard measured once on the
// run's device kind (runtime/cost_model), and the strategy search (runtime/planner) over shards,
// data-parallel replicas (plain or sharded), GPipe micro-batches and device affinity, predicted
// with the execution simulator under Sharded-LRTF.
//
//   hydra::CostModel costs;
//   hydra::RunPlan p = hydra::plan_run(jobs, options, costs);
//   std::fputs(hydra::explain(p).c_str(), stdout);      // the table below
//   hydra::RunReport r = hydra::run(hydra::apply_plan(jobs, p), options);
//
// What apply_plan sets per job: shards, replicas, sharded_data_parallel, micro_batches and
// device_affinity (the JobSpec fields the runtime executes); the schedule itself stays the
// runtime's Sharded-LRTF. Re-planning during a run: pass the plan to the run as well,
//
//   options.plan = std::make_shared<hydra::RunPlan>(p);   // re-planning on (options.replan)
//
// and whenever jobs end (done, failed, stopped early) the jobs still training are planned again
// from their steps done (runtime/planner replan) and switch strategies at their next step
// boundary (actors/replanner.hpp, actors/strategy_switch.hpp; RunReport::strategy_changes).
#include <cstddef>
#include <string>
#include <vector>

#include "actors/hydra.hpp"
#include "runtime/cost_model.hpp"
#include "runtime/planner.hpp"

namespace hydra {

struct RunPlan {
  std::vector<PlanJob> jobs;       // per JobSpec: shard options (cuts, costs, memory)
  std::vector<SimDevice> devices;  // the run's devices as simulated
  PlannerOptions options;          // device_memory: the smallest budget (0: unlimited)
  Plan plan;                       // the chosen strategies and predictions
  std::string device_kind;         // where the shard costs were measured ("cpu", "cuda")
};

// Plans `jobs` for a run with `options` (its devices, or default_devices(); policy; shards).
// Loads each data_key once. `extra_shard_options`: shard counts tried beyond the fewest that
// fit. Throws hydra::Error for bad options or a job that cannot be cut to fit (naming it).
RunPlan plan_run(const std::vector<JobSpec>& jobs, const RuntimeOptions& options, CostModel& costs,
                 PlannerOptions planner = {}, std::size_t extra_shard_options = 2);
RunPlan plan_run(const std::vector<JobSpec>& jobs, const RuntimeOptions& options = {});

// A table: per job its strategy (shards with the first layer of each, replicas, sharded,
// micro-batches, device), predicted end and memory on a device; per device the predicted peak;
// then the predicted makespan beside the default strategies' and the lower bound.
std::string explain(const RunPlan& plan);

// `jobs` with the plan's strategy fields set (same order as planned).
std::vector<JobSpec> apply_plan(std::vector<JobSpec> jobs, const RunPlan& plan);

}  // namespace hydra
