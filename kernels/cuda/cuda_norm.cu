// Layer normalisation over the last dimension (cols = gamma.numel()), biased variance.
// One warp (short rows) or one block (long rows) per row; dgamma/dbeta are deterministic
// two-pass column sums.
#include "kernels/cuda/cuda_common.cuh"

namespace hydra::cuda_impl {
namespace {

template <int kGroup>
__global__ void __launch_bounds__(kThreads)
    layernorm_forward_kernel(const float* x, const float* gamma, const float* beta,
                             std::int64_t rows, std::int64_t cols, float eps, float* y, float* mean,
                             float* rstd) {
  using G = RowGroup<kGroup>;
  __shared__ float shared[32];
  const std::int64_t row = G::row();
  if (row >= rows) return;
  const float* xr = x + row * cols;
  float* yr = y + row * cols;
  const float inv_cols = 1.f / static_cast<float>(cols);
  float acc = 0.f;
  for (std::int64_t j = G::lane(); j < cols; j += kGroup)
    acc += xr[j];
  const float mu = G::sum(acc, shared) * inv_cols;
  acc = 0.f;
  for (std::int64_t j = G::lane(); j < cols; j += kGroup) {
    const float d = xr[j] - mu;
    acc += d * d;
  }
  const float var = G::sum(acc, shared) * inv_cols;
  const float rs = 1.f / sqrtf(var + eps);
  // y may be x: each element is read and then written by the same thread.
  for (std::int64_t j = G::lane(); j < cols; j += kGroup)
    yr[j] = (xr[j] - mu) * rs * gamma[j] + beta[j];
  if (G::lane() == 0) {
    mean[row] = mu;
    rstd[row] = rs;
  }
}

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * gamma, xhat = (x - mean) rstd.
template <int kGroup>
__global__ void __launch_bounds__(kThreads)
    layernorm_backward_dx_kernel(const float* dy, const float* x, const float* mean,
                                 const float* rstd, const float* gamma, std::int64_t rows,
                                 std::int64_t cols, float* dx) {
  using G = RowGroup<kGroup>;
  __shared__ float shared[32];
  const std::int64_t row = G::row();
  if (row >= rows) return;
  const float* xr = x + row * cols;
  const float* dyr = dy + row * cols;
  float* dxr = dx + row * cols;
  const float mu = mean[row], rs = rstd[row];
  float sum_g = 0.f, sum_gx = 0.f;
  for (std::int64_t j = G::lane(); j < cols; j += kGroup) {
    const float g = dyr[j] * gamma[j];
    sum_g += g;
    sum_gx += g * ((xr[j] - mu) * rs);
  }
  const float inv_cols = 1.f / static_cast<float>(cols);
  const float mean_g = G::sum(sum_g, shared) * inv_cols;
  const float mean_gx = G::sum(sum_gx, shared) * inv_cols;
  // dx may be dy: each element is read and then written by the same thread.
  for (std::int64_t j = G::lane(); j < cols; j += kGroup) {
    const float xhat = (xr[j] - mu) * rs;
    dxr[j] = rs * (dyr[j] * gamma[j] - mean_g - xhat * mean_gx);
  }
}

// (dy * xhat, dy) at (r, j), for dgamma and dbeta.
struct LoadLayernormGrads {
  const float *dy, *x, *mean, *rstd;
  std::int64_t cols;
  __device__ float2 operator()(std::int64_t r, std::int64_t j) const {
    const float g = dy[r * cols + j];
    return make_float2(g * ((x[r * cols + j] - mean[r]) * rstd[r]), g);
  }
};

}  // namespace

void CudaBackend::layernorm_forward(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x,
                                    const Tensor& gamma, const Tensor& beta, double eps,
                                    ExecContext& ctx) {
  const char* op = "layernorm_forward";
  cudaStream_t s = begin_f32(op, ctx, {&y, &mean, &rstd, &x, &gamma, &beta});
  const std::int64_t cols = gamma.numel();
  const std::int64_t rows = rows_of(op, x, cols, "input");
  op_checks::same_numel(op, y, x);
  op_checks::numel_is(op, beta, cols, "beta");
  op_checks::numel_is(op, mean, rows, "mean");
  op_checks::numel_is(op, rstd, rows, "rstd");
  op_checks::that(eps >= 0, op, "eps must not be negative");
  check_same_or_disjoint(op, y, x);
  check_disjoint(op, mean, {&x, &y, &gamma, &beta, &rstd});
  check_disjoint(op, rstd, {&x, &y, &gamma, &beta});
  if (rows == 0) return;
  const float e = static_cast<float>(eps);
  if (cols <= kWarpRowLimit)
    layernorm_forward_kernel<32><<<row_blocks<32>(rows), kThreads, 0, s>>>(
        f32(x), f32(gamma), f32(beta), rows, cols, e, f32(y), f32(mean), f32(rstd));
  else
    layernorm_forward_kernel<kThreads><<<row_blocks<kThreads>(rows), kThreads, 0, s>>>(
        f32(x), f32(gamma), f32(beta), rows, cols, e, f32(y), f32(mean), f32(rstd));
  check_launch(op);
}

void CudaBackend::layernorm_backward(Tensor& dx, Tensor& dgamma, Tensor& dbeta, const Tensor& dy,
                                     const Tensor& x, const Tensor& mean, const Tensor& rstd,
                                     const Tensor& gamma, ExecContext& ctx) {
  const char* op = "layernorm_backward";
  cudaStream_t s = begin_f32(op, ctx, {&dx, &dgamma, &dbeta, &dy, &x, &mean, &rstd, &gamma});
  const std::int64_t cols = gamma.numel();
  const std::int64_t rows = rows_of(op, x, cols, "input");
  op_checks::same_numel(op, dx, x);
  op_checks::same_numel(op, dy, x);
  op_checks::numel_is(op, dgamma, cols, "dgamma");
  op_checks::numel_is(op, dbeta, cols, "dbeta");
  op_checks::numel_is(op, mean, rows, "mean");
  op_checks::numel_is(op, rstd, rows, "rstd");
  check_same_or_disjoint(op, dx, dy);
  check_disjoint(op, dx, {&x, &mean, &rstd, &gamma, &dgamma, &dbeta});
  check_disjoint(op, dgamma, {&dbeta, &dy, &x, &mean, &rstd, &gamma});
  check_disjoint(op, dbeta, {&dy, &x, &mean, &rstd, &gamma});
  if (rows == 0) return;
  // dgamma/dbeta first: they read dy, which dx may overwrite (dx == dy is allowed).
  column_sums(rows, cols, LoadLayernormGrads{f32(dy), f32(x), f32(mean), f32(rstd), cols},
              f32(dgamma), f32(dbeta), s, op);
  if (cols <= kWarpRowLimit)
    layernorm_backward_dx_kernel<32><<<row_blocks<32>(rows), kThreads, 0, s>>>(
        f32(dy), f32(x), f32(mean), f32(rstd), f32(gamma), rows, cols, f32(dx));
  else
    layernorm_backward_dx_kernel<kThreads><<<row_blocks<kThreads>(rows), kThreads, 0, s>>>(
        f32(dy), f32(x), f32(mean), f32(rstd), f32(gamma), rows, cols, f32(dx));
  check_launch(op);
}

}  // namespace hydra::cuda_impl
