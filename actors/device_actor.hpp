#pragma once
// One actor per device. It owns a compute stream and a copy stream, its memory budget, and runs
// ONE shard task at a time. The actor itself is event-based (it runs on CAF's workers): its
// handlers only take the device's mutex and queue work, since kernels block and run on the
// device's own threads: a copy thread (CopyEngine: loads and prefetches on the copy stream) and a
// compute thread (kernels). It pulls work: it tells the scheduler how many tasks it can take
// (`slots`: one running plus one of lookahead), and each finished task hands its slot back. When
// its tasks are short compared with the time a task takes to reach it (`dispatch_latency`), it
// asks for a deeper queue (up to `max_slots`), so the compute thread finds the next task queued
// instead of sleeping until it arrives; a queued task holds no device memory until its load
// starts, and loads stay at most one task ahead of the running one. A task received while
// another runs is loaded ahead on the copy thread so the transfer overlaps the running task's
// compute (double buffering), unless its state is smaller than `inline_load_bytes` (then the
// compute thread loads it when its turn comes: a hand-off to the copy thread would cost more than
// the copy); a task reaching an idle device with nothing being copied is loaded and computed on
// the compute thread in one go. The compute thread reports finished tasks to the scheduler
// itself, batched (DeviceOutbox: one message for the tasks that finished before the scheduler
// read the last one) and with the slots it grants back. Every exception is caught per task and
// reported in the task's `error`: the device survives and keeps serving other jobs. Asked to
// (steal_atom), it gives queued tasks it has not started back to the scheduler for an idle
// device. Hinted (prefetch_atom), it loads the state of a job's next shard task into its
// lookahead slot before the task exists; the task, when it arrives, uses it (drop_atom frees it).
#include <caf/all.hpp>

#include <cstddef>
#include <memory>
#include <string>

#include "kernels/core/device.hpp"
#include "runtime/trace.hpp"

namespace hydra::actors {

struct DeviceConfig {
  int index = 0;           // the device's number in the run (the scheduler's index)
  Device device;           // physical device: cpu:N (virtual) or cuda:N
  std::size_t budget = 0;  // memory budget in bytes
  std::string name;        // trace and report name: "cpu:0", "cuda:0", "cuda:0/1" (shared GPU)
  int slots = 2;           // tasks held at once: 1 running + lookahead
  // Deep queue for short tasks: the device asks for up to `max_slots` tasks at once when its
  // tasks take less than `dispatch_latency` (seconds: the time from its credit to the task's
  // arrival), slots - 1 + dispatch_latency / (mean task time) of them. max_slots = slots: never.
  int max_slots = 32;
  double dispatch_latency = 200e-6;
  // Tasks whose shard state (parameters, gradients, optimizer state and input) is smaller are not
  // loaded ahead on the copy thread but on the compute thread right before they compute.
  std::size_t inline_load_bytes = 16 * 1024;
};

// Spawn with sys.spawn(device_actor, ...) (event-based; not detached: it needs no thread).
caf::behavior device_actor(caf::event_based_actor* self, DeviceConfig config, caf::actor scheduler,
                           std::shared_ptr<Trace> trace);

}  // namespace hydra::actors
