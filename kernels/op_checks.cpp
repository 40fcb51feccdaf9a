#include "kernels/op_checks.hpp"

namespace hydra::op_checks {

void that(bool ok, const char* op, const std::string& message) {
  if (!ok) throw Error(std::string(op) + ": " + message);
}

void on_device(const char* op, const ExecContext& ctx, std::initializer_list<const Tensor*> ts) {
  int i = 0;
  for (const Tensor* t : ts) {
    that(t->defined(), op, "argument " + std::to_string(i) + " is undefined");
    that(t->is_contiguous(), op, "argument " + std::to_string(i) + " " + t->str() +
                                     " is not contiguous");
    const bool ok = t->device() == ctx.device ||
                    (!ctx.device.is_cuda() && t->device().host_accessible());
    that(ok, op, "argument " + std::to_string(i) + " " + t->str() + " is not on " +
                     ctx.device.str());
    ++i;
  }
}

void same_dtype(const char* op, std::initializer_list<const Tensor*> ts) {
  const Tensor* first = *ts.begin();
  for (const Tensor* t : ts)
    that(t->dtype() == first->dtype(), op,
         "mixed dtypes: " + first->str() + " and " + t->str());
}

void dtype_in(const char* op, const Tensor& t, std::initializer_list<DType> allowed) {
  for (DType d : allowed)
    if (t.dtype() == d) return;
  std::string names;
  for (DType d : allowed) names += std::string(names.empty() ? "" : ", ") + dtype_name(d);
  that(false, op, t.str() + " has an unsupported dtype (allowed: " + names + ")");
}

void same_numel(const char* op, const Tensor& a, const Tensor& b) {
  that(a.numel() == b.numel(), op, a.str() + " and " + b.str() + " differ in size");
}

void same_shape(const char* op, const Tensor& a, const Tensor& b) {
  that(a.shape() == b.shape(), op, a.str() + " and " + b.str() + " differ in shape");
}

void numel_is(const char* op, const Tensor& t, std::int64_t expected, const char* what) {
  that(t.numel() == expected, op,
       std::string(what) + " " + t.str() + " should have " + std::to_string(expected) +
           " elements");
}

}  // namespace hydra::op_checks
