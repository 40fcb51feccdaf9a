#include "kernels/layers/dropout.hpp"

#include <sstream>

#include "kernels/layers/common.hpp"

namespace hydra {

using namespace layer_util;

Dropout::Dropout(double p, std::uint64_t seed) : p_(p), base_seed_(seed), seed_(seed) {
  check(p >= 0.0 && p < 1.0, "Dropout: p must lie in [0, 1), got " + std::to_string(p));
}

std::string Dropout::name() const {
  std::ostringstream os;
  os << "Dropout(" << p_ << ")";
  return os.str();
}

Tensor Dropout::forward(ExecContext& ctx, const Tensor& x, Stash& stash, bool training) {
  check_input(*this, ctx, x);
  begin_stash(stash, x);
  if (!training || p_ == 0.0) return x;
  Tensor y = empty_on(ctx, x.shape(), x.dtype());
  Tensor mask = empty_on(ctx, x.shape(), x.dtype());
  ctx.backend().dropout_forward(y, mask, x, p_, derive_seed(seed_, calls_++), ctx);
  stash.tensors = {mask};
  return y;
}

Tensor Dropout::backward(ExecContext& ctx, const Tensor& dy, Stash& stash) {
  if (p_ == 0.0) return dy;
  const Tensor& mask = stashed(*this, stash, 0);
  Tensor dx = empty_on(ctx, dy.shape(), dy.dtype());
  ctx.backend().mul(dx, dy, mask, ctx);
  return dx;
}

double Dropout::forward_flops(const Shape& input) const {
  return static_cast<double>(shape_numel(input));
}

std::size_t Dropout::stash_bytes(const Shape& input, DType dtype) const {
  return p_ == 0.0 ? 0 : bytes_of(shape_numel(input), dtype);
}

void Dropout::reset_parameters(std::uint64_t seed) {
  seed_ = derive_seed(base_seed_, seed);
  calls_ = 0;
}

void Dropout::restore_state(const std::vector<std::uint64_t>& state) {
  check(state.size() == 2, name() + ": restore_state needs {seed, calls}, got " +
                               std::to_string(state.size()) + " values");
  seed_ = state[0];
  calls_ = state[1];
}

}  // namespace hydra
