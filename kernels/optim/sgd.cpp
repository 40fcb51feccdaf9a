#include "kernels/optim/sgd.hpp"

#include <sstream>

#include "kernels/backend.hpp"

namespace hydra {

SGD::SGD(double lr_, double momentum_, double weight_decay_, bool nesterov_, double dampening_)
    : momentum(momentum_), weight_decay(weight_decay_), dampening(dampening_), nesterov(nesterov_) {
  lr = lr_;
  check(lr >= 0 && momentum >= 0 && weight_decay >= 0, "SGD: negative hyper-parameter");
  check(!nesterov || (momentum > 0 && dampening == 0),
        "SGD: Nesterov momentum needs momentum > 0 and dampening 0");
}

std::string SGD::name() const {
  std::ostringstream os;
  os << "SGD(lr=" << lr << ", momentum=" << momentum << ", weight_decay=" << weight_decay
     << (nesterov ? ", nesterov" : "") << ")";
  return os.str();
}

void SGD::update(Parameter& p, ExecContext& ctx) {
  const SgdStep s{.lr = lr,
                  .momentum = momentum,
                  .dampening = dampening,
                  .weight_decay = weight_decay,
                  .nesterov = nesterov,
                  .step = begin_update("SGD", p, 1, ctx)};
  ctx.backend().sgd_step(p.value, p.grad, p.state[0], s, ctx);
  p.step = s.step;
}

}  // namespace hydra
