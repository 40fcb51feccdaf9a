// Row softmax (optionally causal) and softmax cross-entropy. Every exponential is taken after
// subtracting the row maximum. One warp (rows up to kWarpRowLimit) or one block per row.
// Outputs may alias their inputs in place (as on the CPU): every element is read and then written
// by the same thread, and all row-wide reads happen before the row reductions complete.
#include <cmath>

#include "kernels/cuda/cuda_common.cuh"

namespace hydra::cuda_impl {
namespace {

template <int kGroup>
__global__ void __launch_bounds__(kThreads)
    softmax_forward_kernel(const float* x, float* y, std::int64_t rows, std::int64_t cols,
                           float scale, bool causal) {
  using G = RowGroup<kGroup>;
  __shared__ float shared[32];
  const std::int64_t row = G::row();
  if (row >= rows) return;
  const float* xr = x + row * cols;
  float* yr = y + row * cols;
  // Causal: row r of each [t, t] matrix sees columns [0, r % t].
  const std::int64_t visible = causal ? row % cols + 1 : cols;
  float mx = -INFINITY;
  for (std::int64_t j = G::lane(); j < visible; j += kGroup)
    mx = fmaxf(mx, scale * xr[j]);
  mx = G::max(mx, shared);
  float sum = 0.f;
  for (std::int64_t j = G::lane(); j < visible; j += kGroup)
    sum += expf(scale * xr[j] - mx);
  const float inv = 1.f / G::sum(sum, shared);
  for (std::int64_t j = G::lane(); j < cols; j += kGroup)
    yr[j] = j < visible ? expf(scale * xr[j] - mx) * inv : 0.f;
}

template <int kGroup>
__global__ void __launch_bounds__(kThreads)
    softmax_backward_kernel(const float* dy, const float* y, float* dx, std::int64_t rows,
                            std::int64_t cols, float scale) {
  using G = RowGroup<kGroup>;
  __shared__ float shared[32];
  const std::int64_t row = G::row();
  if (row >= rows) return;
  const float* dyr = dy + row * cols;
  const float* yr = y + row * cols;
  float* dxr = dx + row * cols;
  float dot = 0.f;
  for (std::int64_t j = G::lane(); j < cols; j += kGroup)
    dot += dyr[j] * yr[j];
  dot = G::sum(dot, shared);
  for (std::int64_t j = G::lane(); j < cols; j += kGroup)
    dxr[j] = scale * yr[j] * (dyr[j] - dot);
}

// probs = softmax(logits); loss = log sum exp(x - max) - (x[label] - max). A label outside
// [0, classes) gives a NaN loss (the CPU backend throws; callers validate labels).
template <int kGroup>
__global__ void __launch_bounds__(kThreads)
    cross_entropy_forward_kernel(const float* logits, const std::int32_t* labels, std::int64_t rows,
                                 std::int64_t cols, float* probs, float* losses) {
  using G = RowGroup<kGroup>;
  __shared__ float shared[32];
  const std::int64_t row = G::row();
  if (row >= rows) return;
  const float* xr = logits + row * cols;
  float* pr = probs + row * cols;
  const std::int64_t label = labels[row];
  const bool valid = label >= 0 && label < cols;
  const float x_label = valid ? xr[label] : NAN;  // read before probs (maybe == logits) is written
  float mx = -INFINITY;
  for (std::int64_t j = G::lane(); j < cols; j += kGroup)
    mx = fmaxf(mx, xr[j]);
  mx = G::max(mx, shared);
  float sum = 0.f;
  for (std::int64_t j = G::lane(); j < cols; j += kGroup)
    sum += expf(xr[j] - mx);
  sum = G::sum(sum, shared);
  const float inv = 1.f / sum;
  for (std::int64_t j = G::lane(); j < cols; j += kGroup)
    pr[j] = expf(xr[j] - mx) * inv;
  if (G::lane() == 0) losses[row] = logf(sum) - (x_label - mx);
}

// dlogits = scale * (probs - onehot(label)); NaN for a row whose label is out of range.
struct CrossEntropyBackward {
  float* dlogits;
  const float* probs;
  const std::int32_t* labels;
  std::int64_t cols;
  float scale;
  __device__ void operator()(std::int64_t i) const {
    const std::int64_t row = i / cols, j = i % cols;
    const std::int64_t label = labels[row];
    if (label < 0 || label >= cols) {
      dlogits[i] = NAN;
      return;
    }
    dlogits[i] = scale * (probs[i] - (j == label ? 1.f : 0.f));
  }
};

std::int64_t last_dim(const char* op, const Tensor& t) {
  op_checks::that(t.rank() >= 1 && t.dim(-1) > 0, op,
                  t.str() + " needs a non-empty last dimension");
  return t.dim(-1);
}

}  // namespace

void CudaBackend::softmax_forward(Tensor& y, const Tensor& x, double scale, bool causal,
                                  ExecContext& ctx) {
  const char* op = "softmax_forward";
  cudaStream_t s = begin_f32(op, ctx, {&y, &x});
  const std::int64_t cols = last_dim(op, x);
  const std::int64_t rows = x.numel() / cols;
  op_checks::same_numel(op, y, x);
  check_same_or_disjoint(op, y, x);
  if (causal)
    op_checks::that(x.rank() >= 2 && x.dim(-2) == cols, op,
                    "causal softmax needs x of shape [..., t, t], got " + x.str());
  if (rows == 0) return;
  const float sc = static_cast<float>(scale);
  if (cols <= kWarpRowLimit)
    softmax_forward_kernel<32>
        <<<row_blocks<32>(rows), kThreads, 0, s>>>(f32(x), f32(y), rows, cols, sc, causal);
  else
    softmax_forward_kernel<kThreads>
        <<<row_blocks<kThreads>(rows), kThreads, 0, s>>>(f32(x), f32(y), rows, cols, sc, causal);
  check_launch(op);
}

void CudaBackend::softmax_backward(Tensor& dx, const Tensor& dy, const Tensor& y, double scale,
                                   ExecContext& ctx) {
  const char* op = "softmax_backward";
  cudaStream_t s = begin_f32(op, ctx, {&dx, &dy, &y});
  const std::int64_t cols = last_dim(op, y);
  const std::int64_t rows = y.numel() / cols;
  op_checks::same_numel(op, dx, y);
  op_checks::same_numel(op, dy, y);
  check_same_or_disjoint(op, dx, dy);
  check_same_or_disjoint(op, dx, y);
  if (rows == 0) return;
  const float sc = static_cast<float>(scale);
  if (cols <= kWarpRowLimit)
    softmax_backward_kernel<32>
        <<<row_blocks<32>(rows), kThreads, 0, s>>>(f32(dy), f32(y), f32(dx), rows, cols, sc);
  else
    softmax_backward_kernel<kThreads>
        <<<row_blocks<kThreads>(rows), kThreads, 0, s>>>(f32(dy), f32(y), f32(dx), rows, cols, sc);
  check_launch(op);
}

void CudaBackend::cross_entropy_forward(Tensor& losses, Tensor& probs, const Tensor& logits,
                                        const Tensor& labels, ExecContext& ctx) {
  const char* op = "cross_entropy_forward";
  cudaStream_t s = begin(op, ctx, {&losses, &probs, &logits, &labels});
  op_checks::dtype_in(op, losses, {DType::f32});
  op_checks::dtype_in(op, probs, {DType::f32});
  op_checks::dtype_in(op, logits, {DType::f32});
  op_checks::dtype_in(op, labels, {DType::i32});
  const std::int64_t classes = last_dim(op, logits);
  const std::int64_t n = logits.numel() / classes;
  op_checks::same_numel(op, probs, logits);
  op_checks::numel_is(op, labels, n, "labels");
  op_checks::numel_is(op, losses, n, "losses");
  check_same_or_disjoint(op, probs, logits);
  check_disjoint(op, losses, {&probs, &logits, &labels});
  check_disjoint(op, probs, labels);
  if (n == 0) return;
  if (classes <= kWarpRowLimit)
    cross_entropy_forward_kernel<32><<<row_blocks<32>(n), kThreads, 0, s>>>(
        f32(logits), i32(labels), n, classes, f32(probs), f32(losses));
  else
    cross_entropy_forward_kernel<kThreads><<<row_blocks<kThreads>(n), kThreads, 0, s>>>(
        f32(logits), i32(labels), n, classes, f32(probs), f32(losses));
  check_launch(op);
}

void CudaBackend::cross_entropy_backward(Tensor& dlogits, const Tensor& probs, const Tensor& labels,
                                         double scale, ExecContext& ctx) {
  const char* op = "cross_entropy_backward";
  cudaStream_t s = begin(op, ctx, {&dlogits, &probs, &labels});
  op_checks::dtype_in(op, dlogits, {DType::f32});
  op_checks::dtype_in(op, probs, {DType::f32});
  op_checks::dtype_in(op, labels, {DType::i32});
  const std::int64_t classes = last_dim(op, probs);
  const std::int64_t n = probs.numel() / classes;
  op_checks::same_numel(op, dlogits, probs);
  op_checks::numel_is(op, labels, n, "labels");
  check_same_or_disjoint(op, dlogits, probs);
  check_disjoint(op, dlogits, labels);
  launch_for_each(dlogits.numel(), s, op,
                  CrossEntropyBackward{f32(dlogits), f32(probs), i32(labels), classes,
                                       static_cast<float>(scale)});
}

}  // namespace hydra::cuda_impl
