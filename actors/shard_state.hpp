#pragma once
// The state one model shard owns between tasks: its layers (the range [begin, end) of the job's
// model) whose parameters, gradients and optimizer state live in home memory (pinned host memory
// when a GPU is present, plain host memory otherwise), and the activations its training forward
// stashed for the matching backward, spilled to home memory as well.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "kernels/layer.hpp"
#include "kernels/model.hpp"

namespace hydra::actors {

// What one training forward stashed for its backward (one per micro-batch in flight).
struct StashSlot {
  std::vector<Stash> stashes;  // in home memory
  Tensor dlogits;              // last shard: d(loss)/d(logits)
  bool full = false;
};

struct ShardState {
  int job = 0;  // index of the job in the run
  std::string job_name;
  int shard = 0, num_shards = 1;
  std::shared_ptr<Model> model;  // the whole model, shared by the job's shards
  std::string model_spec;        // JobSpec::model_spec (remote devices build the model from it)
  std::size_t begin = 0, end = 0;
  Device home = Device::host();
  // Stashes of the training forwards whose backward has not run, by micro-batch index
  // (ShardTask::micro_batch; one slot without micro-batches).
  std::vector<StashSlot> stash_slots = std::vector<StashSlot>(1);
  int last_device = -1;          // device that ran this shard last (-1: none yet)
  int device_affinity = -1;      // >= 0: its tasks run only on this device (JobSpec)
  std::int64_t total_steps = 0;  // training steps the job plans (for remaining-time estimates)
  bool fused_update = true;      // the job's updates run inside its backward tasks
  double forward_flops = 0;      // of one training minibatch (initial time estimates)
  // Sharded data parallelism (JobSpec::sharded_data_parallel): the slices of this shard's
  // parameters whose update this replica runs (update tasks with ShardTask::owned_slices): value
  // and grad are views into the home tensors, the optimizer state is this replica's own. owned_at
  // gives each slice's parameter (index into parameters()) and first element.
  std::vector<Parameter> owned_slices;
  std::vector<std::pair<std::size_t, std::int64_t>> owned_at;
  // All shards of the job by index (this one included), so the scheduler can name the job's next
  // shard in a prefetch hint.
  std::vector<std::weak_ptr<ShardState>> siblings;
  // Held while a task's device copies are swapped into the parameters (compute and store); a
  // prefetch only reads the home state when it can take it at once (try_lock), so it never reads
  // parameters another device is computing with.
  std::mutex resident;

  bool last() const { return shard + 1 == num_shards; }
  bool has_stash(std::int64_t micro_batch) const {
    return micro_batch >= 0 && static_cast<std::size_t>(micro_batch) < stash_slots.size() &&
           stash_slots[static_cast<std::size_t>(micro_batch)].full;
  }
  StashSlot& stash_slot(std::int64_t micro_batch);  // grows the slots as needed
  std::vector<Parameter*> parameters() const;
  std::size_t parameter_bytes() const;  // values + grads + optimizer state
};

// Home memory for shard state: pinned when a CUDA GPU is present, host otherwise.
Device home_device();

}  // namespace hydra::actors
