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
#include <map>
#include <vector>

#include "kernels/model.hpp"

namespace hydra {

struct ShardMemory {
  std::size_t parameters = 0;  // values + grads + optimizer state (optimizer_slots per value)
  std::size_t stash = 0;       // activations saved by forward for backward
  std::size_t working = 0;     // peak transient buffers: input, output, gradients in flight
  std::size_t total() const { return parameters + stash + working; }
};

// `input` is the shard's input shape for one minibatch; activations have dtype `dtype`.
// (A shard starting with a TokenEmbedding takes i32 ids.) Parameters are counted in `dtype` too,
// the dtype Layer::to gives them on the device (layers require it to equal the activations'),
// whatever dtype the host copy has now. `stash` is the pool memory held between forward and
// backward: the layers' stash_bytes in pool blocks, a tensor stashed by two layers counted once.
// `working` is the rest of the peak. Throws hydra::Error on an invalid range or a shape a layer
// rejects.
ShardMemory estimate_shard_memory(const Model& model, std::size_t begin, std::size_t end,
                                  const Shape& input, DType dtype, int optimizer_slots);

// The same estimate for many shards of one model: per-layer work (shapes, parameter bytes, how
// each layer allocates) is done once, and results are remembered per sequence of identical
// layers (a GPT's repeated blocks), so the partitioner can ask about every [begin, end) of a
// deep model. Not thread-safe (estimate() fills the memo).
class ShardMemoryPlanner {
 public:
  // Layers [0, model.size()) for a model input of shape `input`.
  ShardMemoryPlanner(const Model& model, const Shape& input, DType dtype, int optimizer_slots);
  // Layers [first, last) only, `input` being the input shape of layer `first`.
  ShardMemoryPlanner(const Model& model, std::size_t first, std::size_t last, const Shape& input,
                     DType dtype, int optimizer_slots);
  ~ShardMemoryPlanner();
  ShardMemoryPlanner(ShardMemoryPlanner&&) noexcept;
  ShardMemoryPlanner& operator=(ShardMemoryPlanner&&) noexcept;

  // estimate_shard_memory for layers [begin, end) within the planner's range.
  ShardMemory estimate(std::size_t begin, std::size_t end);
  // Input shape of `layer` (layer == last: the output of the range).
  const Shape& shape(std::size_t layer) const;

  struct Node;  // how one layer allocates (internal)

 private:
  std::size_t first_, last_;
  DType dtype_;
  std::size_t model_layers_;
  std::vector<Shape> shapes_;        // input of first_ + k
  std::vector<std::size_t> params_;  // parameter bytes of layers [first_, first_ + k)
  std::vector<Node> nodes_;
  std::vector<bool> ids_;  // layer first_ + k takes i32 token ids
  // Layers with equal parameter bytes, input kind and allocation pattern share a class; a
  // shard's estimate depends only on its sequence of classes (and on ending the model).
  std::vector<std::uint32_t> class_;
  std::map<std::vector<std::uint32_t>, ShardMemory> memo_;
  ShardMemory replay(std::size_t b, std::size_t e) const;
};

// Bytes MemoryPool reserves for a request of `bytes` (a whole number of 256-byte blocks, at
// least one).
std::size_t pool_block_bytes(std::size_t bytes);

}  // namespace hydra
