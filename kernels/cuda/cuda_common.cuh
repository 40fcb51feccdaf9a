#pragma once
// Internal to the CUDA backend (kernels/cuda/*.cu): the CudaBackend class, status checks, the
// per-stream resources it keeps, and small device helpers (grid-stride launches, warp and block
// reductions) shared by the kernel files. Not a public header: include
// kernels/cuda/cuda_backend.hpp.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <mutex>
#include <string>

#include "kernels/backend.hpp"
#include "kernels/op_checks.hpp"

namespace hydra::cuda_impl {

// --- status checks: each throws hydra::Error("<what>: <library status string>") ----------------
void check_cuda(cudaError_t status, const char* what);
void check_cublas(cublasStatus_t status, const char* what);
void check_cudnn(cudnnStatus_t status, const char* what);
// After a kernel launch: throws when the launch failed (bad configuration, sticky error).
void check_launch(const char* op);

// --- launch geometry ------------------------------------------------------------------------
constexpr int kThreads = 256;               // threads per block of the elementwise kernels
constexpr std::int64_t kMaxBlocks = 65536;  // grid-stride loops cover the rest

inline unsigned grid_for(std::int64_t n, int threads = kThreads) {
  const std::int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > kMaxBlocks ? kMaxBlocks : blocks));
}

// f(i) for every i in [0, n), grid-stride. F is a functor with `__device__ void operator()(i)`.
template <class F>
__global__ void __launch_bounds__(kThreads) for_each_kernel(std::int64_t n, F f) {
  const std::int64_t step = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += step)
    f(i);
}

template <class F>
void launch_for_each(std::int64_t n, cudaStream_t stream, const char* op, const F& f) {
  if (n <= 0) return;
  for_each_kernel<<<grid_for(n), kThreads, 0, stream>>>(n, f);
  check_launch(op);
}

// --- reductions -----------------------------------------------------------------------------
template <class T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int offset = 16; offset > 0; offset /= 2)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int offset = 16; offset > 0; offset /= 2)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Sum over the whole block (blockDim.x a multiple of 32, at most 1024), returned to every thread.
// `shared` holds 32 values; the call contains __syncthreads, so every thread must reach it.
template <class T>
__device__ T block_sum(T v, T* shared) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = warp_sum(v);
  __syncthreads();  // `shared` may still be read by a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  T total = T(0);
  for (int w = 0; w < warps; ++w)
    total += shared[w];  // same order in every thread
  return total;
}

__device__ __forceinline__ float block_max(float v, float* shared) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  float m = shared[0];
  for (int w = 1; w < warps; ++w)
    m = fmaxf(m, shared[w]);
  return m;
}

// Row-wise kernels: a group of kGroup threads handles one row, either one warp (kGroup = 32,
// kThreads / 32 rows per block) or the whole block (kGroup = kThreads, one row per block).
// Launch with row_blocks<kGroup>(rows) blocks of kThreads threads. A group whose row is out of
// range must return before any group reduction (only warps return early, never part of one).
template <int kGroup>
struct RowGroup {
  static_assert(kGroup == 32 || kGroup == kThreads, "a row group is a warp or a block");
  static constexpr int kRowsPerBlock = kThreads / kGroup;
  static __device__ __forceinline__ std::int64_t row() {
    return static_cast<std::int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kGroup;
  }
  static __device__ __forceinline__ int lane() { return static_cast<int>(threadIdx.x % kGroup); }
  // `shared` holds 32 floats per block (unused for warps).
  static __device__ __forceinline__ float sum(float v, float* shared) {
    if constexpr (kGroup == 32) {
      (void)shared;
      return warp_sum(v);
    } else {
      return block_sum(v, shared);
    }
  }
  static __device__ __forceinline__ float max(float v, float* shared) {
    if constexpr (kGroup == 32) {
      (void)shared;
      return warp_max(v);
    } else {
      return block_max(v, shared);
    }
  }
};

// Blocks for `rows` rows (throws beyond CUDA's grid limit of 2^31 - 1 blocks).
template <int kGroup>
unsigned row_blocks(std::int64_t rows) {
  constexpr int per = RowGroup<kGroup>::kRowsPerBlock;
  const std::int64_t blocks = (rows + per - 1) / per;
  if (blocks > 0x7fffffff)
    throw Error("CUDA backend: too many rows (" + std::to_string(rows) + ")");
  return static_cast<unsigned>(blocks);
}

// Rows at most this long are handled by one warp, longer ones by a whole block.
constexpr std::int64_t kWarpRowLimit = 1024;

// Deterministic column sums of a [rows, cols] matrix given by a loader: pass 1 sums row chunks
// into partials [chunks, cols] (float2: two independent sums per column), pass 2 adds the chunk
// sums in a fixed order into out0 (+=) and out1 (+=, may be null).
constexpr int kColTile = 32;  // columns per block (threadIdx.x)
constexpr int kColRows = 8;   // rows processed in parallel per block (threadIdx.y)
static_assert(kColTile * kColRows == kThreads, "column blocks have kThreads threads");

struct ColumnPlan {
  std::int64_t rows = 0, cols = 0, chunks = 1, rows_per_chunk = 0;
  std::size_t partial_bytes() const {
    return static_cast<std::size_t>(chunks * cols) * sizeof(float2);
  }
};
ColumnPlan plan_columns(std::int64_t rows, std::int64_t cols);

// Load: `__device__ float2 operator()(std::int64_t row, std::int64_t col) const`.
template <class Load>
__global__ void __launch_bounds__(kThreads)
    column_partials_kernel(Load load, std::int64_t rows, std::int64_t cols,
                           std::int64_t rows_per_chunk, float2* partial) {
  __shared__ float2 tile[kColRows][kColTile + 1];
  const std::int64_t col = static_cast<std::int64_t>(blockIdx.x) * kColTile + threadIdx.x;
  const std::int64_t chunk = blockIdx.y;
  const std::int64_t begin = chunk * rows_per_chunk;
  const std::int64_t end = begin + rows_per_chunk < rows ? begin + rows_per_chunk : rows;
  float2 acc = make_float2(0.f, 0.f);
  if (col < cols) {
    for (std::int64_t r = begin + threadIdx.y; r < end; r += kColRows) {
      const float2 v = load(r, col);
      acc.x += v.x;
      acc.y += v.y;
    }
  }
  tile[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && col < cols) {
    float2 total = make_float2(0.f, 0.f);
    for (int i = 0; i < kColRows; ++i) {
      total.x += tile[i][threadIdx.x].x;
      total.y += tile[i][threadIdx.x].y;
    }
    partial[chunk * cols + col] = total;
  }
}

// Pass 2 (defined in cuda_backend.cu): out0[j] += sum_c partial[c, j].x, out1[j] += ... .y.
void launch_column_finalize(const float2* partial, std::int64_t chunks, std::int64_t cols,
                            float* out0, float* out1, cudaStream_t stream, const char* op);

template <class Load>
void launch_column_sums(const ColumnPlan& plan, const Load& load, float2* partial, float* out0,
                        float* out1, cudaStream_t stream, const char* op) {
  if (plan.rows <= 0 || plan.cols <= 0) return;
  const dim3 block(kColTile, kColRows);
  const dim3 grid(static_cast<unsigned>((plan.cols + kColTile - 1) / kColTile),
                  static_cast<unsigned>(plan.chunks));
  column_partials_kernel<<<grid, block, 0, stream>>>(load, plan.rows, plan.cols,
                                                     plan.rows_per_chunk, partial);
  check_launch(op);
  launch_column_finalize(partial, plan.chunks, plan.cols, out0, out1, stream, op);
}

// --- typed data access ------------------------------------------------------------------------
inline float* f32(Tensor& t) {
  return static_cast<float*>(t.data());
}
inline const float* f32(const Tensor& t) {
  return static_cast<const float*>(t.data());
}
inline std::int32_t* i32(Tensor& t) {
  return static_cast<std::int32_t*>(t.data());
}
inline const std::int32_t* i32(const Tensor& t) {
  return static_cast<const std::int32_t*>(t.data());
}

// --- cuDNN plans (cached per shape) ------------------------------------------------------------
struct ConvPlan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  bool has_fwd = false, has_bwd_data = false, has_bwd_filter = false;
  cudnnConvolutionFwdAlgo_t fwd_algo{};
  cudnnConvolutionBwdDataAlgo_t bwd_data_algo{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter_algo{};
  cudnnMathType_t fwd_math{}, bwd_data_math{}, bwd_filter_math{};
  std::size_t fwd_ws = 0, bwd_data_ws = 0, bwd_filter_ws = 0;
};

struct PoolPlan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnPoolingDescriptor_t pool = nullptr;
};

// --- the backend ------------------------------------------------------------------------------
class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device);
  // Never destroyed (see cuda_backend()): library handles outlive static destruction order.
  ~CudaBackend() override = default;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  const char* name() const override { return "cuda"; }

  void fill(Tensor& x, double value, ExecContext& ctx) override;
  void convert(Tensor& dst, const Tensor& src, ExecContext& ctx) override;
  void add(Tensor& out, const Tensor& a, const Tensor& b, ExecContext& ctx) override;
  void mul(Tensor& out, const Tensor& a, const Tensor& b, ExecContext& ctx) override;
  void axpy(Tensor& y, double alpha, const Tensor& x, ExecContext& ctx) override;
  void scale(Tensor& x, double alpha, ExecContext& ctx) override;
  double sum(const Tensor& x, ExecContext& ctx) override;
  double sum_squares(const Tensor& x, ExecContext& ctx) override;
  void permute_0213(Tensor& out, const Tensor& in, ExecContext& ctx) override;

  void gemm(const GemmDesc& d, const Tensor& a, const Tensor& b, Tensor& c,
            ExecContext& ctx) override;
  void add_bias(Tensor& y, const Tensor& bias, ExecContext& ctx) override;
  void bias_grad(Tensor& dbias, const Tensor& dy, ExecContext& ctx) override;

  void relu_forward(Tensor& y, const Tensor& x, ExecContext& ctx) override;
  void relu_backward(Tensor& dx, const Tensor& dy, const Tensor& x, ExecContext& ctx) override;
  void gelu_forward(Tensor& y, const Tensor& x, ExecContext& ctx) override;
  void gelu_backward(Tensor& dx, const Tensor& dy, const Tensor& x, ExecContext& ctx) override;
  void dropout_forward(Tensor& y, Tensor& mask, const Tensor& x, double p, std::uint64_t seed,
                       ExecContext& ctx) override;

  void layernorm_forward(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x,
                         const Tensor& gamma, const Tensor& beta, double eps,
                         ExecContext& ctx) override;
  void layernorm_backward(Tensor& dx, Tensor& dgamma, Tensor& dbeta, const Tensor& dy,
                          const Tensor& x, const Tensor& mean, const Tensor& rstd,
                          const Tensor& gamma, ExecContext& ctx) override;

  void embedding_forward(Tensor& out, const Tensor& ids, const Tensor& table,
                         ExecContext& ctx) override;
  void embedding_backward(Tensor& dtable, const Tensor& dout, const Tensor& ids,
                          ExecContext& ctx) override;

  void softmax_forward(Tensor& y, const Tensor& x, double scale, bool causal,
                       ExecContext& ctx) override;
  void softmax_backward(Tensor& dx, const Tensor& dy, const Tensor& y, double scale,
                        ExecContext& ctx) override;

  void cross_entropy_forward(Tensor& losses, Tensor& probs, const Tensor& logits,
                             const Tensor& labels, ExecContext& ctx) override;
  void cross_entropy_backward(Tensor& dlogits, const Tensor& probs, const Tensor& labels,
                              double scale, ExecContext& ctx) override;
  void argmax_rows(Tensor& out, const Tensor& x, ExecContext& ctx) override;

  void conv2d_forward(Tensor& y, const Tensor& x, const Tensor& w, const Conv2dDesc& d,
                      ExecContext& ctx) override;
  void conv2d_backward_data(Tensor& dx, const Tensor& dy, const Tensor& w, const Conv2dDesc& d,
                            ExecContext& ctx) override;
  void conv2d_backward_filter(Tensor& dw, const Tensor& dy, const Tensor& x, const Conv2dDesc& d,
                              ExecContext& ctx) override;
  void add_channel_bias(Tensor& y, const Tensor& bias, ExecContext& ctx) override;
  void channel_bias_grad(Tensor& dbias, const Tensor& dy, ExecContext& ctx) override;
  void maxpool2d_forward(Tensor& y, const Tensor& x, const Pool2dDesc& d,
                         ExecContext& ctx) override;
  void maxpool2d_backward(Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& y,
                          const Pool2dDesc& d, ExecContext& ctx) override;

  void sgd_step(Tensor& param, const Tensor& grad, Tensor& momentum_buf, const SgdStep& s,
                ExecContext& ctx) override;
  void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& s,
                  ExecContext& ctx) override;

  int device() const { return device_; }

 private:
  // Common prologue of every op: ctx belongs to this GPU, every tensor is defined, contiguous
  // and on it; makes the GPU current on the calling thread. Returns the stream to queue on.
  cudaStream_t begin(const char* op, const ExecContext& ctx,
                     std::initializer_list<const Tensor*> tensors);
  // begin() plus: every tensor is f32.
  cudaStream_t begin_f32(const char* op, const ExecContext& ctx,
                         std::initializer_list<const Tensor*> tensors);

  // Everything below requires mutex_ to be held.
  struct StreamState {
    void* cublas_workspace = nullptr;
    void* scratch = nullptr;
    std::size_t scratch_bytes = 0;
  };
  StreamState& stream_state_locked(cudaStream_t stream);
  // Device scratch of at least `bytes` private to `stream`, valid until the next scratch request
  // on that stream. Work using it must be queued before mutex_ is released. Growing it first
  // waits for the stream (the old block may still be in use by queued work).
  void* scratch_locked(cudaStream_t stream, std::size_t bytes);
  // The handles, bound to `stream` (cuBLAS also to the stream's workspace).
  cublasHandle_t cublas_locked(cudaStream_t stream);
  cudnnHandle_t cudnn_locked(cudaStream_t stream);
  ConvPlan& conv_plan_locked(const Conv2dDesc& d);
  PoolPlan& pool_plan_locked(const Pool2dDesc& d);
  void choose_fwd_algo_locked(ConvPlan& p);
  void choose_bwd_data_algo_locked(ConvPlan& p);
  void choose_bwd_filter_algo_locked(ConvPlan& p);

  // Column sums (bias_grad, layernorm_backward): scratch for the partials, under mutex_.
  template <class Load>
  void column_sums(std::int64_t rows, std::int64_t cols, const Load& load, float* out0, float* out1,
                   cudaStream_t stream, const char* op) {
    const ColumnPlan plan = plan_columns(rows, cols);
    if (plan.rows <= 0 || plan.cols <= 0) return;
    std::lock_guard lock(mutex_);
    auto* partial = static_cast<float2*>(scratch_locked(stream, plan.partial_bytes()));
    launch_column_sums(plan, load, partial, out0, out1, stream, op);
  }

  int device_;
  std::mutex mutex_;
  cublasHandle_t cublas_ = nullptr;
  cudnnHandle_t cudnn_ = nullptr;
  std::map<cudaStream_t, StreamState> streams_;
  std::map<std::array<std::int64_t, 9>, ConvPlan> conv_plans_;
  std::map<std::array<std::int64_t, 6>, PoolPlan> pool_plans_;
};

// Bytes of cuBLAS workspace per stream (NVIDIA's recommendation for Hopper).
constexpr std::size_t kCublasWorkspaceBytes = std::size_t{32} << 20;
// Streams with cached workspaces before all of them are released (see stream_state_locked).
constexpr std::size_t kMaxStreamStates = 32;
// Largest cuDNN workspace an algorithm may ask for before a leaner one is preferred.
constexpr std::size_t kMaxCudnnWorkspaceBytes = std::size_t{512} << 20;

// t viewed as [rows, cols]: throws unless cols > 0 divides t.numel(); returns rows.
std::int64_t rows_of(const char* op, const Tensor& t, std::int64_t cols, const char* what);
// The memory of `a` and `b` does not overlap (outputs that must not alias an input).
void check_disjoint(const char* op, const Tensor& a, const Tensor& b);
// The memory of `out` overlaps none of `others`.
void check_disjoint(const char* op, const Tensor& out, std::initializer_list<const Tensor*> others);
// `in` is the very same memory as `out` (in place) or does not overlap it.
void check_same_or_disjoint(const char* op, const Tensor& out, const Tensor& in);

// Throws unless 0 <= v <= INT_MAX (cuBLAS/cuDNN take int dimensions).
int to_int(std::int64_t v, const char* op, const char* what);

}  // namespace hydra::cuda_impl
