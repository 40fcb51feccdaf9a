// Convolution (forward, backward data, backward filter) and max pooling on cuDNN's legacy API.
// Descriptors and chosen algorithms are cached per shape; workspaces come from the per-stream
// scratch buffer. All cuDNN calls run under the backend mutex (one handle per device).
#include <string>

#include "kernels/cuda/cuda_common.cuh"

namespace hydra::cuda_impl {
namespace {

void check_conv(const char* op, const Conv2dDesc& d, const Tensor& x, const Tensor& w,
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
  op_checks::numel_is(op, x, d.n * d.c * d.h * d.w, "input");
  op_checks::numel_is(op, w, d.k * d.c * d.r * d.s, "filter");
  op_checks::numel_is(op, y, d.n * d.k * d.out_h() * d.out_w(), "output");
}

void check_pool(const char* op, const Pool2dDesc& d, const Tensor& x, const Tensor& y) {
  const bool ok =
      d.n >= 1 && d.c >= 1 && d.window >= 1 && d.stride >= 1 && d.h >= d.window && d.w >= d.window;
  op_checks::that(ok, op,
                  "invalid pooling n=" + std::to_string(d.n) + " c=" + std::to_string(d.c) +
                      " h=" + std::to_string(d.h) + " w=" + std::to_string(d.w) + " window=" +
                      std::to_string(d.window) + " stride=" + std::to_string(d.stride));
  op_checks::numel_is(op, x, d.n * d.c * d.h * d.w, "input");
  op_checks::numel_is(op, y, d.n * d.c * d.out_h() * d.out_w(), "output");
}

void destroy(ConvPlan& p) {
  if (p.x) cudnnDestroyTensorDescriptor(p.x);
  if (p.y) cudnnDestroyTensorDescriptor(p.y);
  if (p.w) cudnnDestroyFilterDescriptor(p.w);
  if (p.conv) cudnnDestroyConvolutionDescriptor(p.conv);
  p = ConvPlan{};
}

void destroy(PoolPlan& p) {
  if (p.x) cudnnDestroyTensorDescriptor(p.x);
  if (p.y) cudnnDestroyTensorDescriptor(p.y);
  if (p.pool) cudnnDestroyPoolingDescriptor(p.pool);
  p = PoolPlan{};
}

// The fastest usable algorithm of cuDNN's heuristic ranking: successful, within the workspace
// limit and (when asked) deterministic; failing that, the usable one needing the least workspace.
template <class Perf>
const Perf* pick(const Perf* perf, int count, bool want_deterministic, const char* op) {
  for (int pass = want_deterministic ? 0 : 1; pass < 2; ++pass)
    for (int i = 0; i < count; ++i) {
      const Perf& p = perf[i];
      if (p.status != CUDNN_STATUS_SUCCESS || p.memory > kMaxCudnnWorkspaceBytes) continue;
      if (pass == 0 && p.determinism != CUDNN_DETERMINISTIC) continue;
      return &p;
    }
  const Perf* best = nullptr;
  for (int i = 0; i < count; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS && (!best || perf[i].memory < best->memory))
      best = &perf[i];
  op_checks::that(best != nullptr, op, "cuDNN offers no algorithm for this convolution");
  return best;
}

const float kOne = 1.f, kZero = 0.f;

}  // namespace

ConvPlan& CudaBackend::conv_plan_locked(const Conv2dDesc& d) {
  const char* op = "conv2d";
  const std::array<std::int64_t, 9> key{d.n, d.c, d.h, d.w, d.k, d.r, d.s, d.stride, d.pad};
  if (auto it = conv_plans_.find(key); it != conv_plans_.end()) return it->second;
  ConvPlan p;
  try {
    check_cudnn(cudnnCreateTensorDescriptor(&p.x), "cudnnCreateTensorDescriptor");
    check_cudnn(cudnnCreateTensorDescriptor(&p.y), "cudnnCreateTensorDescriptor");
    check_cudnn(cudnnCreateFilterDescriptor(&p.w), "cudnnCreateFilterDescriptor");
    check_cudnn(cudnnCreateConvolutionDescriptor(&p.conv), "cudnnCreateConvolutionDescriptor");
    const int n = to_int(d.n, op, "n"), c = to_int(d.c, op, "c"), h = to_int(d.h, op, "h"),
              w = to_int(d.w, op, "w"), k = to_int(d.k, op, "k"), r = to_int(d.r, op, "r"),
              s = to_int(d.s, op, "s"), stride = to_int(d.stride, op, "stride"),
              pad = to_int(d.pad, op, "pad"), oh = to_int(d.out_h(), op, "out_h"),
              ow = to_int(d.out_w(), op, "out_w");
    check_cudnn(cudnnSetTensor4dDescriptor(p.x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w),
                "cudnnSetTensor4dDescriptor (input)");
    check_cudnn(cudnnSetFilter4dDescriptor(p.w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, k, c, r, s),
                "cudnnSetFilter4dDescriptor");
    check_cudnn(cudnnSetConvolution2dDescriptor(p.conv, pad, pad, stride, stride, 1, 1,
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                "cudnnSetConvolution2dDescriptor");
    int on = 0, ok = 0, ooh = 0, oow = 0;
    check_cudnn(cudnnGetConvolution2dForwardOutputDim(p.conv, p.x, p.w, &on, &ok, &ooh, &oow),
                "cudnnGetConvolution2dForwardOutputDim");
    op_checks::that(on == n && ok == k && ooh == oh && oow == ow, op,
                    "cuDNN computes output [" + std::to_string(on) + ", " + std::to_string(ok) +
                        ", " + std::to_string(ooh) + ", " + std::to_string(oow) + "], expected [" +
                        std::to_string(n) + ", " + std::to_string(k) + ", " + std::to_string(oh) +
                        ", " + std::to_string(ow) + "]");
    check_cudnn(cudnnSetTensor4dDescriptor(p.y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, k, oh, ow),
                "cudnnSetTensor4dDescriptor (output)");
  } catch (...) {
    destroy(p);
    throw;
  }
  return conv_plans_.emplace(key, p).first->second;
}

void CudaBackend::choose_fwd_algo_locked(ConvPlan& p) {
  const char* op = "conv2d_forward";
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int count = 0;
  check_cudnn(cudnnGetConvolutionForwardAlgorithm_v7(
                  cudnn_, p.x, p.w, p.conv, p.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, perf),
              "cudnnGetConvolutionForwardAlgorithm_v7");
  const auto* best = pick(perf, count, false, op);
  check_cudnn(cudnnSetConvolutionMathType(p.conv, best->mathType), "cudnnSetConvolutionMathType");
  std::size_t ws = 0;
  check_cudnn(
      cudnnGetConvolutionForwardWorkspaceSize(cudnn_, p.x, p.w, p.conv, p.y, best->algo, &ws),
      "cudnnGetConvolutionForwardWorkspaceSize");
  p.fwd_algo = best->algo;
  p.fwd_math = best->mathType;
  p.fwd_ws = ws;
  p.has_fwd = true;
}

void CudaBackend::choose_bwd_data_algo_locked(ConvPlan& p) {
  const char* op = "conv2d_backward_data";
  cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
  int count = 0;
  check_cudnn(
      cudnnGetConvolutionBackwardDataAlgorithm_v7(
          cudnn_, p.w, p.y, p.conv, p.x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, perf),
      "cudnnGetConvolutionBackwardDataAlgorithm_v7");
  const auto* best = pick(perf, count, true, op);
  check_cudnn(cudnnSetConvolutionMathType(p.conv, best->mathType), "cudnnSetConvolutionMathType");
  std::size_t ws = 0;
  check_cudnn(
      cudnnGetConvolutionBackwardDataWorkspaceSize(cudnn_, p.w, p.y, p.conv, p.x, best->algo, &ws),
      "cudnnGetConvolutionBackwardDataWorkspaceSize");
  p.bwd_data_algo = best->algo;
  p.bwd_data_math = best->mathType;
  p.bwd_data_ws = ws;
  p.has_bwd_data = true;
}

void CudaBackend::choose_bwd_filter_algo_locked(ConvPlan& p) {
  const char* op = "conv2d_backward_filter";
  cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
  int count = 0;
  check_cudnn(
      cudnnGetConvolutionBackwardFilterAlgorithm_v7(
          cudnn_, p.x, p.y, p.conv, p.w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, perf),
      "cudnnGetConvolutionBackwardFilterAlgorithm_v7");
  const auto* best = pick(perf, count, true, op);
  check_cudnn(cudnnSetConvolutionMathType(p.conv, best->mathType), "cudnnSetConvolutionMathType");
  std::size_t ws = 0;
  check_cudnn(cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnn_, p.x, p.y, p.conv, p.w,
                                                             best->algo, &ws),
              "cudnnGetConvolutionBackwardFilterWorkspaceSize");
  p.bwd_filter_algo = best->algo;
  p.bwd_filter_math = best->mathType;
  p.bwd_filter_ws = ws;
  p.has_bwd_filter = true;
}

PoolPlan& CudaBackend::pool_plan_locked(const Pool2dDesc& d) {
  const char* op = "maxpool2d";
  const std::array<std::int64_t, 6> key{d.n, d.c, d.h, d.w, d.window, d.stride};
  if (auto it = pool_plans_.find(key); it != pool_plans_.end()) return it->second;
  PoolPlan p;
  try {
    check_cudnn(cudnnCreateTensorDescriptor(&p.x), "cudnnCreateTensorDescriptor");
    check_cudnn(cudnnCreateTensorDescriptor(&p.y), "cudnnCreateTensorDescriptor");
    check_cudnn(cudnnCreatePoolingDescriptor(&p.pool), "cudnnCreatePoolingDescriptor");
    const int n = to_int(d.n, op, "n"), c = to_int(d.c, op, "c"), h = to_int(d.h, op, "h"),
              w = to_int(d.w, op, "w"), window = to_int(d.window, op, "window"),
              stride = to_int(d.stride, op, "stride"), oh = to_int(d.out_h(), op, "out_h"),
              ow = to_int(d.out_w(), op, "out_w");
    check_cudnn(cudnnSetTensor4dDescriptor(p.x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w),
                "cudnnSetTensor4dDescriptor (input)");
    check_cudnn(
        cudnnSetPooling2dDescriptor(p.pool, CUDNN_POOLING_MAX_DETERMINISTIC,
                                    CUDNN_NOT_PROPAGATE_NAN, window, window, 0, 0, stride, stride),
        "cudnnSetPooling2dDescriptor");
    int on = 0, oc = 0, ooh = 0, oow = 0;
    check_cudnn(cudnnGetPooling2dForwardOutputDim(p.pool, p.x, &on, &oc, &ooh, &oow),
                "cudnnGetPooling2dForwardOutputDim");
    op_checks::that(
        on == n && oc == c && ooh == oh && oow == ow, op,
        "cuDNN computes pooled output [" + std::to_string(on) + ", " + std::to_string(oc) + ", " +
            std::to_string(ooh) + ", " + std::to_string(oow) + "], expected [" + std::to_string(n) +
            ", " + std::to_string(c) + ", " + std::to_string(oh) + ", " + std::to_string(ow) + "]");
    check_cudnn(cudnnSetTensor4dDescriptor(p.y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, oh, ow),
                "cudnnSetTensor4dDescriptor (output)");
  } catch (...) {
    destroy(p);
    throw;
  }
  return pool_plans_.emplace(key, p).first->second;
}

void CudaBackend::conv2d_forward(Tensor& y, const Tensor& x, const Tensor& w, const Conv2dDesc& d,
                                 ExecContext& ctx) {
  const char* op = "conv2d_forward";
  cudaStream_t s = begin_f32(op, ctx, {&y, &x, &w});
  check_conv(op, d, x, w, y);
  check_disjoint(op, y, x);
  check_disjoint(op, y, w);
  std::lock_guard lock(mutex_);
  cudnnHandle_t h = cudnn_locked(s);
  ConvPlan& p = conv_plan_locked(d);
  if (!p.has_fwd) choose_fwd_algo_locked(p);
  check_cudnn(cudnnSetConvolutionMathType(p.conv, p.fwd_math), "cudnnSetConvolutionMathType");
  void* ws = p.fwd_ws ? scratch_locked(s, p.fwd_ws) : nullptr;
  check_cudnn(cudnnConvolutionForward(h, &kOne, p.x, x.data(), p.w, w.data(), p.conv, p.fwd_algo,
                                      ws, p.fwd_ws, &kZero, p.y, y.data()),
              "conv2d_forward: cudnnConvolutionForward");
}

void CudaBackend::conv2d_backward_data(Tensor& dx, const Tensor& dy, const Tensor& w,
                                       const Conv2dDesc& d, ExecContext& ctx) {
  const char* op = "conv2d_backward_data";
  cudaStream_t s = begin_f32(op, ctx, {&dx, &dy, &w});
  check_conv(op, d, dx, w, dy);
  check_disjoint(op, dx, dy);
  check_disjoint(op, dx, w);
  std::lock_guard lock(mutex_);
  cudnnHandle_t h = cudnn_locked(s);
  ConvPlan& p = conv_plan_locked(d);
  if (!p.has_bwd_data) choose_bwd_data_algo_locked(p);
  check_cudnn(cudnnSetConvolutionMathType(p.conv, p.bwd_data_math), "cudnnSetConvolutionMathType");
  void* ws = p.bwd_data_ws ? scratch_locked(s, p.bwd_data_ws) : nullptr;
  check_cudnn(
      cudnnConvolutionBackwardData(h, &kOne, p.w, w.data(), p.y, dy.data(), p.conv, p.bwd_data_algo,
                                   ws, p.bwd_data_ws, &kZero, p.x, dx.data()),
      "conv2d_backward_data: cudnnConvolutionBackwardData");
}

void CudaBackend::conv2d_backward_filter(Tensor& dw, const Tensor& dy, const Tensor& x,
                                         const Conv2dDesc& d, ExecContext& ctx) {
  const char* op = "conv2d_backward_filter";
  cudaStream_t s = begin_f32(op, ctx, {&dw, &dy, &x});
  check_conv(op, d, x, dw, dy);
  check_disjoint(op, dw, dy);
  check_disjoint(op, dw, x);
  std::lock_guard lock(mutex_);
  cudnnHandle_t h = cudnn_locked(s);
  ConvPlan& p = conv_plan_locked(d);
  if (!p.has_bwd_filter) choose_bwd_filter_algo_locked(p);
  check_cudnn(cudnnSetConvolutionMathType(p.conv, p.bwd_filter_math),
              "cudnnSetConvolutionMathType");
  void* ws = p.bwd_filter_ws ? scratch_locked(s, p.bwd_filter_ws) : nullptr;
  // beta = 1: dw +=.
  check_cudnn(
      cudnnConvolutionBackwardFilter(h, &kOne, p.x, x.data(), p.y, dy.data(), p.conv,
                                     p.bwd_filter_algo, ws, p.bwd_filter_ws, &kOne, p.w, dw.data()),
      "conv2d_backward_filter: cudnnConvolutionBackwardFilter");
}

void CudaBackend::maxpool2d_forward(Tensor& y, const Tensor& x, const Pool2dDesc& d,
                                    ExecContext& ctx) {
  const char* op = "maxpool2d_forward";
  cudaStream_t s = begin_f32(op, ctx, {&y, &x});
  check_pool(op, d, x, y);
  check_disjoint(op, y, x);
  std::lock_guard lock(mutex_);
  cudnnHandle_t h = cudnn_locked(s);
  PoolPlan& p = pool_plan_locked(d);
  check_cudnn(cudnnPoolingForward(h, p.pool, &kOne, p.x, x.data(), &kZero, p.y, y.data()),
              "maxpool2d_forward: cudnnPoolingForward");
}

void CudaBackend::maxpool2d_backward(Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& y,
                                     const Pool2dDesc& d, ExecContext& ctx) {
  const char* op = "maxpool2d_backward";
  cudaStream_t s = begin_f32(op, ctx, {&dx, &dy, &x, &y});
  check_pool(op, d, x, y);
  op_checks::same_numel(op, dx, x);
  op_checks::same_numel(op, dy, y);
  check_disjoint(op, dx, {&dy, &x, &y});
  std::lock_guard lock(mutex_);
  cudnnHandle_t h = cudnn_locked(s);
  PoolPlan& p = pool_plan_locked(d);
  check_cudnn(cudnnPoolingBackward(h, p.pool, &kOne, p.y, y.data(), p.y, dy.data(), p.x, x.data(),
                                   &kZero, p.x, dx.data()),
              "maxpool2d_backward: cudnnPoolingBackward");
}

}  // namespace hydra::cuda_impl
