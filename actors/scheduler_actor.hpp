#pragma once
// The scheduler: a queue of ready shard tasks (from all jobs), the devices with free slots, and a
// SchedulingPolicy choosing which ready task a device runs next. It dispatches whenever a device
// has a free slot and a task is ready, preferring devices that are idle (no task at all) over
// lookahead slots of busy ones, so no device sits idle while any model has a ready shard task.
// It records every task and transfer in the run's Trace and refines its task-time estimates
// from the measured times.
//
// Protocol:
//   (submit_atom, TaskPtr)     -> TaskPtr   the same task, run (its `error` says if it failed)
//   (pull_atom, int dev, int n)             device `dev` (the sender) can take n more tasks
//   (done_atom, TaskPtr)                    from a device: the task finished
//   (done_atom, DeviceOutboxPtr)            from a local device: the tasks that finished since
//                                          its last such message, in order, and the slots it
//                                          grants with them (instead of done + pull per task)
//   (stolen_atom, int dev, TaskPtr)        answer to (steal_atom): a task device `dev` gave back
//                                          from its queue (null: none it could give; a device
//                                          with a deep queue may send several)
//   (stats_atom)               -> SchedulerStats
//
// Prefetch hints (to a device): (prefetch_atom, TaskPtr hint) announces the next task of a job
// whose current task the device just got (when that is all it holds), so it loads that shard's
// parameters and optimizer state ahead; (drop_atom) withdraws the hint (the device frees the
// copies). The announced task prefers that device; see actors/README.md.
//
// Work stealing: when a device is idle, nothing is ready, and another device holds a task it has
// not started (lookahead), the scheduler sends that device (steal_atom); it gives the task back
// unless its state is being copied at that moment, and the task then runs on the idle device.
#include <caf/all.hpp>

#include <memory>
#include <string>

#include "runtime/trace.hpp"

namespace hydra::actors {

struct SchedulerConfig {
  std::string policy = "lrtf";
  std::uint64_t seed = 0;
  std::shared_ptr<Trace> trace;
};

caf::behavior scheduler_actor(caf::event_based_actor* self, SchedulerConfig config);

}  // namespace hydra::actors
