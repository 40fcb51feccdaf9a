#pragma once
#include "kernels/layer.hpp"

namespace hydra {

// Multi-head causal self-attention on x [B, T, dim]:
//   q, k, v = x @ Wq^T + bq, ... (fused qkv weight [3 dim, dim], bias [3 dim], PyTorch in_proj
//   layout); per head softmax(q k^T / sqrt(head_dim)) with a causal mask, times v; heads
//   concatenated and projected with proj weight [dim, dim], bias [dim].
// Stashes x, q/k/v in head-major layout [3, B, heads, T, head_dim], the attention probabilities
// [B * heads, T, T] and the concatenated head outputs [B, T, dim].
class CausalSelfAttention : public Layer {
 public:
  CausalSelfAttention(std::int64_t dim, std::int64_t heads);
  std::string name() const override;
  Shape output_shape(const Shape& input) const override;
  Tensor forward(ExecContext& ctx, const Tensor& x, Stash& stash, bool training) override;
  Tensor backward(ExecContext& ctx, const Tensor& dy, Stash& stash) override;
  double forward_flops(const Shape& input) const override;
  std::size_t stash_bytes(const Shape& input, DType dtype) const override;
  void reset_parameters(std::uint64_t seed) override;

 private:
  std::int64_t dim_, heads_;
};

}  // namespace hydra
