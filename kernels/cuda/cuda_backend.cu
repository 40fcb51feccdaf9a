// The CUDA backend object: one per GPU, its cuBLAS/cuDNN handles, per-stream workspaces and the
// checks shared by every op. The ops themselves live in the other kernels/cuda/*.cu files.
#include <climits>
#include <memory>
#include <string>
#include <vector>

#include "kernels/core/cuda_api.hpp"
#include "kernels/core/memory_pool.hpp"
#include "kernels/cuda/cuda_backend.hpp"
#include "kernels/cuda/cuda_common.cuh"

namespace hydra {

Backend& cuda_backend(int device) {
  static std::mutex mutex;
  // Intentionally leaked: destroying cuBLAS/cuDNN handles during static destruction can run
  // after the CUDA runtime has shut down.
  static auto* backends = new std::vector<cuda_impl::CudaBackend*>();
  const int count = cuda::device_count();
  if (device < 0 || device >= count)
    throw Error("cuda_backend: no such CUDA device cuda:" + std::to_string(device) + " (" +
                std::to_string(count) + " available)");
  std::lock_guard lock(mutex);
  if (backends->empty()) backends->resize(static_cast<std::size_t>(count), nullptr);
  auto& b = (*backends)[static_cast<std::size_t>(device)];
  if (!b) b = new cuda_impl::CudaBackend(device);
  return *b;
}

namespace cuda_impl {

void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    throw Error(std::string(what) + ": " + cudaGetErrorName(status) + " (" +
                cudaGetErrorString(status) + ")");
}

void check_cublas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw Error(std::string(what) + ": cuBLAS error " + cublasGetStatusName(status) + " (" +
                cublasGetStatusString(status) + ")");
}

void check_cudnn(cudnnStatus_t status, const char* what) {
  if (status != CUDNN_STATUS_SUCCESS)
    throw Error(std::string(what) + ": cuDNN error " + cudnnGetErrorString(status));
}

void check_launch(const char* op) {
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess)
    throw Error(std::string(op) + ": kernel launch failed: " + cudaGetErrorName(status) + " (" +
                cudaGetErrorString(status) + ")");
}

int to_int(std::int64_t v, const char* op, const char* what) {
  op_checks::that(v >= 0 && v <= INT_MAX, op,
                  std::string(what) + " = " + std::to_string(v) +
                      " is outside the range cuBLAS/cuDNN accept (0 .. 2^31-1)");
  return static_cast<int>(v);
}

std::int64_t rows_of(const char* op, const Tensor& t, std::int64_t cols, const char* what) {
  op_checks::that(cols > 0 && t.numel() % cols == 0, op,
                  std::string(what) + " " + t.str() + " cannot be viewed as rows of " +
                      std::to_string(cols) + " columns");
  return t.numel() / cols;
}

namespace {
bool overlap(const Tensor& a, const Tensor& b) {
  if (a.nbytes() == 0 || b.nbytes() == 0) return false;
  const auto* pa = static_cast<const char*>(a.data());
  const auto* pb = static_cast<const char*>(b.data());
  return pa < pb + b.nbytes() && pb < pa + a.nbytes();
}
}  // namespace

void check_disjoint(const char* op, const Tensor& a, const Tensor& b) {
  op_checks::that(!overlap(a, b), op, a.str() + " and " + b.str() + " must not overlap");
}

void check_disjoint(const char* op, const Tensor& out,
                    std::initializer_list<const Tensor*> others) {
  for (const Tensor* t : others)
    check_disjoint(op, out, *t);
}

void check_same_or_disjoint(const char* op, const Tensor& out, const Tensor& in) {
  const bool same = out.data() == in.data() && out.nbytes() == in.nbytes();
  op_checks::that(
      same || !overlap(out, in), op,
      out.str() + " must be either the same memory as " + in.str() + " or not overlap it");
}

ColumnPlan plan_columns(std::int64_t rows, std::int64_t cols) {
  ColumnPlan p;
  p.rows = rows;
  p.cols = cols;
  if (rows <= 0 || cols <= 0) return p;
  // Enough blocks to fill the GPU (~4 per SM on an H100), each chunk at least 32 rows. The plan
  // depends only on the shape, so results are deterministic.
  const std::int64_t col_tiles = (cols + kColTile - 1) / kColTile;
  const std::int64_t want_chunks = (512 + col_tiles - 1) / col_tiles;
  const std::int64_t max_chunks = (rows + 31) / 32;
  p.chunks = want_chunks < max_chunks ? want_chunks : max_chunks;
  if (p.chunks < 1) p.chunks = 1;
  if (p.chunks > 65535) p.chunks = 65535;  // gridDim.y limit
  p.rows_per_chunk = (rows + p.chunks - 1) / p.chunks;
  p.chunks = (rows + p.rows_per_chunk - 1) / p.rows_per_chunk;
  return p;
}

namespace {
__global__ void __launch_bounds__(kThreads)
    column_finalize_kernel(const float2* partial, std::int64_t chunks, std::int64_t cols,
                           float* out0, float* out1) {
  const std::int64_t step = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
  for (std::int64_t j = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < cols;
       j += step) {
    float s0 = 0.f, s1 = 0.f;
    for (std::int64_t c = 0; c < chunks; ++c) {
      const float2 v = partial[c * cols + j];
      s0 += v.x;
      s1 += v.y;
    }
    out0[j] += s0;
    if (out1) out1[j] += s1;
  }
}
}  // namespace

void launch_column_finalize(const float2* partial, std::int64_t chunks, std::int64_t cols,
                            float* out0, float* out1, cudaStream_t stream, const char* op) {
  if (cols <= 0) return;
  column_finalize_kernel<<<grid_for(cols), kThreads, 0, stream>>>(partial, chunks, cols, out0,
                                                                  out1);
  check_launch(op);
}

CudaBackend::CudaBackend(int device) : device_(device) {}

cudaStream_t CudaBackend::begin(const char* op, const ExecContext& ctx,
                                std::initializer_list<const Tensor*> tensors) {
  const Device self = Device::cuda(device_);
  op_checks::that(
      ctx.device == self, op,
      "the CUDA backend of " + self.str() + " was given a context on " + ctx.device.str());
  op_checks::that(
      ctx.stream != nullptr && ctx.stream->device() == self && ctx.stream->handle() != nullptr, op,
      "the context's stream does not belong to " + self.str());
  op_checks::on_device(op, ctx, tensors);
  check_cuda(cudaSetDevice(device_), "cudaSetDevice");
  return static_cast<cudaStream_t>(ctx.stream->handle());
}

cudaStream_t CudaBackend::begin_f32(const char* op, const ExecContext& ctx,
                                    std::initializer_list<const Tensor*> tensors) {
  cudaStream_t s = begin(op, ctx, tensors);
  for (const Tensor* t : tensors)
    op_checks::dtype_in(op, *t, {DType::f32});
  return s;
}

CudaBackend::StreamState& CudaBackend::stream_state_locked(cudaStream_t stream) {
  if (streams_.find(stream) == streams_.end() && streams_.size() >= kMaxStreamStates) {
    // Streams come and go (their handles are never reported back), so bound the memory kept for
    // them: wait for all work on the device, then release every stream's buffers. Nothing else
    // can be using them: they are only handed out, and used, under mutex_.
    check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize (releasing stream workspaces)");
    MemoryPool& pool = memory_pool(Device::cuda(device_));
    for (auto& [s, st] : streams_) {
      if (st.cublas_workspace) pool.deallocate(st.cublas_workspace);
      if (st.scratch) pool.deallocate(st.scratch);
    }
    streams_.clear();
  }
  return streams_[stream];
}

void* CudaBackend::scratch_locked(cudaStream_t stream, std::size_t bytes) {
  StreamState& st = stream_state_locked(stream);
  if (bytes == 0) bytes = 1;
  if (st.scratch_bytes < bytes) {
    MemoryPool& pool = memory_pool(Device::cuda(device_));
    if (st.scratch) {
      // Work already queued on this stream may still read or write the old block.
      check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize (scratch resize)");
      pool.deallocate(st.scratch);
      st.scratch = nullptr;
      st.scratch_bytes = 0;
    }
    std::size_t size = std::size_t{1} << 20;
    while (size < bytes)
      size *= 2;
    st.scratch = pool.allocate(size);
    st.scratch_bytes = size;
  }
  return st.scratch;
}

cublasHandle_t CudaBackend::cublas_locked(cudaStream_t stream) {
  if (!cublas_) {
    check_cublas(cublasCreate(&cublas_), "cublasCreate");
    check_cublas(cublasSetPointerMode(cublas_, CUBLAS_POINTER_MODE_HOST), "cublasSetPointerMode");
  }
  StreamState& st = stream_state_locked(stream);
  if (!st.cublas_workspace)
    st.cublas_workspace = memory_pool(Device::cuda(device_)).allocate(kCublasWorkspaceBytes);
  // cublasSetStream resets the workspace to cuBLAS's default pool, so set ours afterwards.
  check_cublas(cublasSetStream(cublas_, stream), "cublasSetStream");
  check_cublas(cublasSetWorkspace(cublas_, st.cublas_workspace, kCublasWorkspaceBytes),
               "cublasSetWorkspace");
  return cublas_;
}

cudnnHandle_t CudaBackend::cudnn_locked(cudaStream_t stream) {
  if (!cudnn_) check_cudnn(cudnnCreate(&cudnn_), "cudnnCreate");
  check_cudnn(cudnnSetStream(cudnn_, stream), "cudnnSetStream");
  return cudnn_;
}

}  // namespace cuda_impl
}  // namespace hydra
