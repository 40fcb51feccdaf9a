#include "kernels/layers/common.hpp"

#include <cmath>
#include <numbers>

#include "kernels/random.hpp"

namespace hydra::layer_util {

std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t i) {
  return splitmix64(seed ^ splitmix64(i + 0x5eed));
}

void shape_error(const Layer& layer, const Shape& input, const std::string& what) {
  throw Error(layer.name() + ": " + what + " (input " + shape_str(input) + ")");
}

void check_input(const Layer& layer, const ExecContext& ctx, const Tensor& x) {
  if (!x.defined()) throw Error(layer.name() + ": undefined input");
  if (x.dtype() == DType::i32)
    throw Error(layer.name() + ": input " + x.str() + " is not floating");
  for (const Parameter& p : layer.parameters()) {
    if (p.value.dtype() != x.dtype())
      throw Error(layer.name() + ": input " + x.str() + " but parameter '" + p.name + "' is " +
                  p.value.str() + " (cast with Layer::to)");
    if (p.value.device() != ctx.device)
      throw Error(layer.name() + ": parameter '" + p.name + "' is " + p.value.str() +
                  " but the context runs on " + ctx.device.str() + " (move with Layer::to)");
  }
}

void begin_stash(Stash& stash, const Tensor& x) {
  stash.clear();
  stash.input_shape = x.shape();
}

const Tensor& stashed(const Layer& layer, const Stash& stash, std::size_t i) {
  if (i >= stash.tensors.size())
    throw Error(layer.name() + ": backward without a matching training-mode forward");
  return stash.tensors[i];
}

Tensor flat_range(const Tensor& t, std::int64_t begin, std::int64_t n) {
  return t.view({-1}).narrow(0, begin, n);
}

void linear_forward(ExecContext& ctx, Tensor& y, const Tensor& x, const Tensor& w,
                    const Tensor* b) {
  const std::int64_t out = w.dim(0), in = w.dim(1), rows = x.numel() / in;
  Backend& be = ctx.backend();
  be.gemm(GemmDesc{.trans_b = true, .m = rows, .n = out, .k = in}, x, w, y, ctx);
  if (b) be.add_bias(y, *b, ctx);
}

void linear_backward(ExecContext& ctx, const Tensor& dy, const Tensor& x, const Tensor& w,
                     Tensor& dw, Tensor* db, Tensor* dx, double dx_beta) {
  const std::int64_t out = w.dim(0), in = w.dim(1), rows = x.numel() / in;
  Backend& be = ctx.backend();
  be.gemm(GemmDesc{.trans_a = true, .m = out, .n = in, .k = rows, .beta = 1.0}, dy, x, dw, ctx);
  if (db) be.bias_grad(*db, dy, ctx);
  if (dx) be.gemm(GemmDesc{.m = rows, .n = in, .k = out, .beta = dx_beta}, dy, w, *dx, ctx);
}

void set_values(Parameter& p, const std::vector<double>& values) {
  Tensor host = Tensor::from_vector(values, p.value.shape(), p.value.dtype());
  copy(p.value, host);
}

void init_uniform(Parameter& p, double bound, std::uint64_t seed) {
  std::vector<double> v(static_cast<std::size_t>(p.value.numel()));
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = (2.0 * uniform01(seed, i) - 1.0) * bound;
  set_values(p, v);
}

void init_normal(Parameter& p, double stddev, std::uint64_t seed) {
  std::vector<double> v(static_cast<std::size_t>(p.value.numel()));
  for (std::size_t i = 0; i < v.size(); ++i) {  // Box-Muller; 1 - u1 lies in (0, 1]
    const double u1 = uniform01(seed, 2 * i), u2 = uniform01(seed, 2 * i + 1);
    v[i] = stddev * std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }
  set_values(p, v);
}

void init_constant(Parameter& p, double value) {
  set_values(p, std::vector<double>(static_cast<std::size_t>(p.value.numel()), value));
}

Tensor ElementwiseLayer::forward(ExecContext& ctx, const Tensor& x, Stash& stash, bool training) {
  check_input(*this, ctx, x);
  begin_stash(stash, x);
  Tensor y = empty_on(ctx, x.shape(), x.dtype());
  apply(ctx, y, x);
  if (training) stash.tensors = {x};
  return y;
}

Tensor ElementwiseLayer::backward(ExecContext& ctx, const Tensor& dy, Stash& stash) {
  const Tensor& x = stashed(*this, stash, 0);
  Tensor dx = empty_on(ctx, x.shape(), x.dtype());
  apply_backward(ctx, dx, dy, x);
  return dx;
}

double ElementwiseLayer::forward_flops(const Shape& input) const {
  return flops_per_element() * static_cast<double>(shape_numel(input));
}

std::size_t ElementwiseLayer::stash_bytes(const Shape& input, DType dtype) const {
  return bytes_of(shape_numel(input), dtype);
}

}  // namespace hydra::layer_util
