#include "kernels/optim/adamw.hpp"

#include <sstream>

#include "kernels/backend.hpp"

namespace hydra {

AdamW::AdamW(double lr_, double beta1_, double beta2_, double eps_, double weight_decay_)
    : beta1(beta1_), beta2(beta2_), eps(eps_), weight_decay(weight_decay_) {
  lr = lr_;
  check(lr >= 0 && eps > 0 && weight_decay >= 0, "AdamW: bad lr, eps or weight_decay");
  check(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, "AdamW: betas must lie in [0, 1)");
}

std::string AdamW::name() const {
  std::ostringstream os;
  os << "AdamW(lr=" << lr << ", betas=(" << beta1 << ", " << beta2 << "), eps=" << eps
     << ", weight_decay=" << weight_decay << ")";
  return os.str();
}

void AdamW::update(Parameter& p, ExecContext& ctx) {
  const AdamWStep s{.lr = lr,
                    .beta1 = beta1,
                    .beta2 = beta2,
                    .eps = eps,
                    .weight_decay = weight_decay,
                    .step = begin_update("AdamW", p, 2, ctx)};
  ctx.backend().adamw_step(p.value, p.grad, p.state[0], p.state[1], s, ctx);
  p.step = s.step;
}

}  // namespace hydra
