#pragma once
// Predicted device memory of running a model shard (layers [begin, end)) for one minibatch:
// forward, backward and optimizer update, computed from shapes alone. The partitioner plans with
// it; a test checks it against a memory pool's measured peak.
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
ShardMemory estimate_shard_memory(const Model& model, std::size_t begin, std::size_t end,
                                  const Shape& input, DType dtype, int optimizer_slots);

}  // namespace hydra
