#pragma once
#include "kernels/layers/common.hpp"

namespace hydra {

// Exact GELU, y = x Phi(x). Stashes x.
class GELU : public layer_util::ElementwiseLayer {
 public:
  std::string name() const override { return "GELU"; }

 protected:
  void apply(ExecContext& ctx, Tensor& y, const Tensor& x) override;
  void apply_backward(ExecContext& ctx, Tensor& dx, const Tensor& dy, const Tensor& x) override;
  double flops_per_element() const override { return 8; }  // by convention (erf ~ a few ops)
};

}  // namespace hydra
