// Bias addition and bias gradients: per column of a matrix (dense layers) and per channel of an
// NCHW tensor (convolutions). Both view y as [outer, channels, inner].
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cpu/cpu_common.hpp"

namespace hydra {

namespace {

struct BiasLayout {
  std::int64_t outer, channels, inner;
};

// Dense: y viewed as [rows, cols] with cols = bias.numel().
BiasLayout column_layout(const char* op, const Tensor& y, const Tensor& bias) {
  return {cpu::rows_of(op, y, bias.numel(), "tensor"), bias.numel(), 1};
}

// NCHW (any number of trailing spatial dims): channel = dim 1.
BiasLayout channel_layout(const char* op, const Tensor& y, const Tensor& bias) {
  op_checks::that(y.rank() >= 2, op, y.str() + " needs at least 2 dimensions [n, c, ...]");
  op_checks::numel_is(op, bias, y.dim(1), "bias");
  std::int64_t inner = 1;
  for (int i = 2; i < y.rank(); ++i)
    inner *= y.dim(i);
  return {y.dim(0), y.dim(1), inner};
}

// y[o, c, i] += bias[c].
void apply_bias(const char* op, Tensor& y, const Tensor& bias, const ExecContext& ctx,
                BiasLayout (*layout)(const char*, const Tensor&, const Tensor&)) {
  cpu::check_floats(op, ctx, {&y, &bias});
  const BiasLayout l = layout(op, y, bias);
  cpu::check_disjoint(op, y, bias);
  cpu::dispatch(y, [&](auto tag) {
    using T = decltype(tag);
    T* p = y.data_as<T>();
    const T* b = bias.data_as<T>();
    for (std::int64_t o = 0; o < l.outer; ++o)
      for (std::int64_t c = 0; c < l.channels; ++c, p += l.inner)
        for (std::int64_t i = 0; i < l.inner; ++i)
          p[i] += b[c];
  });
}

// dbias[c] += sum_{o, i} dy[o, c, i].
void reduce_bias(const char* op, Tensor& dbias, const Tensor& dy, const ExecContext& ctx,
                 BiasLayout (*layout)(const char*, const Tensor&, const Tensor&)) {
  cpu::check_floats(op, ctx, {&dbias, &dy});
  const BiasLayout l = layout(op, dy, dbias);
  cpu::check_disjoint(op, dbias, dy);
  cpu::dispatch(dy, [&](auto tag) {
    using T = decltype(tag);
    std::vector<double> acc(static_cast<std::size_t>(l.channels), 0.0);
    const T* p = dy.data_as<T>();
    for (std::int64_t o = 0; o < l.outer; ++o)
      for (std::int64_t c = 0; c < l.channels; ++c, p += l.inner)
        for (std::int64_t i = 0; i < l.inner; ++i)
          acc[c] += p[i];
    T* db = dbias.data_as<T>();
    for (std::int64_t c = 0; c < l.channels; ++c)
      db[c] += static_cast<T>(acc[c]);
  });
}

}  // namespace

void CpuBackend::add_bias(Tensor& y, const Tensor& bias, ExecContext& ctx) {
  apply_bias("add_bias", y, bias, ctx, column_layout);
}

void CpuBackend::bias_grad(Tensor& dbias, const Tensor& dy, ExecContext& ctx) {
  reduce_bias("bias_grad", dbias, dy, ctx, column_layout);
}

void CpuBackend::add_channel_bias(Tensor& y, const Tensor& bias, ExecContext& ctx) {
  apply_bias("add_channel_bias", y, bias, ctx, channel_layout);
}

void CpuBackend::channel_bias_grad(Tensor& dbias, const Tensor& dy, ExecContext& ctx) {
  reduce_bias("channel_bias_grad", dbias, dy, ctx, channel_layout);
}

}  // namespace hydra
