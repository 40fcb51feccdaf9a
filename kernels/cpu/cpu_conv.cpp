// 2-d convolution on the CPU: im2col + OpenBLAS GEMM per image (1x1, stride 1, unpadded
// convolutions use the input directly).
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cpu/cpu_blas.hpp"
#include "kernels/cpu/cpu_common.hpp"

namespace hydra {

namespace {

// Sizes of the per-image GEMMs: W [k, crs] @ col [crs, hw] = y_i [k, hw].
struct ConvShape {
  std::int64_t crs, hw, in_image, out_image;
  bool direct;  // col == the image itself
};

ConvShape check_conv(const char* op, const Conv2dDesc& d, const Tensor& x, const Tensor& w,
                     const Tensor& y) {
  const bool ok = d.n >= 1 && d.c >= 1 && d.h >= 1 && d.w >= 1 && d.k >= 1 && d.r >= 1 &&
                  d.s >= 1 && d.stride >= 1 && d.pad >= 0 && d.h + 2 * d.pad >= d.r &&
                  d.w + 2 * d.pad >= d.s;
  op_checks::that(ok, op,
                  "invalid convolution n=" + std::to_string(d.n) + " c=" + std::to_string(d.c) +
                      " h=" + std::to_string(d.h) + " w=" + std::to_string(d.w) +
                      " k=" + std::to_string(d.k) + " r=" + std::to_string(d.r) +
                      " s=" + std::to_string(d.s) + " stride=" + std::to_string(d.stride) +
                      " pad=" + std::to_string(d.pad));
  const ConvShape cs{d.c * d.r * d.s, d.out_h() * d.out_w(), d.c * d.h * d.w,
                     d.k * d.out_h() * d.out_w(),
                     d.r == 1 && d.s == 1 && d.stride == 1 && d.pad == 0};
  op_checks::that(cs.crs <= INT32_MAX && cs.hw <= INT32_MAX && d.k <= INT32_MAX, op,
                  "convolution too large for BLAS");
  op_checks::numel_is(op, x, d.n * cs.in_image, "input");
  op_checks::numel_is(op, w, d.k * cs.crs, "filter");
  op_checks::numel_is(op, y, d.n * cs.out_image, "output");
  return cs;
}

// col[(ci, ri, si), (oy, ox)] = x[ci, oy * stride - pad + ri, ox * stride - pad + si] or 0.
template <class T>
void im2col(const T* x, const Conv2dDesc& d, T* col) {
  const std::int64_t oh = d.out_h(), ow = d.out_w();
  for (std::int64_t ci = 0; ci < d.c; ++ci)
    for (std::int64_t ri = 0; ri < d.r; ++ri)
      for (std::int64_t si = 0; si < d.s; ++si)
        for (std::int64_t oy = 0; oy < oh; ++oy, col += ow) {
          const std::int64_t iy = oy * d.stride - d.pad + ri;
          if (iy < 0 || iy >= d.h) {
            std::fill(col, col + ow, T(0));
            continue;
          }
          const T* row = x + (ci * d.h + iy) * d.w;
          for (std::int64_t ox = 0; ox < ow; ++ox) {
            const std::int64_t ix = ox * d.stride - d.pad + si;
            col[ox] = ix >= 0 && ix < d.w ? row[ix] : T(0);
          }
        }
}

// The adjoint of im2col: x[ci, iy, ix] += every col entry that im2col copied from there.
template <class T>
void col2im_add(const T* col, const Conv2dDesc& d, T* x) {
  const std::int64_t oh = d.out_h(), ow = d.out_w();
  for (std::int64_t ci = 0; ci < d.c; ++ci)
    for (std::int64_t ri = 0; ri < d.r; ++ri)
      for (std::int64_t si = 0; si < d.s; ++si)
        for (std::int64_t oy = 0; oy < oh; ++oy, col += ow) {
          const std::int64_t iy = oy * d.stride - d.pad + ri;
          if (iy < 0 || iy >= d.h) continue;
          T* row = x + (ci * d.h + iy) * d.w;
          for (std::int64_t ox = 0; ox < ow; ++ox) {
            const std::int64_t ix = ox * d.stride - d.pad + si;
            if (ix >= 0 && ix < d.w) row[ix] += col[ox];
          }
        }
}

}  // namespace

void CpuBackend::conv2d_forward(Tensor& y, const Tensor& x, const Tensor& w, const Conv2dDesc& d,
                                ExecContext& ctx) {
  const char* op = "conv2d_forward";
  cpu::check_floats(op, ctx, {&y, &x, &w});
  const ConvShape cs = check_conv(op, d, x, w, y);
  cpu::check_disjoint(op, y, x);
  cpu::check_disjoint(op, y, w);
  cpu::dispatch(x, [&](auto tag) {
    using T = decltype(tag);
    std::vector<T> col(cs.direct ? 0 : static_cast<std::size_t>(cs.crs * cs.hw));
    for (std::int64_t i = 0; i < d.n; ++i) {
      const T* xi = x.data_as<T>() + i * cs.in_image;
      if (!cs.direct) im2col(xi, d, col.data());
      cpu::blas_gemm<T>(false, false, d.k, cs.hw, cs.crs, T(1), w.data_as<T>(), cs.crs,
                        cs.direct ? xi : col.data(), cs.hw, T(0), y.data_as<T>() + i * cs.out_image,
                        cs.hw);
    }
  });
}

void CpuBackend::conv2d_backward_data(Tensor& dx, const Tensor& dy, const Tensor& w,
                                      const Conv2dDesc& d, ExecContext& ctx) {
  const char* op = "conv2d_backward_data";
  cpu::check_floats(op, ctx, {&dx, &dy, &w});
  const ConvShape cs = check_conv(op, d, dx, w, dy);
  cpu::check_disjoint(op, dx, dy);
  cpu::check_disjoint(op, dx, w);
  cpu::dispatch(dx, [&](auto tag) {
    using T = decltype(tag);
    std::vector<T> col(cs.direct ? 0 : static_cast<std::size_t>(cs.crs * cs.hw));
    for (std::int64_t i = 0; i < d.n; ++i) {
      T* dxi = dx.data_as<T>() + i * cs.in_image;
      // dcol [crs, hw] = W^T @ dy_i.
      cpu::blas_gemm<T>(true, false, cs.crs, cs.hw, d.k, T(1), w.data_as<T>(), cs.crs,
                        dy.data_as<T>() + i * cs.out_image, cs.hw, T(0),
                        cs.direct ? dxi : col.data(), cs.hw);
      if (cs.direct) continue;
      std::fill(dxi, dxi + cs.in_image, T(0));
      col2im_add(col.data(), d, dxi);
    }
  });
}

void CpuBackend::conv2d_backward_filter(Tensor& dw, const Tensor& dy, const Tensor& x,
                                        const Conv2dDesc& d, ExecContext& ctx) {
  const char* op = "conv2d_backward_filter";
  cpu::check_floats(op, ctx, {&dw, &dy, &x});
  const ConvShape cs = check_conv(op, d, x, dw, dy);
  cpu::check_disjoint(op, dw, dy);
  cpu::check_disjoint(op, dw, x);
  cpu::dispatch(x, [&](auto tag) {
    using T = decltype(tag);
    std::vector<T> col(cs.direct ? 0 : static_cast<std::size_t>(cs.crs * cs.hw));
    for (std::int64_t i = 0; i < d.n; ++i) {
      const T* xi = x.data_as<T>() + i * cs.in_image;
      if (!cs.direct) im2col(xi, d, col.data());
      // dW [k, crs] += dy_i [k, hw] @ col^T.
      cpu::blas_gemm<T>(false, true, d.k, cs.crs, cs.hw, T(1), dy.data_as<T>() + i * cs.out_image,
                        cs.hw, cs.direct ? xi : col.data(), cs.hw, T(1), dw.data_as<T>(), cs.crs);
    }
  });
}

}  // namespace hydra
