#include "kernels/optim/grad_clip.hpp"

#include <cmath>

#include "kernels/backend.hpp"

namespace hydra {

double clip_grad_norm(const std::vector<Parameter*>& params, double max_norm, ExecContext& ctx) {
  check(max_norm > 0, "clip_grad_norm: max_norm must be positive");
  Backend& be = ctx.backend();
  double squares = 0;
  for (const Parameter* p : params)
    squares += be.sum_squares(p->grad, ctx);
  const double norm = std::sqrt(squares);
  if (!std::isfinite(norm))
    throw Error(std::string("clip_grad_norm: gradient norm is ") +
                (std::isnan(norm) ? "NaN" : "inf"));
  if (norm > max_norm) {
    const double coef = max_norm / (norm + 1e-6);
    for (Parameter* p : params)
      be.scale(p->grad, coef, ctx);
  }
  return norm;
}

}  // namespace hydra
