// Reductions that return to the host or reduce whole rows: sum, sum_squares, argmax_rows.
#include <climits>

#include "kernels/core/memory_pool.hpp"
#include "kernels/cuda/cuda_common.cuh"

namespace hydra::cuda_impl {
namespace {

constexpr int kSumBlocks = 1024;  // partial sums; the final pass runs one block of kThreads

template <bool kSquares>
__global__ void __launch_bounds__(kThreads)
    sum_partials_kernel(const float* x, std::int64_t n, double* partial) {
  __shared__ double shared[32];
  double acc = 0.0;
  const std::int64_t step = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += step) {
    const double v = x[i];
    acc += kSquares ? v * v : v;
  }
  acc = block_sum(acc, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

__global__ void __launch_bounds__(kThreads)
    sum_final_kernel(const double* partial, int count, double* out) {
  __shared__ double shared[32];
  double acc = 0.0;
  for (int i = static_cast<int>(threadIdx.x); i < count; i += blockDim.x)
    acc += partial[i];
  acc = block_sum(acc, shared);
  if (threadIdx.x == 0) *out = acc;
}

// A block from a memory pool, returned when the scope ends. The stream is synchronised first so
// that queued work never outlives the memory it uses (also on error paths).
class PoolBlock {
 public:
  PoolBlock(Device device, std::size_t bytes, cudaStream_t stream)
      : pool_(memory_pool(device)), p_(pool_.allocate(bytes)), stream_(stream) {}
  ~PoolBlock() {
    (void)cudaStreamSynchronize(stream_);
    pool_.deallocate(p_);
  }
  PoolBlock(const PoolBlock&) = delete;
  PoolBlock& operator=(const PoolBlock&) = delete;
  void* get() const { return p_; }

 private:
  MemoryPool& pool_;
  void* p_;
  cudaStream_t stream_;
};

// (value, index) maximum with the first index winning ties; index -1 = nothing seen yet.
struct ArgMax {
  float v;
  int i;
};
__device__ __forceinline__ ArgMax better(ArgMax a, ArgMax b) {
  if (b.i < 0) return a;
  if (a.i < 0) return b;
  if (b.v > a.v || (b.v == a.v && b.i < a.i)) return b;
  return a;
}
__device__ __forceinline__ ArgMax warp_argmax(ArgMax a) {
  for (int offset = 16; offset > 0; offset /= 2) {
    ArgMax o;
    o.v = __shfl_xor_sync(0xffffffffu, a.v, offset);
    o.i = __shfl_xor_sync(0xffffffffu, a.i, offset);
    a = better(a, o);
  }
  return a;
}

template <int kGroup>
__global__ void __launch_bounds__(kThreads)
    argmax_rows_kernel(const float* x, std::int64_t rows, std::int64_t cols, std::int32_t* out) {
  using G = RowGroup<kGroup>;
  __shared__ float shared_v[32];
  __shared__ int shared_i[32];
  const std::int64_t row = G::row();
  if (row >= rows) return;
  const float* xr = x + row * cols;
  ArgMax best{0.f, -1};
  for (std::int64_t j = G::lane(); j < cols; j += kGroup) {
    const float v = xr[j];
    if (best.i < 0 || v > best.v) best = ArgMax{v, static_cast<int>(j)};  // j increases
  }
  best = warp_argmax(best);
  if constexpr (kGroup != 32) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) {
      shared_v[warp] = best.v;
      shared_i[warp] = best.i;
    }
    __syncthreads();
    best = ArgMax{0.f, -1};
    for (int w = 0; w < kGroup / 32; ++w)
      best = better(best, ArgMax{shared_v[w], shared_i[w]});
  }
  if (G::lane() == 0) out[row] = best.i;
}

double reduce_to_host(const char* op, const Tensor& x, bool squares, cudaStream_t s, int device) {
  const std::int64_t n = x.numel();
  if (n == 0) return 0.0;
  const unsigned grid = grid_for(n);
  const int blocks = grid < static_cast<unsigned>(kSumBlocks) ? static_cast<int>(grid) : kSumBlocks;
  PoolBlock partial(Device::cuda(device), sizeof(double) * (static_cast<std::size_t>(blocks) + 1),
                    s);
  PoolBlock host(Device::pinned(), sizeof(double), s);
  auto* p = static_cast<double*>(partial.get());
  if (squares)
    sum_partials_kernel<true><<<blocks, kThreads, 0, s>>>(f32(x), n, p);
  else
    sum_partials_kernel<false><<<blocks, kThreads, 0, s>>>(f32(x), n, p);
  check_launch(op);
  sum_final_kernel<<<1, kThreads, 0, s>>>(p, blocks, p + blocks);
  check_launch(op);
  check_cuda(cudaMemcpyAsync(host.get(), p + blocks, sizeof(double), cudaMemcpyDeviceToHost, s),
             "cudaMemcpyAsync (reduction result)");
  check_cuda(cudaStreamSynchronize(s), "cudaStreamSynchronize (reduction result)");
  return *static_cast<const double*>(host.get());
}

}  // namespace

double CudaBackend::sum(const Tensor& x, ExecContext& ctx) {
  const char* op = "sum";
  cudaStream_t s = begin_f32(op, ctx, {&x});
  return reduce_to_host(op, x, false, s, device_);
}

double CudaBackend::sum_squares(const Tensor& x, ExecContext& ctx) {
  const char* op = "sum_squares";
  cudaStream_t s = begin_f32(op, ctx, {&x});
  return reduce_to_host(op, x, true, s, device_);
}

void CudaBackend::argmax_rows(Tensor& out, const Tensor& x, ExecContext& ctx) {
  const char* op = "argmax_rows";
  cudaStream_t s = begin(op, ctx, {&out, &x});
  op_checks::dtype_in(op, x, {DType::f32});
  op_checks::dtype_in(op, out, {DType::i32});
  op_checks::that(x.rank() >= 1 && x.dim(-1) > 0, op, "input " + x.str() + " has no classes");
  const std::int64_t cols = x.dim(-1), rows = x.numel() / cols;
  op_checks::that(cols <= INT_MAX, op, "too many classes in " + x.str());
  op_checks::numel_is(op, out, rows, "output");
  check_disjoint(op, out, x);
  if (rows == 0) return;
  if (cols <= kWarpRowLimit)
    argmax_rows_kernel<32><<<row_blocks<32>(rows), kThreads, 0, s>>>(f32(x), rows, cols, i32(out));
  else
    argmax_rows_kernel<kThreads>
        <<<row_blocks<kThreads>(rows), kThreads, 0, s>>>(f32(x), rows, cols, i32(out));
  check_launch(op);
}

}  // namespace hydra::cuda_impl
