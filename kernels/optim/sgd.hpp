#pragma once
#include "kernels/optim/optimizer.hpp"

namespace hydra {

// SGD with momentum, dampening, Nesterov and (coupled) weight decay, as torch.optim.SGD.
// State slot 0: the momentum buffer.
class SGD : public Optimizer {
 public:
  explicit SGD(double lr, double momentum = 0.0, double weight_decay = 0.0, bool nesterov = false,
               double dampening = 0.0);
  std::string name() const override;
  void update(Parameter& p, ExecContext& ctx) override;

  double momentum, weight_decay, dampening;
  bool nesterov;
};

}  // namespace hydra
