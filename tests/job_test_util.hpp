#pragma once
// Helpers for the tests that run jobs: a separable synthetic classification task, a base for
// identity layers that observe or break a run (count models, inject failures), virtual CPU
// devices, and parameter snapshots compared across runs.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "actors/hydra.hpp"
#include "kernels/layer.hpp"
#include "kernels/random.hpp"

namespace hydra::test {

// n rows of `features` inputs in [-1, 1), labelled by a random linear teacher over `classes`;
// the first 3/4 train, the rest validate. `nan_inputs` puts a NaN in the first row.
inline DataSplits teacher_data(std::int64_t n, std::int64_t features, std::int64_t classes,
                               std::uint64_t seed, bool nan_inputs = false) {
  std::vector<float> x(static_cast<std::size_t>(n * features));
  for (std::size_t i = 0; i < x.size(); ++i)
    x[i] = 2.0f * uniform01(seed, i) - 1.0f;
  if (nan_inputs) x[3] = std::nanf("");
  std::vector<float> w(static_cast<std::size_t>(features * classes));
  for (std::size_t i = 0; i < w.size(); ++i)
    w[i] = 2.0f * uniform01(seed + 1, i) - 1.0f;
  std::vector<std::int32_t> y(static_cast<std::size_t>(n));
  for (std::int64_t r = 0; r < n; ++r) {
    int best = 0;
    double best_v = -1e30;
    for (std::int64_t c = 0; c < classes; ++c) {
      double v = 0;
      for (std::int64_t f = 0; f < features; ++f)
        v += x[static_cast<std::size_t>(r * features + f)] *
             w[static_cast<std::size_t>(f * classes + c)];
      if (v > best_v) best_v = v, best = static_cast<int>(c);
    }
    y[static_cast<std::size_t>(r)] = best;
  }
  Dataset all(Tensor::from_vector(x, {n, features}), Tensor::from_ints(y, {n}));
  auto [train, val] = all.split(n * 3 / 4);
  return {train, val};
}

// An identity layer without parameters, flops or stash; tests override name() and forward().
class IdentityLayer : public Layer {
 public:
  Shape output_shape(const Shape& input) const override { return input; }
  Tensor backward(ExecContext&, const Tensor& dy, Stash&) override { return dy; }
  double forward_flops(const Shape&) const override { return 0; }
  std::size_t stash_bytes(const Shape&, DType) const override { return 0; }
  void reset_parameters(std::uint64_t) override {}
};

// n virtual CPU devices of 64 MiB each.
inline RuntimeOptions cpu_devices(int n) {
  RuntimeOptions o;
  for (int i = 0; i < n; ++i)
    o.devices.push_back({Device::cpu(i), 64 << 20});
  return o;
}

// Every parameter's values, in the model's order.
inline std::vector<std::vector<float>> parameter_values(Model& m) {
  std::vector<std::vector<float>> out;
  for (Parameter* p : m.parameters())
    out.push_back(p->value.to_floats());
  return out;
}

// Largest |a - b| over all parameters (the same shapes required).
inline double max_diff(const std::vector<std::vector<float>>& a,
                       const std::vector<std::vector<float>>& b) {
  REQUIRE(a.size() == b.size());
  double d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].size() == b[i].size());
    for (std::size_t k = 0; k < a[i].size(); ++k)
      d = std::max(d, std::fabs(static_cast<double>(a[i][k]) - b[i][k]));
  }
  return d;
}

}  // namespace hydra::test
