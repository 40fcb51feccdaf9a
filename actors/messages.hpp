#pragma once
// Atoms and message types of the actor runtime. Within one process, messages carry handles
// (std::shared_ptr to a task, tensors that share storage), never copies of tensor data.
#include <caf/all.hpp>

#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "actors/shard_state.hpp"
#include "kernels/core/tensor.hpp"
#include "kernels/optim/optimizer.hpp"
#include "runtime/scheduling_policy.hpp"

namespace hydra::actors {

using submit_atom = caf::atom_constant<caf::atom("submit")>;  // job/shard -> scheduler
using run_atom = caf::atom_constant<caf::atom("run")>;        // scheduler -> device, runtime -> job
using done_atom = caf::atom_constant<caf::atom("done")>;      // device -> scheduler
using pull_atom = caf::atom_constant<caf::atom("pull")>;      // device -> scheduler: send work
using stop_atom = caf::atom_constant<caf::atom("stop")>;      // runtime -> device
using stats_atom = caf::atom_constant<caf::atom("stats")>;    // -> scheduler: counters
using steal_atom = caf::atom_constant<caf::atom("steal")>;    // scheduler -> busy device
using stolen_atom = caf::atom_constant<caf::atom("stolen")>;  // device -> scheduler
using prefetch_atom = caf::atom_constant<caf::atom("prefetch")>;  // scheduler -> device: hint
using drop_atom = caf::atom_constant<caf::atom("drop")>;          // scheduler -> device
using config_atom = caf::atom_constant<caf::atom("config")>;      // job -> optimizer
using clip_atom = caf::atom_constant<caf::atom("clip")>;          // job -> optimizer
using stepped_atom = caf::atom_constant<caf::atom("stepped")>;    // job -> optimizer

// One shard task: what to run (filled by the submitter), what came out and how long it took
// (filled by the device). The same object travels submitter -> scheduler -> device -> back.
struct ShardTask {
  // --- request
  std::uint64_t id = 0;  // set by the scheduler
  TaskKind kind = TaskKind::forward;
  bool training = true;  // false: evaluation forward (no stash, no gradients)
  std::int64_t step = 0;
  std::shared_ptr<ShardState> state;
  std::shared_ptr<Optimizer> optimizer;  // backward (fused update) and update tasks
  bool fuse_update = true;               // backward: apply the optimizer right after backward
  double grad_scale = 1.0;               // update: gradient clipping coefficient
  Tensor input;   // forward: activations; backward: d(output) (none for the last shard)
  Tensor labels;  // forward of the last shard: labels for the fused loss
  // Micro-batches (JobSpec::micro_batches) and replicas: the stash slot a training forward fills
  // and its backward uses.
  std::int64_t micro_batch = 0;
  // Unfused backward: add this backward's gradients to the home gradients (false: replace them).
  bool accumulate_grads = false;
  // Training forward of the last shard: d(loss)/d(logits) is multiplied by this (the micro-batch's
  // share of the batch mean when parts are uneven; exactly 1 for equal parts).
  double loss_weight = 1.0;
  // Update: run over the shard's owned parameter slices (ShardState::owned_slices, sharded data
  // parallelism) instead of its whole parameters.
  bool owned_slices = false;
  // --- result
  Tensor output;  // forward: activations (home memory); backward: d(input) (home memory)
  double loss = std::numeric_limits<double>::quiet_NaN();
  std::int64_t correct = 0, count = 0;
  double grad_squares = 0;  // backward without fused update: sum of squared grads of the shard
  std::string error;        // non-empty: the task failed (the device survives)
  // --- measurements (seconds on the trace clock)
  int device = -1;
  std::string device_name;
  double load_start = 0, load_end = 0, compute_start = 0, compute_end = 0, store_start = 0,
         store_end = 0;
  std::size_t load_bytes = 0, store_bytes = 0;
  bool prefetched = false;    // its state was loaded while another task computed
  bool prefetch_hit = false;  // its parameters (and optimizer state) were loaded from a hint
                              // before the task itself reached the device:
  double prefetch_start = 0, prefetch_end = 0;  // that load (a trace event of its own)
  std::size_t prefetch_bytes = 0;               // its bytes (not in load_bytes)
  int oom_retries = 0;  // times its load was repeated after running out of device memory
};
using TaskPtr = std::shared_ptr<ShardTask>;

// Finished tasks a local device hands to the scheduler, with the slots it grants back (its credit).
// The compute thread appends each finished task and posts (done_atom, DeviceOutboxPtr) only when
// no such message is on its way already; the scheduler takes everything appended until it reads
// the outbox. Several tasks that finish before the scheduler runs thus cost one message, and the
// tasks come out in the order they finished.
struct DeviceOutbox {
  int device = -1;  // the scheduler's device index
  std::mutex mutex;
  std::vector<TaskPtr> done;  // finished, in completion order
  int credit = 0;             // further tasks the device can take
  bool posted = false;        // a message naming this outbox is on its way to the scheduler
};
using DeviceOutboxPtr = std::shared_ptr<DeviceOutbox>;

// Scheduler counters, for tests and reports.
struct SchedulerStats {
  std::uint64_t submitted = 0, completed = 0, failed = 0;
  std::uint64_t dispatched_to_idle = 0, dispatched_lookahead = 0, prefetched = 0;
  // Times a device was left with nothing to do while a task waited in the ready queue, checked
  // after every event the scheduler handles. The scheduler's invariant is that this stays 0.
  std::uint64_t idle_while_ready = 0;
  std::uint64_t max_ready = 0;
  // Tasks taken back from a busy device's lookahead slot for a device that went idle.
  std::uint64_t stolen = 0, steal_attempts = 0;
  // Prefetch hints: a job's next shard announced to the device running its current task, tasks
  // that found their shard's state already loaded there, and hints withdrawn unused (the task
  // went to another device, or the device's lookahead slot was needed for other work).
  std::uint64_t prefetch_hints = 0, prefetch_hits = 0, prefetch_dropped = 0;
  // Tasks put back in the ready queue because the remote device running them lost its link.
  std::uint64_t requeued = 0;
  // Loads repeated because the device ran out of memory (memory pressure; the task then ran).
  std::uint64_t oom_retries = 0;
  // Completion messages from local devices (DeviceOutbox) and the tasks they carried: more tasks
  // than messages means completions were batched. max_inflight: most tasks one device held at
  // once (above 2 when a device asked for a deeper queue of short tasks).
  std::uint64_t done_messages = 0, done_batched_tasks = 0, max_inflight = 0;
  std::string policy;
};

// Training configuration an optimizer actor hands out to its job's tasks.
struct OptimizerConfig {
  std::shared_ptr<Optimizer> optimizer;
  double clip_grad_norm = 0;  // 0: no clipping (updates fused into backward tasks)
};

}  // namespace hydra::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(hydra::actors::TaskPtr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(hydra::actors::DeviceOutboxPtr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(hydra::actors::SchedulerStats)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(hydra::actors::OptimizerConfig)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(hydra::Tensor)
