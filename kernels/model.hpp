#pragma once
// A model is an ordered list of layers, so it can be cut into sequential shards
// (layers [begin, end)). Blocks with internal residual paths are single layers (Residual).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/layer.hpp"

namespace hydra {

class Model {
 public:
  Model() = default;
  Model(Model&&) = default;
  Model& operator=(Model&&) = default;

  Model& add(LayerPtr layer);
  template <class L, class... Args>
  Model& emplace(Args&&... args) {
    return add(std::make_unique<L>(std::forward<Args>(args)...));
  }

  std::size_t size() const { return layers_.size(); }
  Layer& layer(std::size_t i) { return *layers_.at(i); }
  const Layer& layer(std::size_t i) const { return *layers_.at(i); }

  // Deterministic initialisation: layer i is reset from a seed derived from (seed, i).
  void init(std::uint64_t seed);
  void to(Device device, DType dtype = DType::f32);
  void zero_grad(ExecContext& ctx);
  std::vector<Parameter*> parameters();
  std::int64_t parameter_count() const;

  // Runs layers [begin, end) forward; stashes has one entry per layer run (resized here).
  Tensor forward(ExecContext& ctx, const Tensor& x, std::vector<Stash>& stashes, bool training,
                 std::size_t begin = 0, std::size_t end = SIZE_MAX);
  // Runs layers [begin, end) backward in reverse; returns d(input of layer begin).
  Tensor backward(ExecContext& ctx, const Tensor& dy, std::vector<Stash>& stashes,
                  std::size_t begin = 0, std::size_t end = SIZE_MAX);
  Shape output_shape(const Shape& input) const;
  double forward_flops(const Shape& input) const;
  std::string summary(const Shape& input) const;  // one line per layer: name, output, params

 private:
  std::vector<LayerPtr> layers_;
};

}  // namespace hydra
