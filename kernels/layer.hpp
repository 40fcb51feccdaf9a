#pragma once
// A layer: forward and backward on any device through the Backend interface.
//
// forward() records in `stash` what backward() needs (saved activations); one forward/backward
// pair per stash, so several micro-batches can be in flight with separate stashes. backward()
// accumulates (+=) into the parameters' grads and returns the gradient of its input.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/core/tensor.hpp"
#include "kernels/exec_context.hpp"
#include "kernels/parameter.hpp"

namespace hydra {

struct Stash {
  std::vector<Tensor> tensors;
  Shape input_shape;
  std::vector<Stash> children;  // one per sub-layer of a composite layer (Residual)
  std::size_t bytes() const;    // tensors and children, as nbytes() (shared storage counted)
  void clear() {
    tensors.clear();
    children.clear();
  }
};

class Layer {
 public:
  virtual ~Layer() = default;

  virtual std::string name() const = 0;  // e.g. "Linear(784->256)"
  // Output shape for an input shape; throws hydra::Error naming the layer on a mismatch.
  virtual Shape output_shape(const Shape& input) const = 0;
  virtual Tensor forward(ExecContext& ctx, const Tensor& x, Stash& stash, bool training) = 0;
  virtual Tensor backward(ExecContext& ctx, const Tensor& dy, Stash& stash) = 0;

  // Floating-point operations of one forward pass (backward counts as 2x by convention).
  virtual double forward_flops(const Shape& input) const = 0;
  // Bytes stashed by a training-mode forward() for an input of this shape with activations of
  // `dtype` (equals Stash::bytes() afterwards; eval-mode forwards stash nothing).
  virtual std::size_t stash_bytes(const Shape& input, DType dtype) const = 0;
  // Deterministic re-initialisation of all parameters from `seed` (values computed on the host
  // in double precision, then stored in the parameters' dtype and device).
  virtual void reset_parameters(std::uint64_t seed) = 0;

  std::vector<Parameter>& parameters() { return params_; }
  const std::vector<Parameter>& parameters() const { return params_; }
  std::size_t parameter_bytes() const;  // values + grads + optimizer state
  std::int64_t parameter_count() const;
  // Moves/casts parameters, grads and optimizer state to `device` and `dtype` (synchronous
  // copies on the default streams: finish work queued on other streams first).
  virtual void to(Device device, DType dtype = DType::f32);
  void zero_grad(ExecContext& ctx);

  // Internal state besides the parameters that must survive a training-state checkpoint, as a
  // few integers (e.g. Dropout's random-stream counter). Default: none. restore_state() takes
  // what save_state() returned (of a layer of the same kind) and throws hydra::Error naming the
  // layer when the count does not fit.
  virtual std::vector<std::uint64_t> save_state() const { return {}; }
  virtual void restore_state(const std::vector<std::uint64_t>& state);

 protected:
  // Adds a parameter of `shape` (f32 on the host, zero-initialised, with a zero grad).
  Parameter& add_parameter(const std::string& name, const Shape& shape);
  std::vector<Parameter> params_;
};

using LayerPtr = std::unique_ptr<Layer>;

}  // namespace hydra
