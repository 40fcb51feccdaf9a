#pragma once
#include "kernels/layers/common.hpp"

namespace hydra {

// y = max(x, 0). Stashes x.
class ReLU : public layer_util::ElementwiseLayer {
 public:
  std::string name() const override { return "ReLU"; }

 protected:
  void apply(ExecContext& ctx, Tensor& y, const Tensor& x) override;
  void apply_backward(ExecContext& ctx, Tensor& dx, const Tensor& dy, const Tensor& x) override;
  double flops_per_element() const override { return 1; }
};

}  // namespace hydra
