// Optimizer steps with torch.optim.SGD / torch.optim.AdamW semantics (see kernels/backend.hpp).
// Hyper-parameters and bias corrections are computed in double on the host, the update in float.
#include <cmath>
#include <string>

#include "kernels/cuda/cuda_common.cuh"

namespace hydra::cuda_impl {
namespace {

struct SgdUpdate {
  float *p, *buf;  // buf is null when momentum == 0
  const float* g;
  float lr, momentum, damp, weight_decay;  // damp = 1 - dampening
  bool first, nesterov;
  __device__ void operator()(std::int64_t i) const {
    float d = g[i] + weight_decay * p[i];
    if (buf) {
      const float b = first ? d : momentum * buf[i] + damp * d;
      buf[i] = b;
      d = nesterov ? d + momentum * b : b;
    }
    p[i] -= lr * d;
  }
};

// p *= 1 - lr wd; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// p -= (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps).
struct AdamWUpdate {
  float *p, *m, *v;
  const float* g;
  float decay, b1, b2, step_size, bc2_sqrt, eps;
  __device__ void operator()(std::int64_t i) const {
    const float gi = g[i];
    const float mi = b1 * m[i] + (1.f - b1) * gi;
    const float vi = b2 * v[i] + (1.f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - step_size * mi / (sqrtf(vi) / bc2_sqrt + eps);
  }
};

// Parameter, gradient and state: f32, same size, pairwise disjoint.
void check_state(const char* op, const Tensor& param, std::initializer_list<const Tensor*> others) {
  for (const Tensor* t : others)
    op_checks::same_numel(op, param, *t);
  for (auto a = others.begin(); a != others.end(); ++a) {
    check_disjoint(op, param, **a);
    for (auto b = a + 1; b != others.end(); ++b)
      check_disjoint(op, **a, **b);
  }
}

}  // namespace

void CudaBackend::sgd_step(Tensor& param, const Tensor& grad, Tensor& momentum_buf,
                           const SgdStep& s, ExecContext& ctx) {
  const char* op = "sgd_step";
  op_checks::that(s.step >= 1, op, "step " + std::to_string(s.step) + " must be >= 1");
  op_checks::that(!s.nesterov || (s.momentum > 0 && s.dampening == 0), op,
                  "Nesterov momentum requires a momentum and zero dampening");
  const bool use_buf = s.momentum != 0;
  cudaStream_t stream;
  if (use_buf) {
    stream = begin_f32(op, ctx, {&param, &grad, &momentum_buf});
    check_state(op, param, {&grad, &momentum_buf});
  } else {
    stream = begin_f32(op, ctx, {&param, &grad});  // the buffer is unused (may be undefined)
    check_state(op, param, {&grad});
  }
  const SgdUpdate u{f32(param),
                    use_buf ? f32(momentum_buf) : nullptr,
                    f32(grad),
                    static_cast<float>(s.lr),
                    static_cast<float>(s.momentum),
                    static_cast<float>(1.0 - s.dampening),
                    static_cast<float>(s.weight_decay),
                    s.step == 1,
                    s.nesterov};
  launch_for_each(param.numel(), stream, op, u);
}

void CudaBackend::adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v,
                             const AdamWStep& s, ExecContext& ctx) {
  const char* op = "adamw_step";
  op_checks::that(s.step >= 1, op, "step " + std::to_string(s.step) + " must be >= 1");
  op_checks::that(s.beta1 >= 0 && s.beta1 < 1 && s.beta2 >= 0 && s.beta2 < 1, op,
                  "beta1 and beta2 must lie in [0, 1)");
  cudaStream_t stream = begin_f32(op, ctx, {&param, &grad, &m, &v});
  check_state(op, param, {&grad, &m, &v});
  const double bc1 = 1.0 - std::pow(s.beta1, static_cast<double>(s.step));
  const double bc2 = 1.0 - std::pow(s.beta2, static_cast<double>(s.step));
  const AdamWUpdate u{f32(param),
                      f32(m),
                      f32(v),
                      f32(grad),
                      static_cast<float>(1.0 - s.lr * s.weight_decay),
                      static_cast<float>(s.beta1),
                      static_cast<float>(s.beta2),
                      static_cast<float>(s.lr / bc1),
                      static_cast<float>(std::sqrt(bc2)),
                      static_cast<float>(s.eps)};
  launch_for_each(param.numel(), stream, op, u);
}

}  // namespace hydra::cuda_impl
