#include "kernels/layers/maxpool.hpp"

#include "kernels/layers/common.hpp"

namespace hydra {

using namespace layer_util;

MaxPool2d::MaxPool2d(std::int64_t window, std::int64_t stride)
    : window_(window), stride_(stride == 0 ? window : stride) {
  check(window > 0 && stride >= 0, "MaxPool2d: window must be positive and stride >= 0");
}

std::string MaxPool2d::name() const {
  return "MaxPool2d(" + std::to_string(window_) + ", s" + std::to_string(stride_) + ")";
}

Pool2dDesc MaxPool2d::desc(const Shape& input) const {
  if (input.size() != 4) shape_error(*this, input, "expected NCHW input");
  if (input[2] < window_ || input[3] < window_)
    shape_error(*this, input, "image smaller than the window");
  return Pool2dDesc{.n = input[0],
                    .c = input[1],
                    .h = input[2],
                    .w = input[3],
                    .window = window_,
                    .stride = stride_};
}

Shape MaxPool2d::output_shape(const Shape& input) const {
  const Pool2dDesc d = desc(input);
  return {d.n, d.c, d.out_h(), d.out_w()};
}

Tensor MaxPool2d::forward(ExecContext& ctx, const Tensor& x, Stash& stash, bool training) {
  check_input(*this, ctx, x);
  begin_stash(stash, x);
  const Pool2dDesc d = desc(x.shape());
  Tensor y = empty_on(ctx, {d.n, d.c, d.out_h(), d.out_w()}, x.dtype());
  ctx.backend().maxpool2d_forward(y, x, d, ctx);
  if (training) stash.tensors = {x, y};
  return y;
}

Tensor MaxPool2d::backward(ExecContext& ctx, const Tensor& dy, Stash& stash) {
  const Tensor &x = stashed(*this, stash, 0), &y = stashed(*this, stash, 1);
  Tensor dx = empty_on(ctx, x.shape(), x.dtype());
  ctx.backend().maxpool2d_backward(dx, dy, x, y, desc(x.shape()), ctx);
  return dx;
}

double MaxPool2d::forward_flops(const Shape& input) const {
  return static_cast<double>(shape_numel(output_shape(input)) * window_ * window_);
}

std::size_t MaxPool2d::stash_bytes(const Shape& input, DType dtype) const {
  return bytes_of(shape_numel(input) + shape_numel(output_shape(input)), dtype);
}

}  // namespace hydra
