#include "kernels/model_zoo.hpp"

#include "kernels/layers/all.hpp"

namespace hydra {

Model make_mlp(std::int64_t in, std::vector<std::int64_t> hidden, std::int64_t classes,
               double dropout) {
  Model m;
  m.emplace<Flatten>();
  std::int64_t width = in;
  for (std::size_t i = 0; i < hidden.size(); ++i) {
    m.emplace<Linear>(width, hidden[i]).emplace<ReLU>();
    if (dropout > 0) m.emplace<Dropout>(dropout, i);
    width = hidden[i];
  }
  m.emplace<Linear>(width, classes);
  return m;
}

Model make_cnn(std::int64_t channels, std::int64_t image, std::int64_t classes) {
  Model m;
  m.emplace<Conv2d>(channels, 6, 5, 1, 2).emplace<ReLU>().emplace<MaxPool2d>(2);
  m.emplace<Conv2d>(6, 16, 5).emplace<ReLU>().emplace<MaxPool2d>(2).emplace<Flatten>();
  const Shape features = m.output_shape({1, channels, image, image});
  m.emplace<Linear>(features[1], classes);
  return m;
}

Model make_gpt(std::int64_t vocab, std::int64_t max_len, std::int64_t dim, std::int64_t heads,
               std::int64_t layers) {
  Model m;
  m.emplace<TokenEmbedding>(vocab, dim).emplace<PositionEmbedding>(max_len, dim);
  for (std::int64_t i = 0; i < layers; ++i)
    for (LayerPtr& l : make_transformer_block(dim, heads))
      m.add(std::move(l));
  m.emplace<LayerNorm>(dim).emplace<Linear>(dim, vocab);
  return m;
}

}  // namespace hydra
