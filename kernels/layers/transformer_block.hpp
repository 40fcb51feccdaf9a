#pragma once
#include <vector>

#include "kernels/layer.hpp"

namespace hydra {

// A pre-LN GPT block on [B, T, dim] as two layers (so a model can be cut between them):
//   Residual(LayerNorm, CausalSelfAttention), Residual(LayerNorm, Linear(dim->4 dim), GELU,
//   Linear(4 dim->dim)).
std::vector<LayerPtr> make_transformer_block(std::int64_t dim, std::int64_t heads);

}  // namespace hydra
