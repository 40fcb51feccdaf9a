#pragma once
#include "kernels/backend.hpp"
#include "kernels/layer.hpp"

namespace hydra {

// 2-d convolution on NCHW input: weight [out_ch, in_ch, kernel, kernel], bias [out_ch].
// Square kernel and stride, zero padding. Stashes x.
class Conv2d : public Layer {
 public:
  Conv2d(std::int64_t in_ch, std::int64_t out_ch, std::int64_t kernel, std::int64_t stride = 1,
         std::int64_t pad = 0, bool bias = true);
  std::string name() const override;
  Shape output_shape(const Shape& input) const override;
  Tensor forward(ExecContext& ctx, const Tensor& x, Stash& stash, bool training) override;
  Tensor backward(ExecContext& ctx, const Tensor& dy, Stash& stash) override;
  double forward_flops(const Shape& input) const override;
  std::size_t stash_bytes(const Shape& input, DType dtype) const override;
  void reset_parameters(std::uint64_t seed) override;

 private:
  Conv2dDesc desc(const Shape& input) const;  // validates the input shape
  std::int64_t in_ch_, out_ch_, kernel_, stride_, pad_;
  bool bias_;
};

}  // namespace hydra
