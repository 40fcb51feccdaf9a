#pragma once
// The state one model shard owns between tasks: its layers (the range [begin, end) of the job's
// model) whose parameters, gradients and optimizer state live in home memory (pinned host memory
// when a GPU is present, plain host memory otherwise), and the activations its training forward
// stashed for the matching backward, spilled to home memory as well.
#include <cstddef>
#include <cstdint>
#include <memory>
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
  std::size_t begin = 0, end = 0;
  Device home = Device::host();
  std::vector<Stash> stashes;  // from the last training forward, in home memory
  Tensor dlogits;              // last shard: d(loss)/d(logits) of the last training forward
  bool has_stash = false;
  int last_device = -1;          // device that ran this shard last (-1: none yet)
  std::int64_t total_steps = 0;  // training steps the job plans (for remaining-time estimates)
  bool fused_update = true;      // the job's updates run inside its backward tasks
  double forward_flops = 0;      // of one training minibatch (initial time estimates)

  bool last() const { return shard + 1 == num_shards; }
  std::vector<Parameter*> parameters() const;
  std::size_t parameter_bytes() const;  // values + grads + optimizer state
};

// Home memory for shard state: pinned when a CUDA GPU is present, host otherwise.
Device home_device();

}  // namespace hydra::actors
