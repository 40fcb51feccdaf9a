#pragma once
// Predicting a run of JobSpecs with the execution simulator (runtime/simulator.hpp), and checking
// the prediction against the same run on the actor runtime.
//
//   CostModel costs;
//   SimJob j = to_sim_job(spec, shard_budget, 0, costs);      // partitioned as the runtime does
//   CheckOptions o;  o.devices = 2;  o.overhead = measure_task_overhead();
//   SimulationCheck c = check_simulation("4 MLPs", jobs, o, costs);
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
// passes, separate update tasks (clipping) and strategy (replicas, sharded data parallelism,
// micro-batches, device affinity) the runtime will run. Loads the job's data. With
// `concurrent` > 1 each shard's contention is measured too (CostModel::contention: the shard run
// on up to `concurrent` devices at once, on copies of the model), for SimOptions::contention.
SimJob to_sim_job(const JobSpec& spec, std::size_t shard_budget, std::size_t run_shards,
                  CostModel& costs, int concurrent = 1);

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

// How a check runs: `devices` virtual CPU devices (cpu:0..) of `budget` bytes each (0:
// unlimited), scheduling `policy`, the real run `repeats` times (the median makespan counts).
struct CheckOptions {
  int devices = 2;
  std::size_t budget = 0;
  std::string policy = "lrtf";
  int repeats = 1;
  // The runtime's own seconds per task (SimOptions::submit_latency of the prediction and the
  // replay), measured apart from the runs predicted (task_overhead).
  double overhead = 0;
  // The earlier prediction, printed beside: shard times alone, CPU devices sharing the cores
  // found free before the run, the overhead fitted on a one-job run (calibrate_latency).
  SimLatency fitted;
};

// One run measured beside its predictions.
struct SimulationCheck {
  std::string name;
  double measured = 0;       // makespan of the real run (first to last trace event); median
  std::vector<double> runs;  // every real run's makespan, in order
  double simulated = 0;      // predicted: cost model times, contention, measured overhead
  double shared_cores = 0;   // the earlier prediction (CheckOptions::fitted)
  double replayed = 0;       // the run's own task times (mean per job/shard/kind), overhead
  std::uint64_t tasks = 0;
  double cores = 0;             // free cores measured just before the (first) run
  std::vector<JobResult> jobs;  // the median run's results
  double ratio() const { return simulated / measured; }
  double shared_cores_ratio() const { return shared_cores / measured; }
  double replay_ratio() const { return replayed / measured; }
  // How far apart the repeated runs were: (slowest - fastest) / median.
  double spread() const;
};

// Runs `jobs` for real with hydra::run as `options` says, and in the simulator three times:
// the prediction (SimOptions::contention with each shard's contention measured through `costs`
// for options.devices devices at once, submit latency options.overhead), the earlier prediction
// (CPU devices sharing the cores measured free just before the run, options.fitted.model) and
// the replay of the run's own task times (options.overhead).
SimulationCheck check_simulation(const std::string& name, const std::vector<JobSpec>& jobs,
                                 const CheckOptions& options, CostModel& costs);

// The earlier calibration, kept for comparison: the runtime's cost per task from a check of a
// one-job run on one device (CheckOptions::overhead 0) as the measured makespan minus the
// simulated one (shared_cores, replayed), spread over its tasks: it absorbs every error of the
// task times too.
SimLatency calibrate_latency(const SimulationCheck& one_job_one_device);

// The runtime's own seconds per task of a job's chain, from a real run's trace: the mean, over
// consecutive compute tasks of one job, of the time from the end of one (its store, if any) to the
// start of the next one's compute, less the next one's loads inside that gap (the simulator adds
// loads itself). Throws hydra::Error when no job in the trace has two compute tasks.
double task_overhead(const std::vector<TraceEvent>& trace);

// task_overhead of a run of one tiny job (its tasks take microseconds, so the gaps are the
// runtime's messages and thread hand-offs) of `steps` steps and two shards on one device:
// independent of the runs it is used to predict.
double measure_task_overhead(std::int64_t steps = 40);

// How alike the simulator orders a set of runs of the same jobs under different plans as they
// were measured. Pairs whose makespans are within `tie` (relative) of each other are ties, in
// the measured and in the simulated makespans alike.
struct RankAgreement {
  int pairs = 0;
  int concordant = 0;      // ordered alike
  int discordant = 0;      // ordered oppositely
  int measured_ties = 0;   // measured within `tie` (not counted as agreeing or not)
  int simulated_ties = 0;  // measured apart, simulated within `tie`
  double tau_b = 0;        // Kendall's tau-b over the pairs (1: same order); 0 when undefined
  // Pairs ordered alike among those measured apart (1 when none are).
  double agreement() const;
};
RankAgreement rank_agreement(const std::vector<double>& measured,
                             const std::vector<double>& simulated, double tie);

// A synthetic-data MLP job (128 features, 10 classes, `hidden` layers of `width`, batch 128,
// `steps` steps; SGD with momentum, or AdamW) for benchmarks and simulator checks.
JobSpec synthetic_mlp_job(const std::string& name, std::int64_t width, int hidden,
                          std::int64_t steps, std::size_t shards, bool adamw = false);

}  // namespace hydra
