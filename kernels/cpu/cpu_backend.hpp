#pragma once
// The CPU backend: OpenBLAS for GEMM and convolution (im2col + GEMM), plain loops elsewhere.
// Works on host, pinned and cpu:N tensors; computes in f32 or f64 (i32 for ids and labels).
// The op implementations are grouped by concept in kernels/cpu/cpu_*.cpp.
#include "kernels/backend.hpp"

namespace hydra {

class CpuBackend final : public Backend {
 public:
  const char* name() const override { return "cpu"; }

  void fill(Tensor& x, double value, ExecContext& ctx) override;
  void convert(Tensor& dst, const Tensor& src, ExecContext& ctx) override;
  void add(Tensor& out, const Tensor& a, const Tensor& b, ExecContext& ctx) override;
  void mul(Tensor& out, const Tensor& a, const Tensor& b, ExecContext& ctx) override;
  void axpy(Tensor& y, double alpha, const Tensor& x, ExecContext& ctx) override;
  void scale(Tensor& x, double alpha, ExecContext& ctx) override;
  double sum(const Tensor& x, ExecContext& ctx) override;
  double sum_squares(const Tensor& x, ExecContext& ctx) override;
  void permute_0213(Tensor& out, const Tensor& in, ExecContext& ctx) override;

  void gemm(const GemmDesc& d, const Tensor& a, const Tensor& b, Tensor& c,
            ExecContext& ctx) override;
  void add_bias(Tensor& y, const Tensor& bias, ExecContext& ctx) override;
  void bias_grad(Tensor& dbias, const Tensor& dy, ExecContext& ctx) override;

  void relu_forward(Tensor& y, const Tensor& x, ExecContext& ctx) override;
  void relu_backward(Tensor& dx, const Tensor& dy, const Tensor& x, ExecContext& ctx) override;
  void gelu_forward(Tensor& y, const Tensor& x, ExecContext& ctx) override;
  void gelu_backward(Tensor& dx, const Tensor& dy, const Tensor& x, ExecContext& ctx) override;
  void dropout_forward(Tensor& y, Tensor& mask, const Tensor& x, double p, std::uint64_t seed,
                       ExecContext& ctx) override;

  void layernorm_forward(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x,
                         const Tensor& gamma, const Tensor& beta, double eps,
                         ExecContext& ctx) override;
  void layernorm_backward(Tensor& dx, Tensor& dgamma, Tensor& dbeta, const Tensor& dy,
                          const Tensor& x, const Tensor& mean, const Tensor& rstd,
                          const Tensor& gamma, ExecContext& ctx) override;

  void embedding_forward(Tensor& out, const Tensor& ids, const Tensor& table,
                         ExecContext& ctx) override;
  void embedding_backward(Tensor& dtable, const Tensor& dout, const Tensor& ids,
                          ExecContext& ctx) override;

  void softmax_forward(Tensor& y, const Tensor& x, double scale, bool causal,
                       ExecContext& ctx) override;
  void softmax_backward(Tensor& dx, const Tensor& dy, const Tensor& y, double scale,
                        ExecContext& ctx) override;

  void cross_entropy_forward(Tensor& losses, Tensor& probs, const Tensor& logits,
                             const Tensor& labels, ExecContext& ctx) override;
  void cross_entropy_backward(Tensor& dlogits, const Tensor& probs, const Tensor& labels,
                              double scale, ExecContext& ctx) override;
  void argmax_rows(Tensor& out, const Tensor& x, ExecContext& ctx) override;

  void conv2d_forward(Tensor& y, const Tensor& x, const Tensor& w, const Conv2dDesc& d,
                      ExecContext& ctx) override;
  void conv2d_backward_data(Tensor& dx, const Tensor& dy, const Tensor& w, const Conv2dDesc& d,
                            ExecContext& ctx) override;
  void conv2d_backward_filter(Tensor& dw, const Tensor& dy, const Tensor& x, const Conv2dDesc& d,
                              ExecContext& ctx) override;
  void add_channel_bias(Tensor& y, const Tensor& bias, ExecContext& ctx) override;
  void channel_bias_grad(Tensor& dbias, const Tensor& dy, ExecContext& ctx) override;
  void maxpool2d_forward(Tensor& y, const Tensor& x, const Pool2dDesc& d,
                         ExecContext& ctx) override;
  void maxpool2d_backward(Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& y,
                          const Pool2dDesc& d, ExecContext& ctx) override;

  void sgd_step(Tensor& param, const Tensor& grad, Tensor& momentum_buf, const SgdStep& s,
                ExecContext& ctx) override;
  void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& s,
                  ExecContext& ctx) override;
};

}  // namespace hydra
