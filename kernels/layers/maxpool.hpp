#pragma once
#include "kernels/backend.hpp"
#include "kernels/layer.hpp"

namespace hydra {

// Max pooling on NCHW input with a square window, no padding. Stashes x and y.
class MaxPool2d : public Layer {
 public:
  explicit MaxPool2d(std::int64_t window, std::int64_t stride = 0);  // stride 0: = window
  std::string name() const override;
  Shape output_shape(const Shape& input) const override;
  Tensor forward(ExecContext& ctx, const Tensor& x, Stash& stash, bool training) override;
  Tensor backward(ExecContext& ctx, const Tensor& dy, Stash& stash) override;
  double forward_flops(const Shape& input) const override;
  std::size_t stash_bytes(const Shape& input, DType dtype) const override;
  void reset_parameters(std::uint64_t) override {}

 private:
  Pool2dDesc desc(const Shape& input) const;  // validates the input shape
  std::int64_t window_, stride_;
};

}  // namespace hydra
