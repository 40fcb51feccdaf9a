#include "kernels/layers/conv2d.hpp"

#include <cmath>

#include "kernels/layers/common.hpp"

namespace hydra {

using namespace layer_util;

Conv2d::Conv2d(std::int64_t in_ch, std::int64_t out_ch, std::int64_t kernel, std::int64_t stride,
               std::int64_t pad, bool bias)
    : in_ch_(in_ch), out_ch_(out_ch), kernel_(kernel), stride_(stride), pad_(pad), bias_(bias) {
  check(in_ch > 0 && out_ch > 0 && kernel > 0 && stride > 0 && pad >= 0,
        "Conv2d: channels, kernel and stride must be positive and pad non-negative");
  add_parameter("weight", {out_ch, in_ch, kernel, kernel});
  if (bias) add_parameter("bias", {out_ch});
}

std::string Conv2d::name() const {
  return "Conv2d(" + std::to_string(in_ch_) + "->" + std::to_string(out_ch_) + ", k" +
         std::to_string(kernel_) + " s" + std::to_string(stride_) + " p" + std::to_string(pad_) +
         ")";
}

Conv2dDesc Conv2d::desc(const Shape& input) const {
  if (input.size() != 4 || input[1] != in_ch_)
    shape_error(*this, input, "expected NCHW input with " + std::to_string(in_ch_) + " channels");
  const Conv2dDesc d{.n = input[0],
                     .c = in_ch_,
                     .h = input[2],
                     .w = input[3],
                     .k = out_ch_,
                     .r = kernel_,
                     .s = kernel_,
                     .stride = stride_,
                     .pad = pad_};
  if (input[2] + 2 * pad_ < kernel_ || input[3] + 2 * pad_ < kernel_)
    shape_error(*this, input, "image smaller than the kernel");
  return d;
}

Shape Conv2d::output_shape(const Shape& input) const {
  const Conv2dDesc d = desc(input);
  return {d.n, d.k, d.out_h(), d.out_w()};
}

Tensor Conv2d::forward(ExecContext& ctx, const Tensor& x, Stash& stash, bool training) {
  check_input(*this, ctx, x);
  begin_stash(stash, x);
  const Conv2dDesc d = desc(x.shape());
  Tensor y = empty_on(ctx, {d.n, d.k, d.out_h(), d.out_w()}, x.dtype());
  Backend& be = ctx.backend();
  be.conv2d_forward(y, x, params_[0].value, d, ctx);
  if (bias_) be.add_channel_bias(y, params_[1].value, ctx);
  if (training) stash.tensors = {x};
  return y;
}

Tensor Conv2d::backward(ExecContext& ctx, const Tensor& dy, Stash& stash) {
  const Tensor& x = stashed(*this, stash, 0);
  const Conv2dDesc d = desc(x.shape());
  Backend& be = ctx.backend();
  be.conv2d_backward_filter(params_[0].grad, dy, x, d, ctx);
  if (bias_) be.channel_bias_grad(params_[1].grad, dy, ctx);
  Tensor dx = empty_on(ctx, x.shape(), x.dtype());
  be.conv2d_backward_data(dx, dy, params_[0].value, d, ctx);
  return dx;
}

double Conv2d::forward_flops(const Shape& input) const {
  const double outputs = static_cast<double>(shape_numel(output_shape(input)));
  return outputs * (2.0 * static_cast<double>(in_ch_ * kernel_ * kernel_) + (bias_ ? 1 : 0));
}

std::size_t Conv2d::stash_bytes(const Shape& input, DType dtype) const {
  desc(input);
  return bytes_of(shape_numel(input), dtype);
}

void Conv2d::reset_parameters(std::uint64_t seed) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_ch_ * kernel_ * kernel_));
  for (std::size_t i = 0; i < params_.size(); ++i)
    init_uniform(params_[i], bound, derive_seed(seed, i));
}

}  // namespace hydra
