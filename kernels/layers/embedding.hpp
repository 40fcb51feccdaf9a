#pragma once
#include "kernels/layer.hpp"

namespace hydra {

// Token embedding: i32 ids [...] (typically [B, T]) -> [..., dim] rows of weight [vocab, dim].
// Ids are validated when the input is host-accessible (callers validate CUDA inputs). Stashes
// the ids. backward() returns an undefined tensor (ids have no gradient).
class TokenEmbedding : public Layer {
 public:
  TokenEmbedding(std::int64_t vocab, std::int64_t dim);
  std::string name() const override;
  Shape output_shape(const Shape& input) const override;
  Tensor forward(ExecContext& ctx, const Tensor& ids, Stash& stash, bool training) override;
  Tensor backward(ExecContext& ctx, const Tensor& dy, Stash& stash) override;
  double forward_flops(const Shape&) const override { return 0; }
  std::size_t stash_bytes(const Shape& input, DType dtype) const override;
  void reset_parameters(std::uint64_t seed) override;

 private:
  std::int64_t vocab_, dim_;
};

// Learned positions: y[b, t, :] = x[b, t, :] + weight[t, :] for x [B, T, dim], T <= max_len.
// Stashes nothing.
class PositionEmbedding : public Layer {
 public:
  PositionEmbedding(std::int64_t max_len, std::int64_t dim);
  std::string name() const override;
  Shape output_shape(const Shape& input) const override;
  Tensor forward(ExecContext& ctx, const Tensor& x, Stash& stash, bool training) override;
  Tensor backward(ExecContext& ctx, const Tensor& dy, Stash& stash) override;
  double forward_flops(const Shape& input) const override;
  std::size_t stash_bytes(const Shape&, DType) const override { return 0; }
  void reset_parameters(std::uint64_t seed) override;

 private:
  std::int64_t max_len_, dim_;
};

}  // namespace hydra
