// Elementwise ops and data movement: fill, convert, add, mul, axpy, scale, permute_0213.
#include "kernels/cuda/cuda_common.cuh"

namespace hydra::cuda_impl {
namespace {

struct FillF32 {
  float* x;
  float v;
  __device__ void operator()(std::int64_t i) const { x[i] = v; }
};
struct FillBf16 {
  __nv_bfloat16* x;
  __nv_bfloat16 v;
  __device__ void operator()(std::int64_t i) const { x[i] = v; }
};
struct F32ToBf16 {
  __nv_bfloat16* dst;
  const float* src;
  __device__ void operator()(std::int64_t i) const { dst[i] = __float2bfloat16_rn(src[i]); }
};
struct Bf16ToF32 {
  float* dst;
  const __nv_bfloat16* src;
  __device__ void operator()(std::int64_t i) const { dst[i] = __bfloat162float(src[i]); }
};
struct Add {
  float* out;
  const float *a, *b;
  __device__ void operator()(std::int64_t i) const { out[i] = a[i] + b[i]; }
};
struct Mul {
  float* out;
  const float *a, *b;
  __device__ void operator()(std::int64_t i) const { out[i] = a[i] * b[i]; }
};
struct Axpy {
  float* y;
  const float* x;
  float alpha;
  __device__ void operator()(std::int64_t i) const { y[i] += alpha * x[i]; }
};
struct Scale {
  float* x;
  float alpha;
  __device__ void operator()(std::int64_t i) const { x[i] *= alpha; }
};
// out[a, c, b, d] = in[a, b, c, d]; i indexes out.
struct Permute0213 {
  float* out;
  const float* in;
  std::int64_t B, C, D;
  __device__ void operator()(std::int64_t i) const {
    const std::int64_t d = i % D;
    std::int64_t r = i / D;
    const std::int64_t b = r % B;
    r /= B;
    const std::int64_t c = r % C;
    const std::int64_t a = r / C;
    out[i] = in[((a * B + b) * C + c) * D + d];
  }
};

}  // namespace

void CudaBackend::fill(Tensor& x, double value, ExecContext& ctx) {
  const char* op = "fill";
  cudaStream_t s = begin(op, ctx, {&x});
  op_checks::dtype_in(op, x, {DType::f32, DType::bf16});
  if (x.dtype() == DType::f32)
    launch_for_each(x.numel(), s, op, FillF32{f32(x), static_cast<float>(value)});
  else
    launch_for_each(x.numel(), s, op,
                    FillBf16{static_cast<__nv_bfloat16*>(x.data()),
                             __float2bfloat16_rn(static_cast<float>(value))});
}

void CudaBackend::convert(Tensor& dst, const Tensor& src, ExecContext& ctx) {
  const char* op = "convert";
  cudaStream_t s = begin(op, ctx, {&dst, &src});
  op_checks::dtype_in(op, dst, {DType::f32, DType::bf16});
  op_checks::dtype_in(op, src, {DType::f32, DType::bf16});
  op_checks::same_numel(op, dst, src);
  check_same_or_disjoint(op, dst, src);
  const std::int64_t n = src.numel();
  if (n == 0) return;
  if (dst.dtype() == src.dtype()) {
    if (dst.data() != src.data())
      check_cuda(cudaMemcpyAsync(dst.data(), src.data(), src.nbytes(), cudaMemcpyDeviceToDevice, s),
                 "convert: cudaMemcpyAsync");
  } else if (dst.dtype() == DType::bf16) {
    launch_for_each(n, s, op, F32ToBf16{static_cast<__nv_bfloat16*>(dst.data()), f32(src)});
  } else {
    launch_for_each(n, s, op, Bf16ToF32{f32(dst), static_cast<const __nv_bfloat16*>(src.data())});
  }
}

void CudaBackend::add(Tensor& out, const Tensor& a, const Tensor& b, ExecContext& ctx) {
  const char* op = "add";
  cudaStream_t s = begin_f32(op, ctx, {&out, &a, &b});
  op_checks::same_numel(op, a, b);
  op_checks::same_numel(op, out, a);
  launch_for_each(out.numel(), s, op, Add{f32(out), f32(a), f32(b)});
}

void CudaBackend::mul(Tensor& out, const Tensor& a, const Tensor& b, ExecContext& ctx) {
  const char* op = "mul";
  cudaStream_t s = begin_f32(op, ctx, {&out, &a, &b});
  op_checks::same_numel(op, a, b);
  op_checks::same_numel(op, out, a);
  launch_for_each(out.numel(), s, op, Mul{f32(out), f32(a), f32(b)});
}

void CudaBackend::axpy(Tensor& y, double alpha, const Tensor& x, ExecContext& ctx) {
  const char* op = "axpy";
  cudaStream_t s = begin_f32(op, ctx, {&y, &x});
  op_checks::same_numel(op, y, x);
  launch_for_each(y.numel(), s, op, Axpy{f32(y), f32(x), static_cast<float>(alpha)});
}

void CudaBackend::scale(Tensor& x, double alpha, ExecContext& ctx) {
  const char* op = "scale";
  cudaStream_t s = begin_f32(op, ctx, {&x});
  launch_for_each(x.numel(), s, op, Scale{f32(x), static_cast<float>(alpha)});
}

void CudaBackend::permute_0213(Tensor& out, const Tensor& in, ExecContext& ctx) {
  const char* op = "permute_0213";
  cudaStream_t s = begin_f32(op, ctx, {&out, &in});
  op_checks::that(in.rank() == 4, op, "input " + in.str() + " must be 4-d");
  const std::int64_t A = in.dim(0), B = in.dim(1), C = in.dim(2), D = in.dim(3);
  op_checks::same_numel(op, out, in);
  if (out.rank() == 4)
    op_checks::that(out.shape() == Shape{A, C, B, D}, op,
                    "output " + out.str() + " should have shape " + shape_str({A, C, B, D}));
  check_disjoint(op, out, in);
  launch_for_each(out.numel(), s, op, Permute0213{f32(out), f32(in), B, C, D});
}

}  // namespace hydra::cuda_impl
