#include "kernels/model.hpp"

#include <algorithm>
#include <sstream>

#include "kernels/layers/common.hpp"

namespace hydra {

namespace {
std::size_t clamp_end(std::size_t begin, std::size_t end, std::size_t size) {
  end = std::min(end, size);
  check(begin <= end, "Model: layer range [" + std::to_string(begin) + ", " + std::to_string(end) +
                          ") is invalid for " + std::to_string(size) + " layers");
  return end;
}
}  // namespace

Model& Model::add(LayerPtr layer) {
  check(layer != nullptr, "Model::add: null layer");
  layers_.push_back(std::move(layer));
  return *this;
}

void Model::init(std::uint64_t seed) {
  for (std::size_t i = 0; i < layers_.size(); ++i)
    layers_[i]->reset_parameters(layer_util::derive_seed(seed, i));
}

void Model::to(Device device, DType dtype) {
  for (auto& l : layers_)
    l->to(device, dtype);
}

void Model::zero_grad(ExecContext& ctx) {
  for (auto& l : layers_)
    l->zero_grad(ctx);
}

std::vector<Parameter*> Model::parameters() {
  std::vector<Parameter*> out;
  for (auto& l : layers_)
    for (Parameter& p : l->parameters())
      out.push_back(&p);
  return out;
}

std::int64_t Model::parameter_count() const {
  std::int64_t n = 0;
  for (const auto& l : layers_)
    n += l->parameter_count();
  return n;
}

Tensor Model::forward(ExecContext& ctx, const Tensor& x, std::vector<Stash>& stashes, bool training,
                      std::size_t begin, std::size_t end) {
  end = clamp_end(begin, end, layers_.size());
  stashes.resize(end - begin);
  Tensor h = x;
  for (std::size_t i = begin; i < end; ++i)
    h = layers_[i]->forward(ctx, h, stashes[i - begin], training);
  return h;
}

Tensor Model::backward(ExecContext& ctx, const Tensor& dy, std::vector<Stash>& stashes,
                       std::size_t begin, std::size_t end) {
  end = clamp_end(begin, end, layers_.size());
  check(stashes.size() == end - begin, "Model::backward: " + std::to_string(stashes.size()) +
                                           " stashes for " + std::to_string(end - begin) +
                                           " layers");
  Tensor g = dy;
  for (std::size_t i = end; i-- > begin;) {
    g = layers_[i]->backward(ctx, g, stashes[i - begin]);
    stashes[i - begin].clear();  // activations are no longer needed
  }
  return g;
}

Shape Model::output_shape(const Shape& input) const {
  Shape s = input;
  for (const auto& l : layers_)
    s = l->output_shape(s);
  return s;
}

double Model::forward_flops(const Shape& input) const {
  double f = 0;
  Shape s = input;
  for (const auto& l : layers_) {
    f += l->forward_flops(s);
    s = l->output_shape(s);
  }
  return f;
}

std::string Model::summary(const Shape& input) const {
  std::ostringstream os;
  Shape s = input;
  os << "input " << shape_str(s) << "\n";
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    s = layers_[i]->output_shape(s);
    os << i << ": " << layers_[i]->name() << " -> " << shape_str(s) << ", "
       << layers_[i]->parameter_count() << " params\n";
  }
  os << "total " << parameter_count() << " params, " << forward_flops(input) << " forward flops\n";
  return os.str();
}

}  // namespace hydra
