#pragma once
#include "kernels/layer.hpp"

namespace hydra {

// Inverted dropout: in training y = x * mask with mask in {0, 1/(1-p)}; identity in eval mode.
// Each training forward draws a fresh mask from (seed, call counter) and stashes it, so several
// micro-batches in flight each get their own mask and backward uses the matching one.
// reset_parameters(s) re-derives the seed from (constructor seed, s) and restarts the counter.
// save_state()/restore_state() carry the seed and counter across a training-state checkpoint.
class Dropout : public Layer {
 public:
  explicit Dropout(double p, std::uint64_t seed = 0);
  std::string name() const override;
  Shape output_shape(const Shape& input) const override { return input; }
  Tensor forward(ExecContext& ctx, const Tensor& x, Stash& stash, bool training) override;
  Tensor backward(ExecContext& ctx, const Tensor& dy, Stash& stash) override;
  double forward_flops(const Shape& input) const override;
  std::size_t stash_bytes(const Shape& input, DType dtype) const override;
  void reset_parameters(std::uint64_t seed) override;
  // {seed, call counter}: a restored Dropout draws the masks the saved one would have drawn next.
  std::vector<std::uint64_t> save_state() const override { return {seed_, calls_}; }
  void restore_state(const std::vector<std::uint64_t>& state) override;

  double p() const { return p_; }
  std::uint64_t calls() const { return calls_; }  // training forwards since the last reset

 private:
  double p_;
  std::uint64_t base_seed_, seed_, calls_ = 0;
};

}  // namespace hydra
