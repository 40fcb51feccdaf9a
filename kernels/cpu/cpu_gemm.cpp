// Batched, strided GEMM on the CPU (OpenBLAS), with GemmDesc's packed/broadcast conventions and
// bounds checks on every operand.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>

#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cpu/cpu_blas.hpp"
#include "kernels/cpu/cpu_common.hpp"

namespace hydra {

namespace {

constexpr std::int64_t kBlasMax = std::numeric_limits<int>::max();

// One operand as stored: rows x cols matrices with row stride ld, batch items `stride` apart.
struct Operand {
  std::int64_t rows, cols, ld, stride;
};

// Resolves ld (0 = packed) and stride (-1 = packed, 0 = broadcast) and checks that every
// element the batched GEMM touches lies inside `t`.
Operand resolve(const char* op, const char* name, const Tensor& t, std::int64_t rows,
                std::int64_t cols, std::int64_t ld, std::int64_t stride, std::int64_t batch) {
  const std::string who = std::string(name) + " " + t.str();
  const std::int64_t min_ld = std::max<std::int64_t>(1, cols);
  if (ld == 0) ld = min_ld;
  op_checks::that(ld >= min_ld && ld <= kBlasMax, op,
                  who + ": leading dimension " + std::to_string(ld) + " must lie in [" +
                      std::to_string(min_ld) + ", " + std::to_string(kBlasMax) + "]");
  if (stride == -1) stride = rows * ld;
  op_checks::that(stride >= 0, op,
                  who + ": batch stride " + std::to_string(stride) +
                      " must be -1 (packed), 0 (broadcast) or positive");
  if (rows > 0 && cols > 0) {
    const std::int64_t last_in_item = (rows - 1) * ld + cols - 1;
    const std::int64_t room = t.numel() - 1 - last_in_item;  // room for batch offsets
    const bool fits = room >= 0 && (batch <= 1 || stride == 0 || (batch - 1) <= room / stride);
    op_checks::that(fits, op,
                    who + " is too small for " + std::to_string(batch) + " matrices of " +
                        std::to_string(rows) + " x " + std::to_string(cols) + " (ld " +
                        std::to_string(ld) + ", batch stride " + std::to_string(stride) + ")");
  }
  return {rows, cols, ld, stride};
}

}  // namespace

void CpuBackend::gemm(const GemmDesc& d, const Tensor& a, const Tensor& b, Tensor& c,
                      ExecContext& ctx) {
  const char* op = "gemm";
  cpu::check_floats(op, ctx, {&a, &b, &c});
  for (const std::int64_t v : {d.m, d.n, d.k})
    op_checks::that(v >= 0 && v <= kBlasMax, op,
                    "m, n, k = " + std::to_string(d.m) + ", " + std::to_string(d.n) + ", " +
                        std::to_string(d.k) + " must lie in [0, " + std::to_string(kBlasMax) + "]");
  op_checks::that(d.batch >= 0, op, "batch " + std::to_string(d.batch) + " is negative");
  if (d.batch == 0 || d.m == 0 || d.n == 0) return;

  const Operand oc = resolve(op, "C", c, d.m, d.n, d.ldc, d.stride_c, d.batch);
  if (d.batch > 1)
    op_checks::that(oc.stride >= (d.m - 1) * oc.ld + d.n, op,
                    "the " + std::to_string(d.batch) + " output matrices in C " + c.str() +
                        " overlap (batch stride " + std::to_string(oc.stride) + ")");
  cpu::check_disjoint(op, c, a);
  cpu::check_disjoint(op, c, b);

  cpu::dispatch(c, [&](auto tag) {
    using T = decltype(tag);
    T* pc = c.data_as<T>();
    const T alpha = static_cast<T>(d.alpha), beta = static_cast<T>(d.beta);
    if (d.k == 0) {  // C = beta * C (beta == 0 clears, even NaNs)
      for (std::int64_t bi = 0; bi < d.batch; ++bi)
        for (std::int64_t i = 0; i < d.m; ++i) {
          T* row = pc + bi * oc.stride + i * oc.ld;
          for (std::int64_t j = 0; j < d.n; ++j)
            row[j] = beta == T(0) ? T(0) : beta * row[j];
        }
      return;
    }
    const Operand oa = d.trans_a ? resolve(op, "A", a, d.k, d.m, d.lda, d.stride_a, d.batch)
                                 : resolve(op, "A", a, d.m, d.k, d.lda, d.stride_a, d.batch);
    const Operand ob = d.trans_b ? resolve(op, "B", b, d.n, d.k, d.ldb, d.stride_b, d.batch)
                                 : resolve(op, "B", b, d.k, d.n, d.ldb, d.stride_b, d.batch);
    const T* pa = a.data_as<T>();
    const T* pb = b.data_as<T>();
    // A batch of row blocks sharing one B is a single taller GEMM.
    const bool fold = d.batch > 1 && !d.trans_a && ob.stride == 0 && oa.stride == d.m * oa.ld &&
                      oc.stride == d.m * oc.ld && d.batch * d.m <= kBlasMax;
    if (fold) {
      cpu::blas_gemm<T>(false, d.trans_b, d.batch * d.m, d.n, d.k, alpha, pa, oa.ld, pb, ob.ld,
                        beta, pc, oc.ld);
      return;
    }
    for (std::int64_t bi = 0; bi < d.batch; ++bi)
      cpu::blas_gemm<T>(d.trans_a, d.trans_b, d.m, d.n, d.k, alpha, pa + bi * oa.stride, oa.ld,
                        pb + bi * ob.stride, ob.ld, beta, pc + bi * oc.stride, oc.ld);
  });
}

}  // namespace hydra
