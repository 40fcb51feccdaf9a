// Activations: ReLU, exact (erf) GELU, dropout (counter-based masks shared with the CPU backend).
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/random.hpp"

namespace hydra::cuda_impl {
namespace {

struct ReluForward {
  float* y;
  const float* x;
  __device__ void operator()(std::int64_t i) const {
    const float v = x[i];
    y[i] = v > 0.f ? v : 0.f;
  }
};

struct ReluBackward {
  float* dx;
  const float *dy, *x;
  __device__ void operator()(std::int64_t i) const { dx[i] = x[i] > 0.f ? dy[i] : 0.f; }
};

constexpr float kInvSqrt2 = 0.70710678118654752440f;
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;  // 1 / sqrt(2 pi)

struct GeluForward {
  float* y;
  const float* x;
  __device__ void operator()(std::int64_t i) const {
    const float v = x[i];
    y[i] = 0.5f * v * (1.f + erff(v * kInvSqrt2));
  }
};

// d/dx [x Phi(x)] = Phi(x) + x phi(x).
struct GeluBackward {
  float* dx;
  const float *dy, *x;
  __device__ void operator()(std::int64_t i) const {
    const float v = x[i];
    const float cdf = 0.5f * (1.f + erff(v * kInvSqrt2));
    const float pdf = kInvSqrt2Pi * expf(-0.5f * v * v);
    dx[i] = dy[i] * (cdf + v * pdf);
  }
};

struct Dropout {
  float *y, *mask;
  const float* x;
  double p;
  float keep_scale;
  std::uint64_t seed;
  __device__ void operator()(std::int64_t i) const {
    // The comparison is done in double, as on the host, so masks agree bit for bit.
    const float u = uniform01(seed, static_cast<std::uint64_t>(i));
    const float m = static_cast<double>(u) >= p ? keep_scale : 0.f;
    mask[i] = m;
    y[i] = x[i] * m;
  }
};

}  // namespace

void CudaBackend::relu_forward(Tensor& y, const Tensor& x, ExecContext& ctx) {
  const char* op = "relu_forward";
  cudaStream_t s = begin_f32(op, ctx, {&y, &x});
  op_checks::same_numel(op, y, x);
  launch_for_each(y.numel(), s, op, ReluForward{f32(y), f32(x)});
}

void CudaBackend::relu_backward(Tensor& dx, const Tensor& dy, const Tensor& x, ExecContext& ctx) {
  const char* op = "relu_backward";
  cudaStream_t s = begin_f32(op, ctx, {&dx, &dy, &x});
  op_checks::same_numel(op, dx, dy);
  op_checks::same_numel(op, dx, x);
  launch_for_each(dx.numel(), s, op, ReluBackward{f32(dx), f32(dy), f32(x)});
}

void CudaBackend::gelu_forward(Tensor& y, const Tensor& x, ExecContext& ctx) {
  const char* op = "gelu_forward";
  cudaStream_t s = begin_f32(op, ctx, {&y, &x});
  op_checks::same_numel(op, y, x);
  launch_for_each(y.numel(), s, op, GeluForward{f32(y), f32(x)});
}

void CudaBackend::gelu_backward(Tensor& dx, const Tensor& dy, const Tensor& x, ExecContext& ctx) {
  const char* op = "gelu_backward";
  cudaStream_t s = begin_f32(op, ctx, {&dx, &dy, &x});
  op_checks::same_numel(op, dx, dy);
  op_checks::same_numel(op, dx, x);
  launch_for_each(dx.numel(), s, op, GeluBackward{f32(dx), f32(dy), f32(x)});
}

void CudaBackend::dropout_forward(Tensor& y, Tensor& mask, const Tensor& x, double p,
                                  std::uint64_t seed, ExecContext& ctx) {
  const char* op = "dropout_forward";
  cudaStream_t s = begin_f32(op, ctx, {&y, &mask, &x});
  op_checks::same_numel(op, y, x);
  op_checks::same_numel(op, mask, x);
  op_checks::that(p >= 0.0 && p < 1.0, op, "p = " + std::to_string(p) + " is not in [0, 1)");
  const float keep_scale = static_cast<float>(1.0 / (1.0 - p));
  launch_for_each(y.numel(), s, op, Dropout{f32(y), f32(mask), f32(x), p, keep_scale, seed});
}

}  // namespace hydra::cuda_impl
