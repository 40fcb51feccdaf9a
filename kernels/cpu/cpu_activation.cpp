// Activations (ReLU, exact GELU) and dropout on the CPU.
#include <cmath>
#include <cstdint>
#include <numbers>

#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cpu/cpu_common.hpp"
#include "kernels/random.hpp"

namespace hydra {

using cpu::map_floats;

namespace {

constexpr double kInvSqrt2 = 1 / std::numbers::sqrt2;
constexpr double kInvSqrt2Pi = std::numbers::inv_sqrtpi / std::numbers::sqrt2;  // phi(0)

}  // namespace

void CpuBackend::relu_forward(Tensor& y, const Tensor& x, ExecContext& ctx) {
  map_floats(
      "relu_forward", ctx, y, [](auto v) { return v > 0 ? v : decltype(v)(0); }, x);
}

void CpuBackend::relu_backward(Tensor& dx, const Tensor& dy, const Tensor& x, ExecContext& ctx) {
  map_floats(
      "relu_backward", ctx, dx, [](auto g, auto v) { return v > 0 ? g : decltype(g)(0); }, dy, x);
}

void CpuBackend::gelu_forward(Tensor& y, const Tensor& x, ExecContext& ctx) {
  map_floats(
      "gelu_forward", ctx, y,
      [](auto v) {
        using T = decltype(v);
        return T(0.5) * v * (T(1) + std::erf(v * T(kInvSqrt2)));
      },
      x);
}

// d/dx [x Phi(x)] = Phi(x) + x phi(x).
void CpuBackend::gelu_backward(Tensor& dx, const Tensor& dy, const Tensor& x, ExecContext& ctx) {
  map_floats(
      "gelu_backward", ctx, dx,
      [](auto g, auto v) {
        using T = decltype(v);
        const T cdf = T(0.5) * (T(1) + std::erf(v * T(kInvSqrt2)));
        const T pdf = T(kInvSqrt2Pi) * std::exp(T(-0.5) * v * v);
        return g * (cdf + v * pdf);
      },
      dy, x);
}

void CpuBackend::dropout_forward(Tensor& y, Tensor& mask, const Tensor& x, double p,
                                 std::uint64_t seed, ExecContext& ctx) {
  const char* op = "dropout_forward";
  op_checks::that(p >= 0 && p < 1, op, "p = " + std::to_string(p) + " must lie in [0, 1)");
  cpu::check_floats(op, ctx, {&y, &mask, &x});
  op_checks::same_numel(op, mask, x);
  cpu::check_disjoint(op, mask, x);
  cpu::dispatch(x, [&](auto tag) {
    using T = decltype(tag);
    T* m = mask.data_as<T>();
    const T keep = static_cast<T>(1.0 / (1.0 - p));
    for (std::int64_t i = 0; i < mask.numel(); ++i)
      m[i] = uniform01(seed, static_cast<std::uint64_t>(i)) >= p ? keep : T(0);
  });
  map_floats(
      op, ctx, y, [](auto v, auto k) { return v * k; }, x, mask);
}

}  // namespace hydra
