// The process-wide CPU backend instance and the argument checks its kernels share.
#include "kernels/cpu/cpu_backend.hpp"

#include <cstdint>
#include <functional>
#include <string>

#include "kernels/cpu/cpu_common.hpp"

namespace hydra {

Backend& cpu_backend() {
  static CpuBackend instance;
  return instance;
}

namespace cpu {

namespace {

void check_host(const char* op, const ExecContext& ctx, std::initializer_list<const Tensor*> ts) {
  op_checks::that(ctx.device.host_accessible(), op,
                  "the CPU backend cannot compute on " + ctx.device.str());
  op_checks::on_device(op, ctx, ts);
}

// [begin, end) of a tensor's elements in memory.
struct Range {
  const char* begin;
  const char* end;
};
Range range_of(const Tensor& t) {
  const char* p = static_cast<const char*>(t.data());
  return {p, p + t.nbytes()};
}

}  // namespace

void check_floats(const char* op, const ExecContext& ctx, std::initializer_list<const Tensor*> ts) {
  check_host(op, ctx, ts);
  op_checks::dtype_in(op, **ts.begin(), {DType::f32, DType::f64});
  op_checks::same_dtype(op, ts);
}

void check_ints(const char* op, const ExecContext& ctx, const Tensor& t, const char* what) {
  check_host(op, ctx, {&t});
  op_checks::that(t.dtype() == DType::i32, op,
                  std::string(what) + " " + t.str() + " must have dtype i32");
}

void check_ids_below(const char* op, const Tensor& ids, std::int64_t bound, const char* what) {
  const std::int32_t* p = ids.data_as<std::int32_t>();
  for (std::int64_t i = 0; i < ids.numel(); ++i)
    op_checks::that(p[i] >= 0 && p[i] < bound, op,
                    std::string(what) + "[" + std::to_string(i) + "] = " + std::to_string(p[i]) +
                        " is outside [0, " + std::to_string(bound) + ")");
}

void check_disjoint(const char* op, const Tensor& a, const Tensor& b) {
  const Range ra = range_of(a), rb = range_of(b);
  const std::less<const char*> lt;
  const bool overlap = lt(ra.begin, rb.end) && lt(rb.begin, ra.end);
  op_checks::that(!overlap, op, a.str() + " and " + b.str() + " overlap in memory");
}

void check_disjoint(const char* op, const Tensor& out,
                    std::initializer_list<const Tensor*> others) {
  for (const Tensor* t : others)
    check_disjoint(op, out, *t);
}

void check_same_or_disjoint(const char* op, const Tensor& out, const Tensor& in) {
  if (out.data() == in.data() && out.dtype() == in.dtype()) return;
  check_disjoint(op, out, in);
}

std::int64_t rows_of(const char* op, const Tensor& t, std::int64_t cols, const char* what) {
  op_checks::that(cols > 0 && t.numel() % cols == 0, op,
                  std::string(what) + " " + t.str() + " cannot be viewed as rows of " +
                      std::to_string(cols) + " elements");
  return t.numel() / cols;
}

}  // namespace cpu
}  // namespace hydra
