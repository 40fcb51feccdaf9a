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
#include <vector>

#include "kernels/layer.hpp"
#include "kernels/model.hpp"

namespace hydra::actors {

struct ShardState {
  int job = 0;  // index of the job in the run
  std::string job_name;
  int shard = 0, num_shards = 1;
  std::shared_ptr<Model> model;  // the whole model, shared by the job's shards
  std::string model_spec;        // JobSpec::model_spec (remote devices build the model from it)
  std::size_t begin = 0, end = 0;
  Device home = Device::host();
  std::vector<Stash> stashes;  // from the last training forward, in home memory
  Tensor dlogits;              // last shard: d(loss)/d(logits) of the last training forward
  bool has_stash = false;
  int last_device = -1;          // device that ran this shard last (-1: none yet)
  int device_affinity = -1;      // >= 0: its tasks run only on this device (JobSpec)
  std::int64_t total_steps = 0;  // training steps the job plans (for remaining-time estimates)
  bool fused_update = true;      // the job's updates run inside its backward tasks
  double forward_flops = 0;      // of one training minibatch (initial time estimates)
  // All shards of the job by index (this one included), so the scheduler can name the job's next
  // shard in a prefetch hint.
  std::vector<std::weak_ptr<ShardState>> siblings;
  // Held while a task's device copies are swapped into the parameters (compute and store); a
  // prefetch only reads the home state when it can take it at once (try_lock), so it never reads
  // parameters another device is computing with.
  std::mutex resident;

  bool last() const { return shard + 1 == num_shards; }
  std::vector<Parameter*> parameters() const;
  std::size_t parameter_bytes() const;  // values + grads + optimizer state
};

// Home memory for shard state: pinned when a CUDA GPU is present, host otherwise.
Device home_device();

}  // namespace hydra::actors
