#include "kernels/layer.hpp"

#include "kernels/backend.hpp"

namespace hydra {

namespace {

// `t` on `device` with `dtype`; `t` itself when it is already there. Casts go through the host
// in double precision so every (device, dtype) pair works.
Tensor moved(const Tensor& t, Device device, DType dtype) {
  if (!t.defined() || (t.device() == device && t.dtype() == dtype)) return t;
  if (t.dtype() == dtype) return t.to(device);
  Tensor host = Tensor::from_vector(t.to_doubles(), t.shape(), dtype);
  return device == Device::host() ? host : host.to(device);
}

}  // namespace

std::size_t Stash::bytes() const {
  std::size_t n = 0;
  for (const Tensor& t : tensors)
    n += t.defined() ? t.nbytes() : 0;
  for (const Stash& c : children)
    n += c.bytes();
  return n;
}

std::size_t Layer::parameter_bytes() const {
  std::size_t n = 0;
  for (const Parameter& p : params_)
    n += p.bytes();
  return n;
}

std::int64_t Layer::parameter_count() const {
  std::int64_t n = 0;
  for (const Parameter& p : params_)
    n += p.value.numel();
  return n;
}

void Layer::to(Device device, DType dtype) {
  if (dtype != DType::f32 && dtype != DType::f64 && dtype != DType::bf16)
    throw Error(name() + ": parameters must be floating, got " + dtype_name(dtype));
  for (Parameter& p : params_) {
    p.value = moved(p.value, device, dtype);
    p.grad = moved(p.grad, device, dtype);
    for (Tensor& s : p.state)
      s = moved(s, device, dtype);
  }
}

void Layer::zero_grad(ExecContext& ctx) {
  for (Parameter& p : params_)
    ctx.backend().fill(p.grad, 0.0, ctx);
}

void Layer::restore_state(const std::vector<std::uint64_t>& state) {
  check(state.empty(), name() + ": restore_state got " + std::to_string(state.size()) +
                           " values, the layer keeps none");
}

Parameter& Layer::add_parameter(const std::string& name, const Shape& shape) {
  Parameter p;
  p.name = name;
  p.value = Tensor::zeros(shape);
  p.grad = Tensor::zeros(shape);
  params_.push_back(std::move(p));
  return params_.back();
}

}  // namespace hydra
