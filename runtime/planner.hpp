#pragma once
// Strategy search (Saturn / OSDP style): per job, how many shards (which cut), data-parallel
// replicas (plain or sharded), GPipe micro-batches and a device to pin it to, chosen together
// with the Sharded-LRTF schedule so that the predicted makespan (runtime/simulator) is smallest
// and every device's memory stays within its budget.
//
//   std::vector<PlanJob> jobs = ...;          // per job: shard options (costs, memory), batch
//   Plan p = plan(jobs, devices, {.device_memory = 80ull << 30});
//   p.strategies[j], p.makespan, p.job_end[j], p.device_memory[d], p.lower_bound
//
// Search (bounded: PlannerOptions::max_evaluations whole-plan simulations, time_limit_seconds):
//   0. every job's candidates (strategy_candidates): shard options x replicas 1, 2, 4, .. (plain
//      or sharded) x micro-batches 1, 2, 4, .. (with 2+ shards; replicas x micro-batches dividing
//      the batch size, as the runtime requires), each shard within half a device's memory,
//      scored without simulating by job_bounds (device work and critical path). They give
//      Plan::lower_bound, the joint bound (runtime/joint_lower_bound) and its chain T;
//   1. the default strategies (the first fitting shard option, nothing else) are simulated;
//   2. targets T, 0.85 T and 0.7 T: each job takes its least-work candidate with a chain within
//      the target (at T: the joint bound's own assignment, simulated also with step 3's first
//      variant, theta 0.5 and kf 1, before the other targets);
//   3. reserved devices: in the best target's assignment the jobs whose chain is within theta x
//      the target (theta 0.5, 0.7, 0.3) are pinned, longest first onto the least loaded of
//      devices k..D-1, so that the critical jobs' tasks find devices 0..k-1 without other jobs'
//      tasks queued ahead of them (a device holds a running and a lookahead task, served in
//      order); k = kf x (critical work) / (total work / D), kf 1, 0.8, 1.2;
//   4. when jobs are at least as many as devices and each fits a device whole: one model per
//      device (longest job first onto the least loaded device);
//   5. local improvement: the job that ends last takes a candidate with a shorter chain (least
//      work first, up to 4 tried), kept if the simulated makespan drops.
// The best simulated plan wins, so it is never slower than the default strategies.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/memory_model.hpp"
#include "runtime/simulator.hpp"

namespace hydra {

// One way to cut a job's model into shards.
struct ShardOption {
  std::vector<ShardCost> shards;    // per shard, for the full batch
  std::vector<ShardMemory> memory;  // per shard (memory model); empty: derived from the costs
  std::vector<std::size_t> begins;  // first layer of each shard (for explain); may be empty
};

struct PlanJob {
  SimJob job;                        // name, steps, evaluation, clip (its shards are ignored)
  std::vector<ShardOption> options;  // at least one; options[0] is the default (fewest shards)
  std::int64_t batch_size = 1;       // replicas x micro-batches must divide it
};

struct JobStrategy {
  std::size_t option = 0;  // index into PlanJob::options
  int shards = 1;
  int replicas = 1;
  bool sharded_data_parallel = false;
  int micro_batches = 1;
  int device_affinity = -1;
  // "2 shards, 4 replicas (sharded), 2 micro-batches, device 3"
  std::string describe() const;
};

struct PlannerOptions {
  std::size_t device_memory = 0;  // bytes each device may hold (0: unlimited)
  SimOptions sim;                 // policy (lrtf), submit latency, cpu cores
  int max_replicas = 16;          // also at most the number of devices
  int max_micro_batches = 8;
  int max_evaluations = 40;  // whole-plan simulations
  double time_limit_seconds = 20;
  bool pin_jobs = true;  // consider one model per device when jobs >= devices
};

struct Plan {
  std::vector<JobStrategy> strategies;     // per job, in the order given
  std::vector<SimJob> jobs;                // the jobs with their strategies applied
  double makespan = 0;                     // predicted
  std::vector<double> job_end;             // predicted end per job
  std::vector<std::size_t> job_memory;     // per job: bytes it may hold on a device at once
  std::vector<std::size_t> device_memory;  // per device: predicted peak bytes
  // The joint lower bound (runtime/joint_lower_bound) over every job's candidates
  // (strategy_candidates): the least max(longest chain, total work / devices) of one assignment
  // of a strategy per job; no plan in the search space finishes sooner (in the simulator's model).
  double lower_bound = 0;
  // max(total work / devices, longest chain) with the default strategies (the bound: no
  // plan of default strategies finishes sooner).
  double default_bound = 0;
  double default_makespan = 0;  // the default strategies (plain Sharded-LRTF)
  int evaluations = 0;          // whole-plan simulations run
  double search_seconds = 0;    // all of it
  double scoring_seconds = 0;   // of which scoring the candidates (step 0)
};

// Memory a job with strategy `s` may hold on one device at once: its two largest shards (a
// device holds a running and a prefetched or lookahead shard) with parameters, gradients,
// optimizer state (1/replicas of it when sharded) and activations (a 1/(replicas x
// micro-batches) part of the batch, an assumption: transient buffers scale with the batch).
// A strategy fits when each shard fits half the device memory (as the partitioner plans), so a
// device's peak (Plan::device_memory: the two largest shards that may run there) fits.
std::size_t strategy_memory(const PlanJob& job, const JobStrategy& s);

// One strategy of the search space for a job, with its device work and chain (job_bounds).
struct StrategyCandidate {
  JobStrategy strategy;
  JobBounds bounds;
};

// Every strategy of the search space for `job` whose shards fit half of options.device_memory:
// shard options x replicas 1, 2, 4, .. (plain or sharded; at most max_replicas, the devices and
// the batch size) x micro-batches 1, 2, 4, .. (with 2+ shards; at most max_micro_batches),
// replicas x micro-batches dividing the batch size. Empty when nothing fits.
std::vector<StrategyCandidate> strategy_candidates(const PlanJob& job,
                                                   const std::vector<SimDevice>& devices,
                                                   const PlannerOptions& options);

// The job with strategy `s` applied (shards of the chosen option, replicas, ...).
SimJob apply_strategy(const PlanJob& job, const JobStrategy& s);

// Chooses strategies for `jobs` on `devices`. Throws hydra::Error when a job has no shard option
// or no option whose shards fit half of options.device_memory.
Plan plan(const std::vector<PlanJob>& jobs, const std::vector<SimDevice>& devices,
          const PlannerOptions& options = {});

// Re-plans the work left: job j has done steps_done[j] steps, and finished[j] jobs (done early
// or stopped) are dropped. The returned plan covers all jobs in the given order; a finished job
// gets the default strategy, 0 steps and a predicted end of 0. Predicted times count from now.
// Throws hydra::Error when the vectors' sizes differ from jobs' or steps_done is negative.
Plan replan(const std::vector<PlanJob>& jobs, const std::vector<std::int64_t>& steps_done,
            const std::vector<bool>& finished, const std::vector<SimDevice>& devices,
            const PlannerOptions& options = {});

}  // namespace hydra
