// Elementwise arithmetic, reductions and data movement on the CPU.
#include <cstdint>

#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cpu/cpu_common.hpp"

namespace hydra {

using cpu::dispatch;
using cpu::map_floats;

namespace {

// sum_i f(x[i]), accumulated in double.
template <class F>
double reduce(const char* op, const ExecContext& ctx, const Tensor& x, F f) {
  cpu::check_floats(op, ctx, {&x});
  return dispatch(x, [&](auto tag) {
    using T = decltype(tag);
    const T* p = x.data_as<T>();
    double acc = 0;
    for (std::int64_t i = 0; i < x.numel(); ++i)
      acc += f(static_cast<double>(p[i]));
    return acc;
  });
}

}  // namespace

void CpuBackend::fill(Tensor& x, double value, ExecContext& ctx) {
  map_floats(
      "fill", ctx, x, [value](auto) { return value; }, x);
}

void CpuBackend::convert(Tensor& dst, const Tensor& src, ExecContext& ctx) {
  const char* op = "convert";
  cpu::check_floats(op, ctx, {&dst});
  cpu::check_floats(op, ctx, {&src});
  op_checks::same_numel(op, dst, src);
  cpu::check_same_or_disjoint(op, dst, src);
  dispatch(dst, [&](auto dst_tag) {
    dispatch(src, [&](auto src_tag) {
      using D = decltype(dst_tag);
      using S = decltype(src_tag);
      D* d = dst.data_as<D>();
      const S* s = src.data_as<S>();
      for (std::int64_t i = 0; i < dst.numel(); ++i)
        d[i] = static_cast<D>(s[i]);
    });
  });
}

void CpuBackend::add(Tensor& out, const Tensor& a, const Tensor& b, ExecContext& ctx) {
  map_floats(
      "add", ctx, out, [](auto x, auto y) { return x + y; }, a, b);
}

void CpuBackend::mul(Tensor& out, const Tensor& a, const Tensor& b, ExecContext& ctx) {
  map_floats(
      "mul", ctx, out, [](auto x, auto y) { return x * y; }, a, b);
}

void CpuBackend::axpy(Tensor& y, double alpha, const Tensor& x, ExecContext& ctx) {
  map_floats(
      "axpy", ctx, y,
      [alpha](auto yv, auto xv) { return yv + static_cast<decltype(yv)>(alpha) * xv; }, y, x);
}

void CpuBackend::scale(Tensor& x, double alpha, ExecContext& ctx) {
  map_floats(
      "scale", ctx, x, [alpha](auto v) { return static_cast<decltype(v)>(alpha) * v; }, x);
}

double CpuBackend::sum(const Tensor& x, ExecContext& ctx) {
  return reduce("sum", ctx, x, [](double v) { return v; });
}

double CpuBackend::sum_squares(const Tensor& x, ExecContext& ctx) {
  return reduce("sum_squares", ctx, x, [](double v) { return v * v; });
}

void CpuBackend::permute_0213(Tensor& out, const Tensor& in, ExecContext& ctx) {
  const char* op = "permute_0213";
  cpu::check_floats(op, ctx, {&out, &in});
  op_checks::that(in.rank() == 4, op, "input " + in.str() + " must be 4-d");
  const std::int64_t n0 = in.dim(0), n1 = in.dim(1), n2 = in.dim(2), n3 = in.dim(3);
  if (out.rank() == 4)
    op_checks::that(out.shape() == Shape{n0, n2, n1, n3}, op,
                    "output " + out.str() + " should have shape " + shape_str({n0, n2, n1, n3}));
  else
    op_checks::same_numel(op, out, in);
  cpu::check_disjoint(op, out, in);
  dispatch(in, [&](auto tag) {
    using T = decltype(tag);
    const T* src = in.data_as<T>();
    T* dst = out.data_as<T>();
    for (std::int64_t a = 0; a < n0; ++a)
      for (std::int64_t b = 0; b < n1; ++b)
        for (std::int64_t c = 0; c < n2; ++c) {
          const T* from = src + ((a * n1 + b) * n2 + c) * n3;
          T* to = dst + ((a * n2 + c) * n1 + b) * n3;
          for (std::int64_t d = 0; d < n3; ++d)
            to[d] = from[d];
        }
  });
}

}  // namespace hydra
