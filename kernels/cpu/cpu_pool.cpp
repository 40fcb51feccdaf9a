// 2-d max pooling (NCHW, square window, no padding) on the CPU; the first maximum of a window
// wins, in the forward value and in the backward routing.
#include <algorithm>
#include <cstdint>
#include <string>

#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cpu/cpu_common.hpp"

namespace hydra {

namespace {

void check_pool(const char* op, const Pool2dDesc& d, const Tensor& x, const Tensor& y) {
  const bool ok =
      d.n >= 1 && d.c >= 1 && d.window >= 1 && d.stride >= 1 && d.h >= d.window && d.w >= d.window;
  op_checks::that(ok, op,
                  "invalid pooling n=" + std::to_string(d.n) + " c=" + std::to_string(d.c) +
                      " h=" + std::to_string(d.h) + " w=" + std::to_string(d.w) + " window=" +
                      std::to_string(d.window) + " stride=" + std::to_string(d.stride));
  op_checks::numel_is(op, x, d.n * d.c * d.h * d.w, "input");
  op_checks::numel_is(op, y, d.n * d.c * d.out_h() * d.out_w(), "output");
}

// Calls f(out_index, in_index_of_first_max) for every pooling window.
template <class T, class F>
void for_each_window_max(const T* x, const Pool2dDesc& d, F f) {
  const std::int64_t oh = d.out_h(), ow = d.out_w();
  std::int64_t out = 0;
  for (std::int64_t plane = 0; plane < d.n * d.c; ++plane) {
    const std::int64_t base = plane * d.h * d.w;
    for (std::int64_t oy = 0; oy < oh; ++oy)
      for (std::int64_t ox = 0; ox < ow; ++ox, ++out) {
        std::int64_t best = base + oy * d.stride * d.w + ox * d.stride;
        for (std::int64_t i = 0; i < d.window; ++i)
          for (std::int64_t j = 0; j < d.window; ++j) {
            const std::int64_t at = base + (oy * d.stride + i) * d.w + ox * d.stride + j;
            if (x[at] > x[best]) best = at;
          }
        f(out, best);
      }
  }
}

}  // namespace

void CpuBackend::maxpool2d_forward(Tensor& y, const Tensor& x, const Pool2dDesc& d,
                                   ExecContext& ctx) {
  const char* op = "maxpool2d_forward";
  cpu::check_floats(op, ctx, {&y, &x});
  check_pool(op, d, x, y);
  cpu::check_disjoint(op, y, x);
  cpu::dispatch(x, [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data_as<T>();
    T* yp = y.data_as<T>();
    for_each_window_max(xp, d, [&](std::int64_t o, std::int64_t i) { yp[o] = xp[i]; });
  });
}

void CpuBackend::maxpool2d_backward(Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& y,
                                    const Pool2dDesc& d, ExecContext& ctx) {
  const char* op = "maxpool2d_backward";
  cpu::check_floats(op, ctx, {&dx, &dy, &x, &y});
  check_pool(op, d, x, y);
  op_checks::same_numel(op, dx, x);
  op_checks::same_numel(op, dy, y);
  cpu::check_disjoint(op, dx, {&dy, &x, &y});
  cpu::dispatch(x, [&](auto tag) {
    using T = decltype(tag);
    const T* dyp = dy.data_as<T>();
    T* dxp = dx.data_as<T>();
    std::fill(dxp, dxp + dx.numel(), T(0));
    for_each_window_max(x.data_as<T>(), d,
                        [&](std::int64_t o, std::int64_t i) { dxp[i] += dyp[o]; });
  });
}

}  // namespace hydra
