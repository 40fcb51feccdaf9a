#include "kernels/layers/transformer_block.hpp"

#include "kernels/layers/all.hpp"

namespace hydra {

std::vector<LayerPtr> make_transformer_block(std::int64_t dim, std::int64_t heads) {
  return make_layers(
      std::make_unique<Residual>(make_layers(std::make_unique<LayerNorm>(dim),
                                             std::make_unique<CausalSelfAttention>(dim, heads))),
      std::make_unique<Residual>(
          make_layers(std::make_unique<LayerNorm>(dim), std::make_unique<Linear>(dim, 4 * dim),
                      std::make_unique<GELU>(), std::make_unique<Linear>(4 * dim, dim))));
}

}  // namespace hydra
