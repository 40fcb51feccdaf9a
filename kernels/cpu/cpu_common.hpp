#pragma once
// Helpers shared by the CPU backend's kernels: argument checks, dtype dispatch and elementwise
// loops. Internal to kernels/cpu.
#include <cstdint>
#include <initializer_list>

#include "kernels/core/tensor.hpp"
#include "kernels/exec_context.hpp"
#include "kernels/op_checks.hpp"

namespace hydra::cpu {

// Every tensor is defined, contiguous and usable by the CPU (ctx is a host-side context), and
// all share one floating dtype, f32 or f64.
void check_floats(const char* op, const ExecContext& ctx, std::initializer_list<const Tensor*> ts);
// `t` is a defined, contiguous, host-accessible i32 tensor.
void check_ints(const char* op, const ExecContext& ctx, const Tensor& t, const char* what);
// Every id in `ids` (i32) lies in [0, bound); throws naming the first offending position.
void check_ids_below(const char* op, const Tensor& ids, std::int64_t bound, const char* what);
// The memory of `a` and `b` does not overlap (for outputs that must not alias an input).
void check_disjoint(const char* op, const Tensor& a, const Tensor& b);
// The memory of `out` overlaps none of `others`.
void check_disjoint(const char* op, const Tensor& out, std::initializer_list<const Tensor*> others);
// `in` is either the very same memory as `out` (in-place) or does not overlap it.
void check_same_or_disjoint(const char* op, const Tensor& out, const Tensor& in);
// Rows of `t` viewed as [rows, cols]: throws unless cols > 0 divides t.numel().
std::int64_t rows_of(const char* op, const Tensor& t, std::int64_t cols, const char* what);

// Calls f(T{}) with T = float or double, the type of t's (already checked) floating dtype.
template <class F>
decltype(auto) dispatch(const Tensor& t, F&& f) {
  if (t.dtype() == DType::f64) return f(double{});
  return f(float{});
}

// out[i] = f(in[i]...) for every element: checks devices, a shared float dtype, equal sizes and
// that every input is either `out` itself or disjoint from it. f is called with values of type
// T and its result converted to T.
template <class F, class... In>
void map_floats(const char* op, const ExecContext& ctx, Tensor& out, F f, const In&... in) {
  check_floats(op, ctx, {&out, &in...});
  (op_checks::same_numel(op, out, in), ...);
  (check_same_or_disjoint(op, out, in), ...);
  dispatch(out, [&](auto tag) {
    using T = decltype(tag);
    T* o = out.data_as<T>();
    const std::int64_t n = out.numel();
    [&](const auto*... p) {
      for (std::int64_t i = 0; i < n; ++i)
        o[i] = static_cast<T>(f(p[i]...));
    }(in.template data_as<T>()...);
  });
}

}  // namespace hydra::cpu
