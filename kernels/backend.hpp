#pragma once
// The compute backend interface. Layers are written once against it; the CPU backend
// (kernels/cpu, OpenBLAS) and the CUDA backend (kernels/cuda, cuBLAS/cuDNN/own kernels)
// implement it.
//
// Conventions for every op:
//  - All tensors are contiguous, row-major, on the backend's device (ctx.device).
//  - Floating dtypes: the CPU backend accepts f32 and f64; the CUDA backend f32 (and bf16 where
//    an op says so). All float operands of one call share a dtype. An unsupported dtype, a shape
//    mismatch or a device mismatch throws hydra::Error naming the op and the tensors.
//  - Work is queued on ctx.stream (asynchronous on CUDA). Ops returning a double synchronise.
//  - "+=" in a comment means the op accumulates into its output (gradient accumulation);
//    otherwise the output is overwritten.
#include <cstdint>

#include "kernels/core/tensor.hpp"
#include "kernels/exec_context.hpp"

namespace hydra {

// Row-major (batched, strided) GEMM: C[b] = alpha * op(A[b]) @ op(B[b]) + beta * C[b], where
// op(A) is m x k, op(B) is k x n and C is m x n. lda/ldb/ldc are row strides in elements
// (0 = packed: cols of the stored matrix); stride_* are element offsets between batch items
// (-1 = packed: rows*ld of the stored matrix; 0 broadcasts one matrix to every batch item).
// A, B, C are the base tensors; the matrices start at their data().
// dtypes: A, B, C all f32 or f64 (CPU); on CUDA f32 (TF32 tensor cores allowed, fp32 accumulate)
// or A, B bf16 with C bf16 or f32 (fp32 accumulate).
struct GemmDesc {
  bool trans_a = false, trans_b = false;
  std::int64_t m = 0, n = 0, k = 0;
  std::int64_t lda = 0, ldb = 0, ldc = 0;
  std::int64_t batch = 1;
  std::int64_t stride_a = -1, stride_b = -1, stride_c = -1;
  double alpha = 1.0, beta = 0.0;
};

// 2-d convolution, NCHW input [n, c, h, w], filter [k, c, r, s], output [n, k, out_h, out_w],
// square stride and zero padding, no dilation, no groups.
struct Conv2dDesc {
  std::int64_t n = 0, c = 0, h = 0, w = 0;
  std::int64_t k = 0, r = 0, s = 0;
  std::int64_t stride = 1, pad = 0;
  std::int64_t out_h() const { return (h + 2 * pad - r) / stride + 1; }
  std::int64_t out_w() const { return (w + 2 * pad - s) / stride + 1; }
};

// Max pooling, NCHW, square window, no padding: out = (h - window) / stride + 1.
struct Pool2dDesc {
  std::int64_t n = 0, c = 0, h = 0, w = 0;
  std::int64_t window = 2, stride = 2;
  std::int64_t out_h() const { return (h - window) / stride + 1; }
  std::int64_t out_w() const { return (w - window) / stride + 1; }
};

// SGD with momentum, as torch.optim.SGD: g = grad + weight_decay * p;
// buf = (step == 1) ? g : momentum * buf + (1 - dampening) * g;
// g = nesterov ? g + momentum * buf : buf (when momentum != 0); p -= lr * g.
struct SgdStep {
  double lr = 0.01, momentum = 0.0, dampening = 0.0, weight_decay = 0.0;
  bool nesterov = false;
  std::int64_t step = 1;  // 1-based count of updates to this parameter, including this one
};

// AdamW, as torch.optim.AdamW: p *= (1 - lr * weight_decay); m = b1 m + (1 - b1) g;
// v = b2 v + (1 - b2) g^2; p -= lr * (m / (1 - b1^step)) / (sqrt(v / (1 - b2^step)) + eps).
struct AdamWStep {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01;
  std::int64_t step = 1;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;  // "cpu", "cuda"

  // --- elementwise and data movement ---
  virtual void fill(Tensor& x, double value, ExecContext& ctx) = 0;
  // dst = src converted to dst's dtype (same numel). CUDA: f32 <-> bf16; CPU: f32 <-> f64.
  virtual void convert(Tensor& dst, const Tensor& src, ExecContext& ctx) = 0;
  virtual void add(Tensor& out, const Tensor& a, const Tensor& b, ExecContext& ctx) = 0;  // a + b
  virtual void mul(Tensor& out, const Tensor& a, const Tensor& b, ExecContext& ctx) = 0;  // a * b
  virtual void axpy(Tensor& y, double alpha, const Tensor& x, ExecContext& ctx) = 0;  // y += a*x
  virtual void scale(Tensor& x, double alpha, ExecContext& ctx) = 0;                  // x *= a
  virtual double sum(const Tensor& x, ExecContext& ctx) = 0;
  virtual double sum_squares(const Tensor& x, ExecContext& ctx) = 0;
  // out[a, c, b, d] = in[a, b, c, d]; shapes given by `in` (4-d) and `out`.
  virtual void permute_0213(Tensor& out, const Tensor& in, ExecContext& ctx) = 0;

  // --- dense ---
  virtual void gemm(const GemmDesc& d, const Tensor& a, const Tensor& b, Tensor& c,
                    ExecContext& ctx) = 0;
  // y viewed as [rows, cols] with cols = bias.numel(): y[r, j] += bias[j].
  virtual void add_bias(Tensor& y, const Tensor& bias, ExecContext& ctx) = 0;
  // dbias[j] += sum_r dy[r, j].
  virtual void bias_grad(Tensor& dbias, const Tensor& dy, ExecContext& ctx) = 0;

  // --- activations ---
  virtual void relu_forward(Tensor& y, const Tensor& x, ExecContext& ctx) = 0;
  virtual void relu_backward(Tensor& dx, const Tensor& dy, const Tensor& x, ExecContext& ctx) = 0;
  // Exact GELU: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)).
  virtual void gelu_forward(Tensor& y, const Tensor& x, ExecContext& ctx) = 0;
  virtual void gelu_backward(Tensor& dx, const Tensor& dy, const Tensor& x, ExecContext& ctx) = 0;
  // mask[i] = (uniform01(seed, i) >= p) ? 1 / (1 - p) : 0; y = x * mask. 0 <= p < 1.
  virtual void dropout_forward(Tensor& y, Tensor& mask, const Tensor& x, double p,
                               std::uint64_t seed, ExecContext& ctx) = 0;

  // --- normalisation ---
  // x, y viewed as [rows, cols] with cols = gamma.numel(); mean, rstd: [rows] (same dtype).
  virtual void layernorm_forward(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x,
                                 const Tensor& gamma, const Tensor& beta, double eps,
                                 ExecContext& ctx) = 0;
  // dx overwritten; dgamma, dbeta +=.
  virtual void layernorm_backward(Tensor& dx, Tensor& dgamma, Tensor& dbeta, const Tensor& dy,
                                  const Tensor& x, const Tensor& mean, const Tensor& rstd,
                                  const Tensor& gamma, ExecContext& ctx) = 0;

  // --- embeddings ---
  // ids: i32, any shape, n = ids.numel(); table [vocab, dim]; out viewed as [n, dim].
  // The CPU backend throws on an id outside [0, vocab); callers validate ids before CUDA use.
  virtual void embedding_forward(Tensor& out, const Tensor& ids, const Tensor& table,
                                 ExecContext& ctx) = 0;
  // dtable[ids[i], :] += dout[i, :].
  virtual void embedding_backward(Tensor& dtable, const Tensor& dout, const Tensor& ids,
                                  ExecContext& ctx) = 0;

  // --- softmax (attention) ---
  // x, y viewed as [rows, cols]; y = softmax(scale * x) along each row. With `causal`, x is
  // [batch, t, t] (rows = batch * t, cols = t) and entries with column > row % t get
  // probability 0.
  virtual void softmax_forward(Tensor& y, const Tensor& x, double scale, bool causal,
                               ExecContext& ctx) = 0;
  // dx = scale * y * (dy - sum_row(dy * y)); masked entries have y = 0 so dx = 0 there.
  virtual void softmax_backward(Tensor& dx, const Tensor& dy, const Tensor& y, double scale,
                                ExecContext& ctx) = 0;

  // --- loss ---
  // logits [n, classes], labels i32 [n] in [0, classes) (CPU throws otherwise);
  // probs = softmax(logits) [n, classes]; losses[i] = -log probs[i, labels[i]] ([n]).
  virtual void cross_entropy_forward(Tensor& losses, Tensor& probs, const Tensor& logits,
                                     const Tensor& labels, ExecContext& ctx) = 0;
  // dlogits = scale * (probs - onehot(labels)).
  virtual void cross_entropy_backward(Tensor& dlogits, const Tensor& probs, const Tensor& labels,
                                      double scale, ExecContext& ctx) = 0;
  // out i32 [n] = argmax over the last dimension of x [n, classes] (first maximum wins).
  virtual void argmax_rows(Tensor& out, const Tensor& x, ExecContext& ctx) = 0;

  // --- convolution and pooling (cuDNN on CUDA) ---
  virtual void conv2d_forward(Tensor& y, const Tensor& x, const Tensor& w, const Conv2dDesc& d,
                              ExecContext& ctx) = 0;
  virtual void conv2d_backward_data(Tensor& dx, const Tensor& dy, const Tensor& w,
                                    const Conv2dDesc& d, ExecContext& ctx) = 0;
  // dw +=.
  virtual void conv2d_backward_filter(Tensor& dw, const Tensor& dy, const Tensor& x,
                                      const Conv2dDesc& d, ExecContext& ctx) = 0;
  // y [n, c, h, w] += bias[c] (any number of trailing spatial dims: channel = dim 1).
  virtual void add_channel_bias(Tensor& y, const Tensor& bias, ExecContext& ctx) = 0;
  // dbias[c] += sum over n and spatial dims of dy.
  virtual void channel_bias_grad(Tensor& dbias, const Tensor& dy, ExecContext& ctx) = 0;
  virtual void maxpool2d_forward(Tensor& y, const Tensor& x, const Pool2dDesc& d,
                                 ExecContext& ctx) = 0;
  // dx overwritten: each dy goes to the (first) maximal input of its window.
  virtual void maxpool2d_backward(Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& y,
                                  const Pool2dDesc& d, ExecContext& ctx) = 0;

  // --- optimizers (state tensors have the parameter's shape and dtype) ---
  virtual void sgd_step(Tensor& param, const Tensor& grad, Tensor& momentum_buf, const SgdStep& s,
                        ExecContext& ctx) = 0;
  virtual void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v,
                          const AdamWStep& s, ExecContext& ctx) = 0;
};

// The backend that computes on `device`: CPU for host, pinned and cpu:N; CUDA for cuda:N
// (throws hydra::Error when built without CUDA or when the GPU does not exist).
Backend& backend_for(Device device);
Backend& cpu_backend();

}  // namespace hydra
