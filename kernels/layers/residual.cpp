#include "kernels/layers/residual.hpp"

#include "kernels/backend.hpp"
#include "kernels/layers/common.hpp"

namespace hydra {

using namespace layer_util;

Residual::Residual(std::vector<LayerPtr> inner) : inner_(std::move(inner)) {
  check(!inner_.empty(), "Residual: needs at least one inner layer");
  for (std::size_t i = 0; i < inner_.size(); ++i) {
    check(inner_[i] != nullptr, "Residual: inner layer " + std::to_string(i) + " is null");
    for (const Parameter& p : inner_[i]->parameters()) {
      params_.push_back(p);
      params_.back().name = std::to_string(i) + "." + p.name;
    }
  }
}

void Residual::bind_inner() {
  std::size_t k = 0;
  for (auto& layer : inner_)
    for (Parameter& p : layer->parameters()) {
      p.value = params_[k].value;
      p.grad = params_[k++].grad;
    }
}

void Residual::pull_inner() {
  std::size_t k = 0;
  for (auto& layer : inner_)
    for (const Parameter& p : layer->parameters()) {
      params_[k].value = p.value;
      params_[k++].grad = p.grad;
    }
}

std::string Residual::name() const {
  std::string s = "Residual(";
  for (std::size_t i = 0; i < inner_.size(); ++i)
    s += (i ? ", " : "") + inner_[i]->name();
  return s + ")";
}

Shape Residual::output_shape(const Shape& input) const {
  Shape s = input;
  for (const auto& layer : inner_)
    s = layer->output_shape(s);
  if (s != input) shape_error(*this, input, "inner layers produce " + shape_str(s));
  return s;
}

Tensor Residual::forward(ExecContext& ctx, const Tensor& x, Stash& stash, bool training) {
  if (!x.defined()) throw Error(name() + ": undefined input");
  output_shape(x.shape());
  bind_inner();
  begin_stash(stash, x);
  stash.children.resize(inner_.size());
  Tensor h = x;
  for (std::size_t i = 0; i < inner_.size(); ++i)
    h = inner_[i]->forward(ctx, h, stash.children[i], training);
  Tensor y = empty_on(ctx, x.shape(), x.dtype());
  ctx.backend().add(y, x, h, ctx);
  return y;
}

Tensor Residual::backward(ExecContext& ctx, const Tensor& dy, Stash& stash) {
  if (stash.children.size() != inner_.size())
    throw Error(name() + ": backward without a matching forward");
  bind_inner();
  Tensor g = dy;
  for (std::size_t i = inner_.size(); i-- > 0;)
    g = inner_[i]->backward(ctx, g, stash.children[i]);
  Tensor dx = empty_on(ctx, dy.shape(), dy.dtype());
  ctx.backend().add(dx, dy, g, ctx);
  return dx;
}

double Residual::forward_flops(const Shape& input) const {
  double f = static_cast<double>(shape_numel(output_shape(input)));  // the skip addition
  Shape s = input;
  for (const auto& layer : inner_) {
    f += layer->forward_flops(s);
    s = layer->output_shape(s);
  }
  return f;
}

std::size_t Residual::stash_bytes(const Shape& input, DType dtype) const {
  output_shape(input);
  std::size_t n = 0;
  Shape s = input;
  for (const auto& layer : inner_) {
    n += layer->stash_bytes(s, dtype);
    s = layer->output_shape(s);
  }
  return n;
}

void Residual::reset_parameters(std::uint64_t seed) {
  bind_inner();
  for (std::size_t i = 0; i < inner_.size(); ++i)
    inner_[i]->reset_parameters(derive_seed(seed, i));
  pull_inner();
}

void Residual::to(Device device, DType dtype) {
  Layer::to(device, dtype);
  bind_inner();
}

std::vector<std::uint64_t> Residual::save_state() const {
  std::vector<std::uint64_t> out{inner_.size()};
  for (const LayerPtr& l : inner_) {
    std::vector<std::uint64_t> s = l->save_state();
    out.push_back(s.size());
    out.insert(out.end(), s.begin(), s.end());
  }
  return out;
}

void Residual::restore_state(const std::vector<std::uint64_t>& state) {
  const std::string bad = name() + ": restore_state got a state that does not fit its layers";
  check(!state.empty() && state[0] == inner_.size(), bad);
  // Check the layout first, so a bad state changes nothing.
  std::size_t at = 1;
  for (std::size_t i = 0; i < inner_.size(); ++i) {
    check(at < state.size() && state[at] <= state.size() - at - 1, bad);
    at += 1 + state[at];
  }
  check(at == state.size(), bad);
  at = 1;
  for (const LayerPtr& l : inner_) {
    const auto n = static_cast<std::ptrdiff_t>(state[at]);
    const auto first = state.begin() + static_cast<std::ptrdiff_t>(at) + 1;
    l->restore_state(std::vector<std::uint64_t>(first, first + n));
    at += 1 + state[at];
  }
}

}  // namespace hydra
