// Bias ops: add_bias / bias_grad (bias along the last dimension) and add_channel_bias /
// channel_bias_grad (bias along dimension 1, NCHW). The gradients are deterministic two-pass
// reductions (fixed partition and summation order for a given shape).
#include "kernels/cuda/cuda_common.cuh"

namespace hydra::cuda_impl {
namespace {

struct AddBias {
  float* y;
  const float* bias;
  std::int64_t cols;
  __device__ void operator()(std::int64_t i) const { y[i] += bias[i % cols]; }
};

struct AddChannelBias {
  float* y;
  const float* bias;
  std::int64_t channels, spatial;
  __device__ void operator()(std::int64_t i) const { y[i] += bias[(i / spatial) % channels]; }
};

struct LoadMatrix {
  const float* x;
  std::int64_t cols;
  __device__ float2 operator()(std::int64_t r, std::int64_t j) const {
    return make_float2(x[r * cols + j], 0.f);
  }
};

// out[r] = sum of row r of x [rows, cols].
template <int kGroup>
__global__ void __launch_bounds__(kThreads)
    row_sums_kernel(const float* x, std::int64_t rows, std::int64_t cols, float* out) {
  using G = RowGroup<kGroup>;
  __shared__ float shared[32];
  const std::int64_t row = G::row();
  if (row >= rows) return;
  const float* xr = x + row * cols;
  float acc = 0.f;
  for (std::int64_t j = G::lane(); j < cols; j += kGroup)
    acc += xr[j];
  acc = G::sum(acc, shared);
  if (G::lane() == 0) out[row] = acc;
}

}  // namespace

void CudaBackend::add_bias(Tensor& y, const Tensor& bias, ExecContext& ctx) {
  const char* op = "add_bias";
  cudaStream_t s = begin_f32(op, ctx, {&y, &bias});
  const std::int64_t cols = bias.numel();
  rows_of(op, y, cols, "tensor");
  check_disjoint(op, y, bias);
  launch_for_each(y.numel(), s, op, AddBias{f32(y), f32(bias), cols});
}

void CudaBackend::bias_grad(Tensor& dbias, const Tensor& dy, ExecContext& ctx) {
  const char* op = "bias_grad";
  cudaStream_t s = begin_f32(op, ctx, {&dbias, &dy});
  const std::int64_t cols = dbias.numel();
  const std::int64_t rows = rows_of(op, dy, cols, "gradient");
  check_disjoint(op, dbias, dy);
  column_sums(rows, cols, LoadMatrix{f32(dy), cols}, f32(dbias), nullptr, s, op);
}

void CudaBackend::add_channel_bias(Tensor& y, const Tensor& bias, ExecContext& ctx) {
  const char* op = "add_channel_bias";
  cudaStream_t s = begin_f32(op, ctx, {&y, &bias});
  op_checks::that(y.rank() >= 2, op, y.str() + " has no channel dimension");
  const std::int64_t channels = y.dim(1);
  op_checks::numel_is(op, bias, channels, "bias");
  check_disjoint(op, y, bias);
  if (y.numel() == 0) return;
  const std::int64_t spatial = y.numel() / (y.dim(0) * channels);
  launch_for_each(y.numel(), s, op, AddChannelBias{f32(y), f32(bias), channels, spatial});
}

void CudaBackend::channel_bias_grad(Tensor& dbias, const Tensor& dy, ExecContext& ctx) {
  const char* op = "channel_bias_grad";
  cudaStream_t s = begin_f32(op, ctx, {&dbias, &dy});
  op_checks::that(dy.rank() >= 2, op, dy.str() + " has no channel dimension");
  const std::int64_t n = dy.dim(0), channels = dy.dim(1);
  op_checks::numel_is(op, dbias, channels, "bias gradient");
  check_disjoint(op, dbias, dy);
  if (dy.numel() == 0) return;
  const std::int64_t spatial = dy.numel() / (n * channels);
  // Pass 1: sum each (n, c) plane into sums [n, channels]; pass 2: column sums over n.
  const ColumnPlan plan = plan_columns(n, channels);
  const std::size_t sums_bytes =
      (static_cast<std::size_t>(n * channels) * sizeof(float) + 255) / 256 * 256;
  std::lock_guard lock(mutex_);
  char* base = static_cast<char*>(scratch_locked(s, sums_bytes + plan.partial_bytes()));
  auto* sums = reinterpret_cast<float*>(base);
  auto* partial = reinterpret_cast<float2*>(base + sums_bytes);
  const std::int64_t planes = n * channels;
  if (spatial <= kWarpRowLimit)
    row_sums_kernel<32><<<row_blocks<32>(planes), kThreads, 0, s>>>(f32(dy), planes, spatial, sums);
  else
    row_sums_kernel<kThreads>
        <<<row_blocks<kThreads>(planes), kThreads, 0, s>>>(f32(dy), planes, spatial, sums);
  check_launch(op);
  launch_column_sums(plan, LoadMatrix{sums, channels}, partial, f32(dbias), nullptr, s, op);
}

}  // namespace hydra::cuda_impl
