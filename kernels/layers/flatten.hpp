#pragma once
#include "kernels/layer.hpp"

namespace hydra {

// [N, d1, d2, ...] -> [N, d1 * d2 * ...] (a view; stashes nothing).
class Flatten : public Layer {
 public:
  std::string name() const override { return "Flatten"; }
  Shape output_shape(const Shape& input) const override;
  Tensor forward(ExecContext& ctx, const Tensor& x, Stash& stash, bool training) override;
  Tensor backward(ExecContext& ctx, const Tensor& dy, Stash& stash) override;
  double forward_flops(const Shape&) const override { return 0; }
  std::size_t stash_bytes(const Shape&, DType) const override { return 0; }
  void reset_parameters(std::uint64_t) override {}
};

}  // namespace hydra
