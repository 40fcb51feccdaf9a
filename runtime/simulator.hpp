#pragma once
// A discrete-event simulator of a whole multi-model run as the actor runtime (actors/) performs
// it, driven by measured task costs (runtime/cost_model.hpp), to predict per-job end times, the
// makespan and per-device utilisation of a plan without running it, and to compare plans
// (policies, shard counts, device counts) in seconds even for hundreds of devices and jobs.
//
// What is modelled, following actors/training_program.cpp, scheduler_actor.cpp, device_actor.cpp
// and task_execution.cpp:
//   * each job runs its tasks one at a time: per step forward 0..S-1 (loss fused in the last),
//     backward S-1..0 (optimizer update fused, or separate update tasks 0..S-1 when the job clips
//     gradients), evaluation passes (eval forwards over the validation batches) every eval_every
//     steps and once at the end unless the last step just validated; a task becomes ready
//     `submit_latency` after the previous one of its job finished (actor messaging);
//   * the scheduler dispatches whenever a device has a free slot (slots = 1 running + lookahead)
//     and a task is ready: to the device with the fewest tasks, then least recently given work;
//     which ready task it gets is chosen by the same SchedulingPolicy (make_policy) over a
//     TaskEstimator refined with the simulated task times, as the real scheduler refines its
//     estimates; work stealing gives a device's queued task that is not being copied to an idle
//     device when nothing is ready;
//   * a device loads a task's state (parameter values; for backward the stash, the output
//     gradient and, with a fused update, the optimizer state; for update gradients and state)
//     on its copy thread as soon as it receives it, one load at a time, overlapping the running
//     task; it computes one task at a time once its load is done; the store of what the task
//     changed (activations and stash after forward, the input gradient and values + state or
//     gradients after backward, values + state after update) follows the compute on the compute
//     thread, and the slot is handed back after it. Copies cost LinkCost latency + bytes /
//     bandwidth per category of tensors;
//   * optionally CPU devices share `cpu_cores` cores: a compute that starts while n CPU devices
//     compute runs max(1, n / cpu_cores) times longer (virtual CPU devices on a small machine);
//     or (`contention`) each task runs at the pace its shard's measured slowdown for the current
//     number of computing CPU devices gives (CostModel::contention), updated as that changes.
// Parallel strategies per job (the JobSpec fields of the same names; see README "Planning"):
//   * replicas R > 1 (data parallelism): each step, R copies of the job's shard chain run on 1/R
//     of the batch each, concurrently on whichever devices are free; once every replica's
//     backward finished, the gradients are all-reduced on the host as actors/replica_set does
//     (a delay, no device: per shard link latency + 2R x gradient bytes / link bandwidth of
//     device 0, the host reading every replica's gradients and writing the mean into each,
//     summed over the shards), then R update tasks per shard run at once: each the full shard
//     (every replica applies the same update), or with sharded_data_parallel 1/R of its
//     parameters and optimizer state each (then an all-gather, R x bytes: the updated slices
//     copied into every replica, before the next step);
//   * micro_batches m > 1 (GPipe, as actors/pipeline_step): forward micro-batch i of shard s
//     once shard s-1 finished micro-batch i and shard s finished micro-batch i-1 (a dataflow);
//     backward from the last shard, micro-batch m-1 first, in the same dataflow once every
//     forward finished, gradients accumulated (every backward but the first of a shard loads the
//     gradients so far); then one update per shard, all at once after every backward;
//   * with replicas or micro-batches the update is a separate task (not fused into backward),
//     and the next step starts when every task of the step ended (one train_step at a time);
//     evaluation passes stay one chain of full-batch eval forwards;
//   * device_affinity d >= 0: every task of the job runs on device d (never stolen);
//   * a task on a part of a batch (1/R or 1/(R m)) costs that fraction of the ShardCost's
//     compute time and of its activation bytes (input, output, stash, labels): an assumption
//     (small parts under-use a GPU, so this is optimistic for tiny micro-batches).
// Not modelled: data loading and job setup before the first task, OOM retries, CAF's own
// scheduling threads, memory (the partition is assumed to fit; runtime/planner checks it).
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "runtime/cost_model.hpp"
#include "runtime/partitioner.hpp"
#include "runtime/trace.hpp"

namespace hydra {

// One job of the plan: its shards' costs on the devices' kind, and how long it trains.
struct SimJob {
  std::string name;
  std::vector<ShardCost> shards;  // in order; at least one
  std::int64_t steps = 1;         // training steps (batches per epoch x epochs, or max_steps)
  std::int64_t eval_every = 0;    // steps between validations; 0: once at the end
  std::int64_t eval_batches = 0;  // validation minibatches per pass; 0: no evaluation tasks
  bool clip = false;              // gradient clipping: separate update tasks after backward
  // Strategy (see above); the defaults are plain Sharded-LRTF execution.
  int replicas = 1;                    // data-parallel replicas (>= 1)
  bool sharded_data_parallel = false;  // with replicas > 1: update and optimizer state split
  int micro_batches = 1;               // GPipe micro-batches per step (>= 1)
  int device_affinity = -1;            // >= 0: every task on this device index
  bool is_default_strategy() const { return replicas == 1 && micro_batches == 1; }
};

struct SimDevice {
  std::string name = "cpu:0";
  DeviceKind kind = DeviceKind::cpu;
  LinkCost link;       // home <-> device copies
  double speed = 1.0;  // compute seconds are divided by this (1: the kind the costs came from)
  int slots = 2;       // tasks held at once: 1 running + lookahead (actors::DeviceConfig::slots)
};

struct SimOptions {
  std::string policy = "lrtf";  // make_policy: "lrtf", "fifo", "random"
  std::uint64_t policy_seed = 0;
  double submit_latency = 0;  // seconds from a task's end to its job's next task being ready
  double cpu_cores = 0;       // > 0: CPU devices share this many cores (see above)
  // CPU devices' tasks slow down by their shard's measured ShardCost::slowdown(k) while k CPU
  // devices compute at once, re-evaluated whenever one starts or ends (each task's compute and
  // store progress at 1 / its slowdown for the current k); cpu_cores is then not used.
  bool contention = false;
  bool work_stealing = true;
  bool trace = false;              // record every load, compute and store in SimResult::trace
  double flops_per_second = 1e10;  // the estimator's assumed speed before a task was simulated
};

struct SimResult {
  double makespan = 0;               // end of the last job (the run starts at 0)
  std::vector<double> job_end;       // per job, in the order given
  std::vector<std::string> devices;  // names, by index
  std::vector<double> busy_seconds;  // compute (forward/backward/update/eval) per device
  std::vector<std::pair<std::string, double>> utilisation;  // busy_seconds / makespan
  std::vector<TraceEvent> trace;                            // when SimOptions::trace
  std::uint64_t tasks = 0, stolen = 0, prefetched = 0;
  std::uint64_t events = 0;  // simulation events processed
};

// Simulates the plan. Throws hydra::Error on no devices, a job without shards, an unknown
// policy, replicas or micro_batches below 1, or a device_affinity that is not a device index.
SimResult simulate(const std::vector<SimJob>& jobs, const std::vector<SimDevice>& devices,
                   const SimOptions& options = {});

// max(device work / devices, the longest job's chain of tasks): no schedule on these devices
// can finish sooner (devices of speed 1 assumed).
double makespan_lower_bound(const std::vector<SimJob>& jobs, const std::vector<SimDevice>& devices,
                            const SimOptions& options = {});

// One job's device work (compute + store seconds of all its tasks: what holds a device; loads
// overlap on its copy thread) and its chain (the critical path of its tasks with their loads,
// stores, the host all-reduce / all-gather and the submit latencies; optimizer state is loaded
// from the second step on, as simulate charges it) on `device`, with its strategy: the two terms
// of makespan_lower_bound. The chain is the job's simulated makespan alone on enough idle
// devices like `device`. Left out, so the bounds stay lower bounds: CPU contention (cpu_cores
// only slows computes) and waiting for a device or a copy thread.
struct JobBounds {
  double work = 0, chain = 0;
};
JobBounds job_bounds(const SimJob& job, const SimDevice& device, const SimOptions& options = {});

// Baseline "sequential": the jobs one after another, each alone on all devices (with its own
// strategy); the makespan is the sum of the jobs' simulated makespans, job_end their ends.
SimResult simulate_sequential(const std::vector<SimJob>& jobs,
                              const std::vector<SimDevice>& devices,
                              const SimOptions& options = {});

// Copies a simulated schedule into `trace` (chrome_json, utilisation and the Gantt writer then
// show it like a real run's).
void add_to_trace(const SimResult& result, Trace& trace);

// A SimJob for `model` trained on minibatches of shape `input` (batch first): cut by
// hydra::partition with `options`, each shard measured (or found cached) in `costs` on
// `device` with `optimizer`. The model is moved to `device` and its parameters change. The
// caller sets steps, eval_every, eval_batches and clip.
SimJob make_sim_job(const std::string& name, Model& model, const Shape& input,
                    const PartitionOptions& options, Optimizer& optimizer, Device device,
                    CostModel& costs);

// `n` devices named "cpu:0" ... "cpu:<n-1>" (their kind), all with the link cost `link`.
std::vector<SimDevice> uniform_devices(int n, LinkCost link = {0, 1e30},
                                       DeviceKind kind = DeviceKind::cpu);

// `jobs` with every task's compute time replaced by the mean of the durations `trace` measured
// for it (per job name, shard and kind): replaying a real run's own task times checks the
// schedule model alone.
std::vector<SimJob> with_measured_times(std::vector<SimJob> jobs,
                                        const std::vector<TraceEvent>& trace);

}  // namespace hydra
