#pragma once
// A trainable tensor with its gradient and its optimizer state. Keeping the optimizer state
// next to the value lets a shard move (spill) everything it owns between host and device.
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/core/tensor.hpp"

namespace hydra {

struct Parameter {
  std::string name;            // e.g. "weight"
  Tensor value;                // the parameter
  Tensor grad;                 // same shape, dtype and device as value; accumulated by backward
  std::vector<Tensor> state;   // optimizer slots (momentum, Adam m and v), created on first step
  std::int64_t step = 0;       // optimizer updates applied so far

  std::size_t bytes() const;   // value + grad + state
};

}  // namespace hydra
