#pragma once
// Predicted device memory of running a model shard (layers [begin, end)) for one minibatch:
// forward, backward and optimizer update, computed from shapes alone. The partitioner plans with
// it; a test checks it against a memory pool's measured peak.
//
// The estimate replays the shard's allocations (layer by layer, as the layer implementations in
// kernels/layers make them) against a model of MemoryPool: 256-byte blocks, and a freed block is
// reused for a later request of at least half its size (and then counts in full). It assumes
// the pool holds no cached blocks when the shard starts, and this protocol around the shard:
//   1. the input arrives on the device and is held by the caller during forward;
//   2. Model::forward (training); the caller then releases the input and keeps the output until
//   3. the loss, when the shard ends the model (end == model.size()): the labels (i32, one per
//      row) arrive and softmax_cross_entropy runs on the output; its dlogits is the output
//      gradient. Otherwise the output leaves the device and the output gradient arrives;
//   4. Model::backward, the caller holding the output gradient until it returns;
//   5. the optimizer update, whose state already exists (steady state; no allocation).
// Layer types the model does not know are replayed conservatively: a fresh output, a separate
// stash of stash_bytes() and a fresh input gradient. Backend workspaces (cuBLAS/cuDNN scratch on
// CUDA) are not included: callers keep a reserve for them.
#include <cstddef>
#include <cstdint>

#include "kernels/model.hpp"

namespace hydra {

struct ShardMemory {
  std::size_t parameters = 0;  // values + grads + optimizer state (optimizer_slots per value)
  std::size_t stash = 0;       // activations saved by forward for backward
  std::size_t working = 0;     // peak transient buffers: input, output, gradients in flight
  std::size_t total() const { return parameters + stash + working; }
};

// `input` is the shard's input shape for one minibatch; activations have dtype `dtype`.
// (A shard starting with a TokenEmbedding takes i32 ids.) Parameters are counted in their own
// dtype. `stash` is the pool memory held between forward and backward: the layers' stash_bytes
// in pool blocks, a tensor stashed by two layers counted once. `working` is the rest of the peak.
// Throws hydra::Error on an invalid range or a shape a layer rejects.
ShardMemory estimate_shard_memory(const Model& model, std::size_t begin, std::size_t end,
                                  const Shape& input, DType dtype, int optimizer_slots);

// Bytes MemoryPool reserves for a request of `bytes` (a whole number of 256-byte blocks, at
// least one).
std::size_t pool_block_bytes(std::size_t bytes);

}  // namespace hydra
