#pragma once
// Running one shard task on one device, in three phases:
//   load     copy what the task needs from the shard's home memory to the device: parameter
//            values; for backward also zeroed gradients, the stash and (fused update) the
//            optimizer state; for update the gradients and optimizer state. Runs on the device's
//            copy stream, on the device's copy thread, so it overlaps the previous task (on the
//            compute thread instead when the task reaches an idle device).
//   compute  forward (loss fused into the last shard's forward), or backward (optimizer update
//            fused right after it while the parameters are resident), or a separate update.
//   store    write back what changed (stash and activations after forward; values and optimizer
//            state after an update; gradients after an unfused backward), then free the device
//            copies. Home tensors are updated in place, so home memory stays allocated.
// Exceptions leave the shard's home state as it was before the task (device copies are only
// written back after the compute succeeded).
#include <memory>
#include <vector>

#include "actors/messages.hpp"
#include "kernels/core/stream.hpp"
#include "kernels/exec_context.hpp"
#include "runtime/trace.hpp"

namespace hydra::actors {

// A shard's state resident on a device for one task.
struct LoadedShard {
  Device device;
  std::vector<Parameter*> params;
  std::vector<Tensor> values, grads;        // device copies (grads undefined: not loaded)
  std::vector<std::vector<Tensor>> states;  // device copies of optimizer state
  std::vector<Stash> stashes;               // backward: the stash on the device
  Tensor input, labels, dlogits;            // on the device
  std::size_t bytes = 0;                    // bytes copied to the device
  bool prefetched = false;                  // values (and state) came from prefetch_shard
  std::unique_ptr<Event> ready;             // recorded on the copy stream after the copies
};

// Queues the copies of `task`'s state to `device` on `copy` (asynchronous on CUDA) and records
// `ready`. Throws hydra::OutOfMemory when the device budget is exceeded. With `prefetched` (from
// prefetch_shard for the same shard and kind, the shard's state unchanged since), its parameter
// values and optimizer state are reused and only the rest is copied; `bytes` counts both.
std::unique_ptr<LoadedShard> load_shard(const ShardTask& task, Device device, Stream& copy,
                                        std::unique_ptr<LoadedShard> prefetched = nullptr);

// Prefetch for a task that is not ready yet (`hint`: its shard, kind and fuse_update): copies the
// shard's parameter values and, for a fused backward or an update, its optimizer state (not the
// input, gradients or stash) and records `ready`. Null when the shard's state is in use by a
// task (ShardState::resident is held). Throws hydra::OutOfMemory like load_shard.
std::unique_ptr<LoadedShard> prefetch_shard(const ShardTask& hint, Device device, Stream& copy);

// Runs the task on `ctx` (after waiting for the load's event on ctx's stream), writes results
// into `task` and changed state back to home memory using `copy`, and synchronises both streams.
// Sets task.compute_end and task.store_start from `clock` between the two phases.
void execute_task(ShardTask& task, LoadedShard& loaded, ExecContext& ctx, Stream& copy,
                  const Trace& clock);

}  // namespace hydra::actors
