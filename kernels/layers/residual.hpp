#pragma once
#include <utility>
#include <vector>

#include "kernels/layer.hpp"

namespace hydra {

// y = x + f(x) with f = the inner layers run in sequence (their output shape must equal the
// input shape). The stash keeps one child stash per inner layer.
//
// Parameters: the Residual's parameters() list every inner layer's parameters (named
// "<inner index>.<name>") and is the authoritative copy: the entries share storage with the
// inner layers' own Parameters, and before each forward, backward or reset the Residual rebinds
// the inner layers' value/grad tensors to its own entries. So Model::parameters(), to(),
// zero_grad() and optimizers (whose state lives in the Residual's entries) see one parameter set.
class Residual : public Layer {
 public:
  explicit Residual(std::vector<LayerPtr> inner);
  std::string name() const override;
  Shape output_shape(const Shape& input) const override;
  Tensor forward(ExecContext& ctx, const Tensor& x, Stash& stash, bool training) override;
  Tensor backward(ExecContext& ctx, const Tensor& dy, Stash& stash) override;
  double forward_flops(const Shape& input) const override;
  std::size_t stash_bytes(const Shape& input, DType dtype) const override;
  // Inner layer i is reset from a seed derived from (seed, i).
  void reset_parameters(std::uint64_t seed) override;
  void to(Device device, DType dtype = DType::f32) override;
  // {number of inner layers, then per inner layer: its count of values, the values}.
  std::vector<std::uint64_t> save_state() const override;
  void restore_state(const std::vector<std::uint64_t>& state) override;

  std::size_t size() const { return inner_.size(); }
  const Layer& inner(std::size_t i) const { return *inner_.at(i); }

 private:
  void bind_inner();  // inner layers' value/grad <- own entries
  void pull_inner();  // own entries' value/grad <- inner layers
  std::vector<LayerPtr> inner_;
};

// Builds a vector of layers from unique_ptrs: make_layers(std::make_unique<ReLU>(), ...).
template <class... Ls>
std::vector<LayerPtr> make_layers(Ls&&... layers) {
  std::vector<LayerPtr> v;
  (v.push_back(std::forward<Ls>(layers)), ...);
  return v;
}

}  // namespace hydra
