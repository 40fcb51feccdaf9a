#pragma once
// Cuts a model into sequential shards [begin, end) so that each shard's parameters, gradients,
// optimizer state and activations for one minibatch fit a device memory budget, with the compute
// (forward FLOPs) of the shards balanced.
#include <cstddef>
#include <vector>

#include "runtime/memory_model.hpp"

namespace hydra {

struct ShardSpec {
  std::size_t begin = 0, end = 0;  // layers [begin, end)
  Shape input_shape, output_shape;
  ShardMemory memory;
  double forward_flops = 0;
};

struct PartitionOptions {
  // Memory one shard may use on a device. With prefetching a device holds two shards at once,
  // so callers pass half the device capacity (minus any reserve).
  std::size_t budget_bytes = 0;
  int optimizer_slots = 2;  // state tensors per parameter (AdamW 2, SGD with momentum 1)
  DType dtype = DType::f32;
  // 0: the fewest shards that fit; otherwise exactly this many (hydra::Error if impossible).
  std::size_t shards = 0;
};

// Throws hydra::Error naming the layer when a single layer does not fit the budget, and when
// `shards` is larger than the number of layers.
std::vector<ShardSpec> partition(const Model& model, const Shape& input,
                                 const PartitionOptions& options);

}  // namespace hydra
