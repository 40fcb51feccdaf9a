#pragma once
// Argument checks shared by every backend: each throws hydra::Error naming the op and tensors.
#include <initializer_list>
#include <string>

#include "kernels/core/tensor.hpp"
#include "kernels/exec_context.hpp"

namespace hydra::op_checks {

// Every tensor is defined, contiguous and on ctx.device.
void on_device(const char* op, const ExecContext& ctx, std::initializer_list<const Tensor*> ts);
// All tensors have the dtype of the first one.
void same_dtype(const char* op, std::initializer_list<const Tensor*> ts);
// The tensor's dtype is one of `allowed`.
void dtype_in(const char* op, const Tensor& t, std::initializer_list<DType> allowed);
void same_numel(const char* op, const Tensor& a, const Tensor& b);
void same_shape(const char* op, const Tensor& a, const Tensor& b);
// t.numel() == expected.
void numel_is(const char* op, const Tensor& t, std::int64_t expected, const char* what);
// Generic condition with a message.
void that(bool ok, const char* op, const std::string& message);

}  // namespace hydra::op_checks
