#pragma once
// Helpers shared by the layer implementations (internal to kernels/layers and kernels/model.cpp):
// stash bookkeeping, shape errors, linear algebra on row-major views and deterministic init.
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/backend.hpp"
#include "kernels/layer.hpp"

namespace hydra::layer_util {

// Seed of sub-item `i` (layer of a model, parameter of a layer) derived from `seed`.
std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t i);

// Throws hydra::Error "<layer name>: <what> (input <shape>)".
[[noreturn]] void shape_error(const Layer& layer, const Shape& input, const std::string& what);
// Throws unless the input is floating, has the parameters' dtype and the parameters live on
// ctx.device (skips the dtype check for parameterless layers).
void check_input(const Layer& layer, const ExecContext& ctx, const Tensor& x);
// Clears `stash` and records the input shape.
void begin_stash(Stash& stash, const Tensor& x);
// Stashed tensor i; throws when backward runs without a matching training-mode forward.
const Tensor& stashed(const Layer& layer, const Stash& stash, std::size_t i);

// Elements [begin, begin + n) of contiguous `t` as a 1-d view (sharing storage).
Tensor flat_range(const Tensor& t, std::int64_t begin, std::int64_t n);
// Uninitialised activation-like tensor on ctx.device.
inline Tensor empty_on(const ExecContext& ctx, const Shape& shape, DType dtype) {
  return Tensor::empty(shape, dtype, ctx.device);
}
inline std::size_t bytes_of(std::int64_t numel, DType dtype) {
  return static_cast<std::size_t>(numel) * dtype_size(dtype);
}

// y = x @ w^T (+ b) with w [out, in], x viewed as [rows, in], y as [rows, out].
void linear_forward(ExecContext& ctx, Tensor& y, const Tensor& x, const Tensor& w, const Tensor* b);
// dw += dy^T @ x; db += column sums of dy (when db); dx = dy @ w + dx_beta * dx (when dx).
void linear_backward(ExecContext& ctx, const Tensor& dy, const Tensor& x, const Tensor& w,
                     Tensor& dw, Tensor* db, Tensor* dx, double dx_beta = 0.0);

// Deterministic initialisation, computed on the host in double and copied into the parameter
// (keeping its storage, dtype and device).
void set_values(Parameter& p, const std::vector<double>& values);
void init_uniform(Parameter& p, double bound, std::uint64_t seed);  // U(-bound, bound)
void init_normal(Parameter& p, double stddev, std::uint64_t seed);  // N(0, stddev^2)
void init_constant(Parameter& p, double value);

// Base of layers that map x -> f(x) elementwise and stash x for the backward.
class ElementwiseLayer : public Layer {
 public:
  Shape output_shape(const Shape& input) const override { return input; }
  Tensor forward(ExecContext& ctx, const Tensor& x, Stash& stash, bool training) override;
  Tensor backward(ExecContext& ctx, const Tensor& dy, Stash& stash) override;
  double forward_flops(const Shape& input) const override;
  std::size_t stash_bytes(const Shape& input, DType dtype) const override;
  void reset_parameters(std::uint64_t) override {}

 protected:
  virtual void apply(ExecContext& ctx, Tensor& y, const Tensor& x) = 0;
  virtual void apply_backward(ExecContext& ctx, Tensor& dx, const Tensor& dy, const Tensor& x) = 0;
  virtual double flops_per_element() const = 0;
};

}  // namespace hydra::layer_util
