#include "kernels/layers/linear.hpp"

#include <cmath>

#include "kernels/layers/common.hpp"

namespace hydra {

using namespace layer_util;

Linear::Linear(std::int64_t in, std::int64_t out, bool bias) : in_(in), out_(out), bias_(bias) {
  check(in > 0 && out > 0,
        "Linear: sizes must be positive, got " + std::to_string(in) + "->" + std::to_string(out));
  add_parameter("weight", {out, in});
  if (bias) add_parameter("bias", {out});
}

std::string Linear::name() const {
  return "Linear(" + std::to_string(in_) + "->" + std::to_string(out_) + ")";
}

Shape Linear::output_shape(const Shape& input) const {
  if (input.empty() || input.back() != in_)
    shape_error(*this, input, "expected last dimension " + std::to_string(in_));
  Shape out = input;
  out.back() = out_;
  return out;
}

Tensor Linear::forward(ExecContext& ctx, const Tensor& x, Stash& stash, bool training) {
  check_input(*this, ctx, x);
  begin_stash(stash, x);
  Tensor y = empty_on(ctx, output_shape(x.shape()), x.dtype());
  linear_forward(ctx, y, x, params_[0].value, bias_ ? &params_[1].value : nullptr);
  if (training) stash.tensors = {x};
  return y;
}

Tensor Linear::backward(ExecContext& ctx, const Tensor& dy, Stash& stash) {
  const Tensor& x = stashed(*this, stash, 0);
  Tensor dx = empty_on(ctx, x.shape(), x.dtype());
  linear_backward(ctx, dy, x, params_[0].value, params_[0].grad, bias_ ? &params_[1].grad : nullptr,
                  &dx);
  return dx;
}

double Linear::forward_flops(const Shape& input) const {
  const double rows = static_cast<double>(shape_numel(output_shape(input)) / out_);
  return rows * static_cast<double>(out_) * (2.0 * static_cast<double>(in_) + (bias_ ? 1 : 0));
}

std::size_t Linear::stash_bytes(const Shape& input, DType dtype) const {
  output_shape(input);
  return bytes_of(shape_numel(input), dtype);
}

void Linear::reset_parameters(std::uint64_t seed) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_));
  for (std::size_t i = 0; i < params_.size(); ++i)
    init_uniform(params_[i], bound, derive_seed(seed, i));
}

}  // namespace hydra
