#pragma once
#include "kernels/layer.hpp"

namespace hydra {

// Layer normalisation over the last dimension: y = (x - mean) * rstd * gamma + beta.
// Stashes x, mean and rstd ([rows] each).
class LayerNorm : public Layer {
 public:
  explicit LayerNorm(std::int64_t dim, double eps = 1e-5);
  std::string name() const override;
  Shape output_shape(const Shape& input) const override;
  Tensor forward(ExecContext& ctx, const Tensor& x, Stash& stash, bool training) override;
  Tensor backward(ExecContext& ctx, const Tensor& dy, Stash& stash) override;
  double forward_flops(const Shape& input) const override;
  std::size_t stash_bytes(const Shape& input, DType dtype) const override;
  void reset_parameters(std::uint64_t seed) override;

 private:
  std::int64_t dim_;
  double eps_;
};

}  // namespace hydra
