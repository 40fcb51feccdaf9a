#include "kernels/layers/attention.hpp"

#include <cmath>

#include "kernels/layers/common.hpp"

namespace hydra {

using namespace layer_util;

namespace {

enum Param { kQkvWeight, kQkvBias, kProjWeight, kProjBias };

// Sizes of one call, and views of the fused q/k/v tensors.
struct Dims {
  std::int64_t b, t, d, h, hd;
  std::int64_t bt() const { return b * t; }
  std::int64_t bh() const { return b * h; }
  double scale() const { return 1.0 / std::sqrt(static_cast<double>(hd)); }
  // Part i (q, k, v) of a [3, ...] tensor.
  Tensor part(const Tensor& t3, std::int64_t i) const {
    return flat_range(t3, i * bt() * d, bt() * d);
  }
  // Rows i*d .. (i+1)*d of the fused qkv weight (or entries of its bias), viewed as `shape`.
  Tensor weight_part(const Tensor& w, std::int64_t i, const Shape& shape) const {
    const std::int64_t n = shape_numel(shape);
    return flat_range(w, i * n, n).view(shape);
  }
  // Batched per-head GEMM over b * h items of T x T or T x hd matrices.
  GemmDesc heads(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k) const {
    return GemmDesc{.trans_a = ta, .trans_b = tb, .m = m, .n = n, .k = k, .batch = bh()};
  }
};

}  // namespace

CausalSelfAttention::CausalSelfAttention(std::int64_t dim, std::int64_t heads)
    : dim_(dim), heads_(heads) {
  check(dim > 0 && heads > 0 && dim % heads == 0,
        "CausalSelfAttention: dim " + std::to_string(dim) + " must be a positive multiple of " +
            "heads " + std::to_string(heads));
  add_parameter("qkv.weight", {3 * dim, dim});
  add_parameter("qkv.bias", {3 * dim});
  add_parameter("proj.weight", {dim, dim});
  add_parameter("proj.bias", {dim});
}

std::string CausalSelfAttention::name() const {
  return "CausalSelfAttention(" + std::to_string(dim_) + ", " + std::to_string(heads_) + " heads)";
}

Shape CausalSelfAttention::output_shape(const Shape& input) const {
  if (input.size() != 3 || input[2] != dim_)
    shape_error(*this, input, "expected [batch, time, " + std::to_string(dim_) + "]");
  return input;
}

Tensor CausalSelfAttention::forward(ExecContext& ctx, const Tensor& x, Stash& stash,
                                    bool training) {
  check_input(*this, ctx, x);
  begin_stash(stash, x);
  output_shape(x.shape());
  const Dims s{x.dim(0), x.dim(1), dim_, heads_, dim_ / heads_};
  const DType dt = x.dtype();
  Backend& be = ctx.backend();
  // q, k, v = x W_i^T + b_i, stored [3, B, T, H, hd], then made head-major [3, B, H, T, hd].
  Tensor qkv = empty_on(ctx, {3 * s.b, s.t, s.h, s.hd}, dt);
  for (std::int64_t i = 0; i < 3; ++i) {
    Tensor out = s.part(qkv, i);
    const Tensor bias = s.weight_part(params_[kQkvBias].value, i, {s.d});
    linear_forward(ctx, out, x, s.weight_part(params_[kQkvWeight].value, i, {s.d, s.d}), &bias);
  }
  Tensor heads = empty_on(ctx, {3 * s.b, s.h, s.t, s.hd}, dt);
  be.permute_0213(heads, qkv, ctx);
  const Tensor q = s.part(heads, 0), k = s.part(heads, 1), v = s.part(heads, 2);
  // probs = causal softmax(q k^T * scale); o = probs v, back to [B, T, H, hd] = [B, T, dim].
  Tensor scores = empty_on(ctx, {s.bh(), s.t, s.t}, dt);
  be.gemm(s.heads(false, true, s.t, s.t, s.hd), q, k, scores, ctx);
  Tensor probs = empty_on(ctx, {s.bh(), s.t, s.t}, dt);
  be.softmax_forward(probs, scores, s.scale(), true, ctx);
  Tensor o = empty_on(ctx, {s.b, s.h, s.t, s.hd}, dt);
  be.gemm(s.heads(false, false, s.t, s.hd, s.t), probs, v, o, ctx);
  Tensor concat = empty_on(ctx, {s.b, s.t, s.h, s.hd}, dt);
  be.permute_0213(concat, o, ctx);
  Tensor y = empty_on(ctx, x.shape(), dt);
  linear_forward(ctx, y, concat, params_[kProjWeight].value, &params_[kProjBias].value);
  if (training) stash.tensors = {x, heads, probs, concat};
  return y;
}

Tensor CausalSelfAttention::backward(ExecContext& ctx, const Tensor& dy, Stash& stash) {
  const Tensor& x = stashed(*this, stash, 0);
  const Tensor &heads = stashed(*this, stash, 1), &probs = stashed(*this, stash, 2),
               &concat = stashed(*this, stash, 3);
  const Dims s{x.dim(0), x.dim(1), dim_, heads_, dim_ / heads_};
  const DType dt = x.dtype();
  Backend& be = ctx.backend();
  const Tensor q = s.part(heads, 0), k = s.part(heads, 1), v = s.part(heads, 2);
  // Output projection, then back to head-major do [B, H, T, hd].
  Tensor dconcat = empty_on(ctx, {s.b, s.t, s.h, s.hd}, dt);
  linear_backward(ctx, dy, concat, params_[kProjWeight].value, params_[kProjWeight].grad,
                  &params_[kProjBias].grad, &dconcat);
  Tensor d_o = empty_on(ctx, {s.b, s.h, s.t, s.hd}, dt);
  be.permute_0213(d_o, dconcat, ctx);
  // dprobs = do v^T; dv = probs^T do; dscores = softmax'; dq = dscores k; dk = dscores^T q.
  Tensor dheads = empty_on(ctx, {3 * s.b, s.h, s.t, s.hd}, dt);
  Tensor dq = s.part(dheads, 0), dk = s.part(dheads, 1), dv = s.part(dheads, 2);
  Tensor dprobs = empty_on(ctx, {s.bh(), s.t, s.t}, dt);
  be.gemm(s.heads(false, true, s.t, s.t, s.hd), d_o, v, dprobs, ctx);
  be.gemm(s.heads(true, false, s.t, s.hd, s.t), probs, d_o, dv, ctx);
  Tensor dscores = empty_on(ctx, {s.bh(), s.t, s.t}, dt);
  be.softmax_backward(dscores, dprobs, probs, s.scale(), ctx);
  be.gemm(s.heads(false, false, s.t, s.hd, s.t), dscores, k, dq, ctx);
  be.gemm(s.heads(true, false, s.t, s.hd, s.t), dscores, q, dk, ctx);
  // Back to [3, B, T, H, hd], then through the three input projections (dx accumulates).
  Tensor dqkv = empty_on(ctx, {3 * s.b, s.t, s.h, s.hd}, dt);
  be.permute_0213(dqkv, dheads, ctx);
  Tensor dx = empty_on(ctx, x.shape(), dt);
  for (std::int64_t i = 0; i < 3; ++i) {
    Tensor dw = s.weight_part(params_[kQkvWeight].grad, i, {s.d, s.d});
    Tensor db = s.weight_part(params_[kQkvBias].grad, i, {s.d});
    linear_backward(ctx, s.part(dqkv, i), x,
                    s.weight_part(params_[kQkvWeight].value, i, {s.d, s.d}), dw, &db, &dx,
                    i == 0 ? 0.0 : 1.0);
  }
  return dx;
}

double CausalSelfAttention::forward_flops(const Shape& input) const {
  output_shape(input);
  const double bt = static_cast<double>(input[0] * input[1]), t = static_cast<double>(input[1]),
               d = static_cast<double>(dim_);
  const double projections = bt * 4.0 * d * (2.0 * d + 1.0);  // qkv (3) and output (1)
  const double attention = bt * t * (4.0 * d + 5.0 * static_cast<double>(heads_));
  return projections + attention;  // scores + probs v (2 * 2 t d per row), softmax ~5 per score
}

std::size_t CausalSelfAttention::stash_bytes(const Shape& input, DType dtype) const {
  output_shape(input);
  const std::int64_t btd = shape_numel(input);
  return bytes_of(5 * btd + input[0] * heads_ * input[1] * input[1], dtype);
}

void CausalSelfAttention::reset_parameters(std::uint64_t seed) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(dim_));
  for (std::size_t i = 0; i < params_.size(); ++i)
    init_uniform(params_[i], bound, derive_seed(seed, i));
}

}  // namespace hydra
