#pragma once
// Predicting a run of JobSpecs with the execution simulator (runtime/simulator.hpp), and checking
// the prediction against the same run on the actor runtime.
//
//   CostModel costs;
//   SimJob j = to_sim_job(spec, shard_budget, 0, costs);      // partitioned as the runtime does
//   SimulationCheck c = check_simulation("4 MLPs", jobs, 2, 0, "lrtf", costs, latency);
//   c.measured, c.simulated (cost model), c.replayed (the run's own task times)
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "actors/job_spec.hpp"
#include "runtime/cost_model.hpp"
#include "runtime/job_result.hpp"
#include "runtime/planner.hpp"
#include "runtime/simulator.hpp"

namespace hydra {

// The simulator's view of `spec`: its model cut as the runtime cuts it for `shard_budget` bytes
// per shard (spec.shards, else `run_shards` when > 0, else the fewest that fit), each distinct
// shard measured once on a virtual CPU device through `costs`, with the steps, evaluation
// passes and separate update tasks (clipping) the runtime will run. Loads the job's data.
SimJob to_sim_job(const JobSpec& spec, std::size_t shard_budget, std::size_t run_shards,
                  CostModel& costs);

// The planner's view of `spec` trained on `data`: its model cut as the runtime cuts it for
// `shard_budget` bytes per shard (spec.shards, else `run_shards` when > 0, else the fewest that
// fit) and, when the count is not fixed, with up to `extra_options` more shards (each a
// ShardOption with the partitioner's cut points and memory), each distinct shard measured once on
// `device` through `costs`; steps, evaluation and clipping as the runtime runs them. Throws
// hydra::Error when the model cannot be cut to fit.
PlanJob to_plan_job(const JobSpec& spec, const DataSplits& data, std::size_t shard_budget,
                    std::size_t run_shards, std::size_t extra_options, Device device,
                    CostModel& costs);

// Per-task runtime overhead (actor messaging) added to simulated tasks: for cost-model and for
// replayed task times.
struct SimLatency {
  double model = 0, replay = 0;
};

// One run measured beside its two predictions.
struct SimulationCheck {
  std::string name;
  double measured = 0;   // makespan of the real run: first to last trace event
  double simulated = 0;  // predicted with the cost model's task times
  double replayed = 0;   // predicted with the run's own task times (median per job/shard/kind)
  std::uint64_t tasks = 0;
  double cores = 0;             // free cores measured just before the run
  std::vector<JobResult> jobs;  // the real run's results
  double ratio() const { return simulated / measured; }
  double replay_ratio() const { return replayed / measured; }
};

// Runs `jobs` for real with hydra::run on `devices` virtual CPU devices (cpu:0..; `budget` bytes
// each, 0: unlimited) and policy `policy`, and in the simulator twice (CPU devices sharing the
// cores measured free just before the run).
SimulationCheck check_simulation(const std::string& name, const std::vector<JobSpec>& jobs,
                                 int devices, std::size_t budget, const std::string& policy,
                                 CostModel& costs, SimLatency latency = {});

// The runtime's own cost per task, from a check of a one-job run on one device: the measured
// makespan minus the simulated one, spread over its tasks.
SimLatency calibrate_latency(const SimulationCheck& one_job_one_device);

// A synthetic-data MLP job (128 features, 10 classes, `hidden` layers of `width`, batch 128,
// `steps` steps; SGD with momentum, or AdamW) for benchmarks and simulator checks.
JobSpec synthetic_mlp_job(const std::string& name, std::int64_t width, int hidden,
                          std::int64_t steps, std::size_t shards, bool adamw = false);

}  // namespace hydra
