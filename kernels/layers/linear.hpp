#pragma once
#include "kernels/layer.hpp"

namespace hydra {

// y = x @ W^T + b for x [..., in]; weight [out, in], bias [out]. Stashes x.
class Linear : public Layer {
 public:
  Linear(std::int64_t in, std::int64_t out, bool bias = true);
  std::string name() const override;
  Shape output_shape(const Shape& input) const override;
  Tensor forward(ExecContext& ctx, const Tensor& x, Stash& stash, bool training) override;
  Tensor backward(ExecContext& ctx, const Tensor& dy, Stash& stash) override;
  double forward_flops(const Shape& input) const override;
  std::size_t stash_bytes(const Shape& input, DType dtype) const override;
  void reset_parameters(std::uint64_t seed) override;

 private:
  std::int64_t in_, out_;
  bool bias_;
};

}  // namespace hydra
