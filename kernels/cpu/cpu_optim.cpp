// Optimizer steps on the CPU, with torch.optim.SGD / torch.optim.AdamW semantics.
#include <cmath>
#include <cstdint>
#include <string>

#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cpu/cpu_common.hpp"

namespace hydra {

namespace {

// Checks a parameter and its gradient and state tensors: same dtype and size, no aliasing.
void check_state(const char* op, const ExecContext& ctx, const Tensor& param,
                 std::initializer_list<const Tensor*> others) {
  for (const Tensor* t : others) {
    cpu::check_floats(op, ctx, {&param, t});
    op_checks::same_numel(op, param, *t);
  }
  for (auto a = others.begin(); a != others.end(); ++a) {
    cpu::check_disjoint(op, param, **a);
    for (auto b = a + 1; b != others.end(); ++b)
      cpu::check_disjoint(op, **a, **b);
  }
}

}  // namespace

void CpuBackend::sgd_step(Tensor& param, const Tensor& grad, Tensor& momentum_buf, const SgdStep& s,
                          ExecContext& ctx) {
  const char* op = "sgd_step";
  op_checks::that(s.step >= 1, op, "step " + std::to_string(s.step) + " must be >= 1");
  op_checks::that(!s.nesterov || (s.momentum > 0 && s.dampening == 0), op,
                  "Nesterov momentum requires a momentum and zero dampening");
  const bool use_buf = s.momentum != 0;
  if (use_buf)
    check_state(op, ctx, param, {&grad, &momentum_buf});
  else
    check_state(op, ctx, param, {&grad});  // the buffer is unused (may be undefined)
  cpu::dispatch(param, [&](auto tag) {
    using T = decltype(tag);
    const T lr = static_cast<T>(s.lr), mom = static_cast<T>(s.momentum),
            damp = static_cast<T>(1 - s.dampening), wd = static_cast<T>(s.weight_decay);
    T* p = param.data_as<T>();
    const T* g = grad.data_as<T>();
    T* buf = use_buf ? momentum_buf.data_as<T>() : nullptr;
    for (std::int64_t i = 0; i < param.numel(); ++i) {
      T d = g[i] + wd * p[i];
      if (use_buf) {
        buf[i] = s.step == 1 ? d : mom * buf[i] + damp * d;
        d = s.nesterov ? d + mom * buf[i] : buf[i];
      }
      p[i] -= lr * d;
    }
  });
}

void CpuBackend::adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v,
                            const AdamWStep& s, ExecContext& ctx) {
  const char* op = "adamw_step";
  op_checks::that(s.step >= 1, op, "step " + std::to_string(s.step) + " must be >= 1");
  op_checks::that(s.beta1 >= 0 && s.beta1 < 1 && s.beta2 >= 0 && s.beta2 < 1, op,
                  "beta1 and beta2 must lie in [0, 1)");
  check_state(op, ctx, param, {&grad, &m, &v});
  const double bc1 = 1 - std::pow(s.beta1, static_cast<double>(s.step));
  const double bc2 = 1 - std::pow(s.beta2, static_cast<double>(s.step));
  cpu::dispatch(param, [&](auto tag) {
    using T = decltype(tag);
    const T decay = static_cast<T>(1 - s.lr * s.weight_decay), b1 = static_cast<T>(s.beta1),
            b2 = static_cast<T>(s.beta2), step_size = static_cast<T>(s.lr / bc1),
            bc2_sqrt = static_cast<T>(std::sqrt(bc2)), eps = static_cast<T>(s.eps);
    T* p = param.data_as<T>();
    const T* g = grad.data_as<T>();
    T* mp = m.data_as<T>();
    T* vp = v.data_as<T>();
    for (std::int64_t i = 0; i < param.numel(); ++i) {
      p[i] *= decay;
      mp[i] = b1 * mp[i] + (T(1) - b1) * g[i];
      vp[i] = b2 * vp[i] + (T(1) - b2) * g[i] * g[i];
      p[i] -= step_size * mp[i] / (std::sqrt(vp[i]) / bc2_sqrt + eps);
    }
  });
}

}  // namespace hydra
