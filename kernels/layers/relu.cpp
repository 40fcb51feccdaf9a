#include "kernels/layers/relu.hpp"

namespace hydra {

void ReLU::apply(ExecContext& ctx, Tensor& y, const Tensor& x) {
  ctx.backend().relu_forward(y, x, ctx);
}

void ReLU::apply_backward(ExecContext& ctx, Tensor& dx, const Tensor& dy, const Tensor& x) {
  ctx.backend().relu_backward(dx, dy, x, ctx);
}

}  // namespace hydra
