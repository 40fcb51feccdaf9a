#include "kernels/layers/layernorm.hpp"

#include "kernels/layers/common.hpp"

namespace hydra {

using namespace layer_util;

LayerNorm::LayerNorm(std::int64_t dim, double eps) : dim_(dim), eps_(eps) {
  check(dim > 0 && eps > 0, "LayerNorm: dim and eps must be positive");
  add_parameter("gamma", {dim});
  add_parameter("beta", {dim});
  init_constant(params_[0], 1.0);
}

std::string LayerNorm::name() const {
  return "LayerNorm(" + std::to_string(dim_) + ")";
}

Shape LayerNorm::output_shape(const Shape& input) const {
  if (input.empty() || input.back() != dim_)
    shape_error(*this, input, "expected last dimension " + std::to_string(dim_));
  return input;
}

Tensor LayerNorm::forward(ExecContext& ctx, const Tensor& x, Stash& stash, bool training) {
  check_input(*this, ctx, x);
  begin_stash(stash, x);
  const std::int64_t rows = shape_numel(output_shape(x.shape())) / dim_;
  Tensor y = empty_on(ctx, x.shape(), x.dtype());
  Tensor mean = empty_on(ctx, {rows}, x.dtype()), rstd = empty_on(ctx, {rows}, x.dtype());
  ctx.backend().layernorm_forward(y, mean, rstd, x, params_[0].value, params_[1].value, eps_, ctx);
  if (training) stash.tensors = {x, mean, rstd};
  return y;
}

Tensor LayerNorm::backward(ExecContext& ctx, const Tensor& dy, Stash& stash) {
  const Tensor &x = stashed(*this, stash, 0), &mean = stashed(*this, stash, 1),
               &rstd = stashed(*this, stash, 2);
  Tensor dx = empty_on(ctx, x.shape(), x.dtype());
  ctx.backend().layernorm_backward(dx, params_[0].grad, params_[1].grad, dy, x, mean, rstd,
                                   params_[0].value, ctx);
  return dx;
}

double LayerNorm::forward_flops(const Shape& input) const {
  return 8.0 * static_cast<double>(shape_numel(output_shape(input)));
}

std::size_t LayerNorm::stash_bytes(const Shape& input, DType dtype) const {
  const std::int64_t n = shape_numel(output_shape(input));
  return bytes_of(n + 2 * (n / dim_), dtype);
}

void LayerNorm::reset_parameters(std::uint64_t) {
  init_constant(params_[0], 1.0);
  init_constant(params_[1], 0.0);
}

}  // namespace hydra
