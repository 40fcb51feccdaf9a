// Row-major (batched, strided) GEMM on cuBLAS.
//
// cuBLAS is column-major. A row-major r x c matrix with row stride ld is, read column-major, its
// c x r transpose with leading dimension ld. So the row-major C = op(A) op(B) is computed as the
// column-major C^T = op(B)^T op(A)^T: cuBLAS gets (B, A) in that order, dimensions (n, m, k), and
// each operand keeps its own transpose flag.
#include <string>

#include "kernels/cuda/cuda_common.cuh"

namespace hydra::cuda_impl {
namespace {

struct Operand {
  std::int64_t rows = 0, cols = 0, ld = 0, stride = 0;
};

// Resolves the defaults (ld 0 = packed, stride -1 = packed) and checks that every matrix of the
// batch lies inside `t`.
Operand resolve(const char* op, const char* name, const Tensor& t, std::int64_t rows,
                std::int64_t cols, std::int64_t ld, std::int64_t stride, std::int64_t batch) {
  const std::string who = std::string(name) + " " + t.str();
  op_checks::that(ld >= 0, op, who + ": negative row stride " + std::to_string(ld));
  op_checks::that(stride >= -1, op, who + ": bad batch stride " + std::to_string(stride));
  Operand o;
  o.rows = rows;
  o.cols = cols;
  o.ld = ld == 0 ? cols : ld;
  op_checks::that(o.ld >= cols, op,
                  who + ": row stride " + std::to_string(o.ld) + " is less than its " +
                      std::to_string(cols) + " columns");
  o.stride = stride == -1 ? rows * o.ld : stride;
  if (rows > 0 && cols > 0 && batch > 0) {
    const std::int64_t need = (batch - 1) * o.stride + (rows - 1) * o.ld + cols;
    op_checks::that(need <= t.numel(), op,
                    who + " is too small: the " + std::to_string(batch) + " matrices of " +
                        std::to_string(rows) + " x " + std::to_string(cols) + " need " +
                        std::to_string(need) + " elements");
  }
  return o;
}

__device__ __forceinline__ float to_float(float v) {
  return v;
}
__device__ __forceinline__ float to_float(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
__device__ __forceinline__ void store(float* p, float v) {
  *p = v;
}
__device__ __forceinline__ void store(__nv_bfloat16* p, float v) {
  *p = __float2bfloat16_rn(v);
}

// C = beta * C for k == 0 (the product is empty); beta == 0 overwrites without reading, as BLAS.
template <class T>
struct ScaleMatrices {
  T* c;
  std::int64_t m, n, ldc, stride_c;
  float beta;
  __device__ void operator()(std::int64_t i) const {
    const std::int64_t j = i % n, r = (i / n) % m, b = i / (n * m);
    T* p = c + b * stride_c + r * ldc + j;
    store(p, beta == 0.f ? 0.f : beta * to_float(*p));
  }
};

cudaDataType_t cuda_type(DType t) {
  return t == DType::bf16 ? CUDA_R_16BF : CUDA_R_32F;
}

}  // namespace

void CudaBackend::gemm(const GemmDesc& d, const Tensor& a, const Tensor& b, Tensor& c,
                       ExecContext& ctx) {
  const char* op = "gemm";
  cudaStream_t s = begin(op, ctx, {&a, &b, &c});
  op_checks::dtype_in(op, a, {DType::f32, DType::bf16});
  op_checks::same_dtype(op, {&a, &b});
  if (a.dtype() == DType::f32)
    op_checks::dtype_in(op, c, {DType::f32});
  else
    op_checks::dtype_in(op, c, {DType::bf16, DType::f32});
  op_checks::that(d.m >= 0 && d.n >= 0 && d.k >= 0 && d.batch >= 0, op,
                  "negative size m=" + std::to_string(d.m) + " n=" + std::to_string(d.n) +
                      " k=" + std::to_string(d.k) + " batch=" + std::to_string(d.batch));
  const Operand A =
      resolve(op, "A", a, d.trans_a ? d.k : d.m, d.trans_a ? d.m : d.k, d.lda, d.stride_a, d.batch);
  const Operand B =
      resolve(op, "B", b, d.trans_b ? d.n : d.k, d.trans_b ? d.k : d.n, d.ldb, d.stride_b, d.batch);
  const Operand C = resolve(op, "C", c, d.m, d.n, d.ldc, d.stride_c, d.batch);
  if (d.batch > 1 && d.m > 0 && d.n > 0)
    op_checks::that(
        C.stride >= (d.m - 1) * C.ld + d.n, op,
        "batch stride " + std::to_string(C.stride) + " of C makes the output matrices overlap");
  check_disjoint(op, c, {&a, &b});
  if (d.m == 0 || d.n == 0 || d.batch == 0) return;

  const float alpha = static_cast<float>(d.alpha), beta = static_cast<float>(d.beta);
  if (d.k == 0) {
    const std::int64_t total = d.batch * d.m * d.n;
    if (c.dtype() == DType::f32)
      launch_for_each(total, s, op, ScaleMatrices<float>{f32(c), d.m, d.n, C.ld, C.stride, beta});
    else
      launch_for_each(total, s, op,
                      ScaleMatrices<__nv_bfloat16>{static_cast<__nv_bfloat16*>(c.data()), d.m, d.n,
                                                   C.ld, C.stride, beta});
    return;
  }

  const int m = to_int(d.m, op, "m"), n = to_int(d.n, op, "n"), k = to_int(d.k, op, "k");
  const int lda = to_int(A.ld, op, "lda"), ldb = to_int(B.ld, op, "ldb"),
            ldc = to_int(C.ld, op, "ldc");
  const int batch = to_int(d.batch, op, "batch");
  const cublasOperation_t op_a = d.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = d.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cudaDataType_t ab_type = cuda_type(a.dtype()), c_type = cuda_type(c.dtype());
  // f32: TF32 tensor cores with fp32 accumulation; bf16: fp32 accumulation.
  const cublasComputeType_t compute =
      a.dtype() == DType::f32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;

  std::lock_guard lock(mutex_);
  cublasHandle_t h = cublas_locked(s);
  if (batch == 1) {
    check_cublas(
        cublasGemmEx(h, op_b, op_a, n, m, k, &alpha, b.data(), ab_type, ldb, a.data(), ab_type, lda,
                     &beta, c.data(), c_type, ldc, compute, CUBLAS_GEMM_DEFAULT),
        "gemm: cublasGemmEx");
  } else {
    check_cublas(
        cublasGemmStridedBatchedEx(h, op_b, op_a, n, m, k, &alpha, b.data(), ab_type, ldb, B.stride,
                                   a.data(), ab_type, lda, A.stride, &beta, c.data(), c_type, ldc,
                                   C.stride, batch, compute, CUBLAS_GEMM_DEFAULT),
        "gemm: cublasGemmStridedBatchedEx");
  }
}

}  // namespace hydra::cuda_impl
