#pragma once
// Helpers for the layer, model and optimizer tests: deterministic random tensors, central
// finite differences in double precision and closeness checks.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "kernels/backend.hpp"
#include "kernels/core/tensor.hpp"
#include "kernels/layer.hpp"
#include "kernels/random.hpp"

namespace hydra::test {

inline std::vector<double> random_values(std::int64_t n, std::uint64_t seed, double lo = -1.0,
                                         double hi = 1.0) {
  std::vector<double> v(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = lo + (hi - lo) * uniform01(seed, i);
  return v;
}

inline Tensor random_tensor(const Shape& shape, std::uint64_t seed, DType dtype = DType::f64,
                            double lo = -1.0, double hi = 1.0) {
  return Tensor::from_vector(random_values(shape_numel(shape), seed, lo, hi), shape, dtype);
}

// Values with |x| in [0.1, 1] (away from ReLU's kink).
inline Tensor random_nonzero(const Shape& shape, std::uint64_t seed, DType dtype = DType::f64) {
  std::vector<double> v = random_values(shape_numel(shape), seed);
  for (double& x : v)
    x = (x < 0 ? -1.0 : 1.0) * (0.1 + 0.9 * std::abs(x));
  return Tensor::from_vector(v, shape, dtype);
}

// Distinct values spaced by 0.05 in random order (no ties for max pooling).
inline Tensor random_distinct(const Shape& shape, std::uint64_t seed, DType dtype = DType::f64) {
  const std::vector<double> keys = random_values(shape_numel(shape), seed);
  std::vector<std::size_t> order(keys.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](auto a, auto b) { return keys[a] < keys[b]; });
  std::vector<double> v(keys.size());
  for (std::size_t i = 0; i < v.size(); ++i)
    v[order[i]] = 0.05 * static_cast<double>(i) - 0.025 * static_cast<double>(v.size());
  return Tensor::from_vector(v, shape, dtype);
}

inline Tensor random_ids(const Shape& shape, std::int32_t bound, std::uint64_t seed) {
  std::vector<std::int32_t> v(static_cast<std::size_t>(shape_numel(shape)));
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<std::int32_t>(uniform01(seed, i) * static_cast<float>(bound)) % bound;
  return Tensor::from_ints(v, shape);
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  return std::inner_product(a.begin(), a.end(), b.begin(), 0.0);
}

// Largest |a - b| / max(1, |a|, |b|) and a CHECK that it is at most `tol`.
inline double check_close(const std::vector<double>& a, const std::vector<double>& b, double tol,
                          const std::string& what) {
  REQUIRE_MESSAGE(a.size() == b.size(), what);
  double worst = 0;
  std::size_t at = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double e = std::abs(a[i] - b[i]) / std::max({1.0, std::abs(a[i]), std::abs(b[i])});
    if (!(e <= worst)) worst = e, at = i;  // NaN counts as the worst
  }
  INFO(what << ": worst relative error " << worst << " at " << at << " ("
            << (a.empty() ? 0.0 : a[at]) << " vs " << (b.empty() ? 0.0 : b[at]) << ")");
  CHECK(worst <= tol);
  return worst;
}

// As check_close, relative to the largest magnitude in `b` (for comparing devices).
inline void check_close_scaled(const std::vector<double>& a, const std::vector<double>& b,
                               double tol, const std::string& what) {
  double scale = 1.0;
  for (double x : b)
    scale = std::max(scale, std::abs(x));
  std::vector<double> as(a), bs(b);
  for (double& x : as)
    x /= scale;
  for (double& x : bs)
    x /= scale;
  check_close(as, bs, tol, what);
}

// Central differences of f with respect to every element of the host f64 tensor t.
inline std::vector<double> numeric_grad(Tensor& t, const std::function<double()>& f,
                                        double h = 1e-6) {
  double* v = t.data_as<double>();
  std::vector<double> g(static_cast<std::size_t>(t.numel()));
  for (std::size_t i = 0; i < g.size(); ++i) {
    const double saved = v[i];
    v[i] = saved + h;
    const double plus = f();
    v[i] = saved - h;
    const double minus = f();
    v[i] = saved;
    g[i] = (plus - minus) / (2 * h);
  }
  return g;
}

// Checks layer.backward against central differences of loss = sum(y * r) (random r) with
// respect to the input (when floating) and every parameter; f64 on the host. `before_forward`
// runs before every forward (e.g. to replay a dropout mask). Also checks stash_bytes().
// Casts the layer to f64 on the host first and gives its parameters random values in
// [-0.5, 0.5].
inline void gradcheck(Layer& layer, const Tensor& x, std::uint64_t seed = 7, double tol = 1e-6,
                      const std::function<void()>& before_forward = {}) {
  ExecContext ctx = ExecContext::on(Device::host());
  layer.to(Device::host(), DType::f64);
  std::uint64_t k = 0;
  for (Parameter& p : layer.parameters())
    copy(p.value, random_tensor(p.value.shape(), splitmix64(seed + ++k), DType::f64, -0.5, 0.5));
  if (before_forward) before_forward();
  Stash stash;
  const Tensor y = layer.forward(ctx, x, stash, true);
  CHECK(y.shape() == layer.output_shape(x.shape()));
  CHECK(stash.bytes() == layer.stash_bytes(x.shape(), DType::f64));
  const std::vector<double> r = random_values(y.numel(), seed);
  layer.zero_grad(ctx);
  const Tensor dx = layer.backward(ctx, Tensor::from_vector(r, y.shape(), DType::f64), stash);
  Tensor xp = x.clone();
  const auto loss = [&] {
    if (before_forward) before_forward();
    Stash s;
    return dot(layer.forward(ctx, xp, s, true).to_doubles(), r);
  };
  if (x.dtype() == DType::f64) check_close(dx.to_doubles(), numeric_grad(xp, loss), tol, "dx");
  for (Parameter& p : layer.parameters())
    check_close(p.grad.to_doubles(), numeric_grad(p.value, loss), tol, "d" + p.name);
}

}  // namespace hydra::test
