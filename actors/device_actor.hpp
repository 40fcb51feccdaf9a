#pragma once
// One actor per device (spawned detached: it has its own thread, because kernels block). It owns
// a compute stream and a copy stream, its memory budget, and runs ONE shard task at a time. It
// pulls work: it tells the scheduler how many tasks it can take (`slots`: one running plus one of
// lookahead), and each finished task hands a slot back. A task received while another runs is
// loaded at once on the device's copy thread (CopyEngine) so the transfer overlaps the running
// task's compute (double buffering); kernels run on its compute thread, which reports finished
// tasks to the scheduler itself (a task reaching an idle device with nothing being copied is
// loaded and computed there in one go). Every exception is caught per task and reported in the
// task's `error`: the device survives and keeps serving other jobs. Asked to (steal_atom), it
// gives a queued task it has not started back to the scheduler for an idle device. Hinted
// (prefetch_atom), it loads the state of a job's next shard task into its lookahead slot before the
// task exists; the task, when it arrives, uses it (drop_atom frees it).
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
};

void device_actor(caf::blocking_actor* self, DeviceConfig config, caf::actor scheduler,
                  std::shared_ptr<Trace> trace);

}  // namespace hydra::actors
