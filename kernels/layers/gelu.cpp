#include "kernels/layers/gelu.hpp"

namespace hydra {

void GELU::apply(ExecContext& ctx, Tensor& y, const Tensor& x) {
  ctx.backend().gelu_forward(y, x, ctx);
}

void GELU::apply_backward(ExecContext& ctx, Tensor& dx, const Tensor& dy, const Tensor& x) {
  ctx.backend().gelu_backward(dx, dy, x, ctx);
}

}  // namespace hydra
