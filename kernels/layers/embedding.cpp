#include "kernels/layers/embedding.hpp"

#include "kernels/layers/common.hpp"

namespace hydra {

using namespace layer_util;

namespace {
constexpr double kEmbeddingStd = 0.02;
}

TokenEmbedding::TokenEmbedding(std::int64_t vocab, std::int64_t dim) : vocab_(vocab), dim_(dim) {
  check(vocab > 0 && dim > 0, "TokenEmbedding: vocab and dim must be positive");
  add_parameter("weight", {vocab, dim});
}

std::string TokenEmbedding::name() const {
  return "TokenEmbedding(" + std::to_string(vocab_) + ", " + std::to_string(dim_) + ")";
}

Shape TokenEmbedding::output_shape(const Shape& input) const {
  if (input.empty()) shape_error(*this, input, "expected ids of rank >= 1");
  Shape out = input;
  out.push_back(dim_);
  return out;
}

Tensor TokenEmbedding::forward(ExecContext& ctx, const Tensor& ids, Stash& stash, bool training) {
  if (!ids.defined() || ids.dtype() != DType::i32)
    throw Error(name() + ": ids must be an i32 tensor, got " + ids.str());
  begin_stash(stash, ids);
  const Shape out_shape = output_shape(ids.shape());
  if (ids.device().host_accessible()) {
    const Tensor h = ids.contiguous();
    const std::int32_t* p = h.data_as<std::int32_t>();
    for (std::int64_t i = 0; i < h.numel(); ++i)
      if (p[i] < 0 || p[i] >= vocab_)
        throw Error(name() + ": token id " + std::to_string(p[i]) + " at position " +
                    std::to_string(i) + " is outside [0, " + std::to_string(vocab_) + ")");
  }
  const Tensor& table = params_[0].value;
  Tensor y = empty_on(ctx, out_shape, table.dtype());
  ctx.backend().embedding_forward(y, ids, table, ctx);
  if (training) stash.tensors = {ids};
  return y;
}

Tensor TokenEmbedding::backward(ExecContext& ctx, const Tensor& dy, Stash& stash) {
  ctx.backend().embedding_backward(params_[0].grad, dy, stashed(*this, stash, 0), ctx);
  return Tensor();
}

std::size_t TokenEmbedding::stash_bytes(const Shape& input, DType) const {
  return bytes_of(shape_numel(input), DType::i32);
}

void TokenEmbedding::reset_parameters(std::uint64_t seed) {
  init_normal(params_[0], kEmbeddingStd, derive_seed(seed, 0));
}

PositionEmbedding::PositionEmbedding(std::int64_t max_len, std::int64_t dim)
    : max_len_(max_len), dim_(dim) {
  check(max_len > 0 && dim > 0, "PositionEmbedding: max_len and dim must be positive");
  add_parameter("weight", {max_len, dim});
}

std::string PositionEmbedding::name() const {
  return "PositionEmbedding(" + std::to_string(max_len_) + ", " + std::to_string(dim_) + ")";
}

Shape PositionEmbedding::output_shape(const Shape& input) const {
  if (input.size() != 3 || input[2] != dim_)
    shape_error(*this, input, "expected [batch, time, " + std::to_string(dim_) + "]");
  if (input[1] > max_len_)
    shape_error(*this, input,
                "sequence length " + std::to_string(input[1]) + " exceeds max_len " +
                    std::to_string(max_len_));
  return input;
}

Tensor PositionEmbedding::forward(ExecContext& ctx, const Tensor& x, Stash& stash, bool) {
  check_input(*this, ctx, x);
  begin_stash(stash, x);
  output_shape(x.shape());
  const std::int64_t b = x.dim(0), td = x.dim(1) * dim_;
  Tensor y = x.clone(ctx.stream);
  Tensor rows = y.view({b, td});
  ctx.backend().add_bias(rows, flat_range(params_[0].value, 0, td), ctx);
  return y;
}

Tensor PositionEmbedding::backward(ExecContext& ctx, const Tensor& dy, Stash& stash) {
  const std::int64_t td = stash.input_shape.at(1) * dim_;
  Tensor dpos = flat_range(params_[0].grad, 0, td);
  ctx.backend().bias_grad(dpos, dy.view({-1, td}), ctx);
  return dy;
}

double PositionEmbedding::forward_flops(const Shape& input) const {
  return static_cast<double>(shape_numel(output_shape(input)));
}

void PositionEmbedding::reset_parameters(std::uint64_t seed) {
  init_normal(params_[0], kEmbeddingStd, derive_seed(seed, 0));
}

}  // namespace hydra
