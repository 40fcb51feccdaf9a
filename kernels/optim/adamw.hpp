#pragma once
#include "kernels/optim/optimizer.hpp"

namespace hydra {

// AdamW (decoupled weight decay), as torch.optim.AdamW. State slots: 0 = m, 1 = v.
class AdamW : public Optimizer {
 public:
  explicit AdamW(double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
                 double weight_decay = 0.01);
  std::string name() const override;
  void update(Parameter& p, ExecContext& ctx) override;

  double beta1, beta2, eps, weight_decay;
};

}  // namespace hydra
