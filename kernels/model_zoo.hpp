#pragma once
// Ready-made models. Call init(seed) (and to(device)) before use.
#include <cstdint>
#include <vector>

#include "kernels/model.hpp"

namespace hydra {

// Flatten, then (Linear, ReLU[, Dropout]) per hidden size, then Linear to `classes`.
// Input [N, in] or [N, ...] with prod(...) = in.
Model make_mlp(std::int64_t in, std::vector<std::int64_t> hidden, std::int64_t classes,
               double dropout = 0.0);
// LeNet-like CNN for [N, channels, image, image] (default MNIST 1x28x28): Conv(5x5, pad 2)
// 6 ch, ReLU, MaxPool 2; Conv(5x5) 16 ch, ReLU, MaxPool 2; Flatten; Linear to `classes`.
Model make_cnn(std::int64_t channels = 1, std::int64_t image = 28, std::int64_t classes = 10);
// GPT: TokenEmbedding, PositionEmbedding, `layers` pre-LN blocks (two layers each), final
// LayerNorm and Linear to the vocabulary. Input i32 ids [B, T] (T <= max_len); output logits
// [B, T, vocab].
Model make_gpt(std::int64_t vocab, std::int64_t max_len, std::int64_t dim, std::int64_t heads,
               std::int64_t layers);

}  // namespace hydra
