#include "kernels/layers/flatten.hpp"

#include "kernels/layers/common.hpp"

namespace hydra {

using namespace layer_util;

Shape Flatten::output_shape(const Shape& input) const {
  if (input.empty()) shape_error(*this, input, "expected [N, ...]");
  return {input[0], input[0] == 0 ? 0 : shape_numel(input) / input[0]};
}

Tensor Flatten::forward(ExecContext& ctx, const Tensor& x, Stash& stash, bool) {
  check_input(*this, ctx, x);
  begin_stash(stash, x);
  return x.view(output_shape(x.shape()));
}

Tensor Flatten::backward(ExecContext&, const Tensor& dy, Stash& stash) {
  return dy.view(stash.input_shape);
}

}  // namespace hydra
