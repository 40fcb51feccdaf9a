#pragma once
// Typed wrapper over OpenBLAS's row-major GEMM. Internal to kernels/cpu; callers have checked
// that every dimension and leading dimension fits in a BLAS integer.
#include <cblas.h>

#include <cstdint>
#include <type_traits>

namespace hydra::cpu {

// C = alpha * op(A) @ op(B) + beta * C, op(A) m x k, op(B) k x n, all row-major.
template <class T>
void blas_gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha,
               const T* a, std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c,
               std::int64_t ldc) {
  const auto ta = trans_a ? CblasTrans : CblasNoTrans;
  const auto tb = trans_b ? CblasTrans : CblasNoTrans;
  const auto i = [](std::int64_t v) { return static_cast<blasint>(v); };
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, ta, tb, i(m), i(n), i(k), alpha, a, i(lda), b, i(ldb), beta, c,
                i(ldc));
  else
    cblas_dgemm(CblasRowMajor, ta, tb, i(m), i(n), i(k), alpha, a, i(lda), b, i(ldb), beta, c,
                i(ldc));
}

}  // namespace hydra::cpu
