#include "kernels/model_spec.hpp"

#include <cerrno>
#include <cstdlib>
#include <sstream>
#include <vector>

#include "kernels/core/error.hpp"
#include "kernels/layers/conv2d.hpp"
#include "kernels/layers/flatten.hpp"
#include "kernels/layers/gelu.hpp"
#include "kernels/layers/layernorm.hpp"
#include "kernels/layers/linear.hpp"
#include "kernels/layers/maxpool.hpp"
#include "kernels/layers/relu.hpp"
#include "kernels/model_zoo.hpp"

namespace hydra {

namespace {

std::int64_t positive(const std::string& spec, const std::string& what, const std::string& v) {
  errno = 0;
  char* end = nullptr;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno == ERANGE || x <= 0 || x >= (1LL << 31))
    throw Error("model spec '" + spec + "': " + what +
                " must be a positive integer below 2^31, got '" + v + "'");
  return x;
}

std::vector<std::string> tokens(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> tok;
  for (std::string t; in >> t;)
    tok.push_back(t);
  return tok;
}

// "layers L1; L2; ...": one layer per ';'-separated part.
Model layer_list(const std::string& spec, const std::string& body) {
  const std::string forms =
      "expected one of 'linear IN OUT', 'conv2d IN OUT KERNEL STRIDE PAD', 'maxpool2d WINDOW', "
      "'relu', 'gelu', 'flatten', 'layernorm DIM'";
  Model m;
  std::stringstream parts(body);
  for (std::string part; std::getline(parts, part, ';');) {
    const std::vector<std::string> t = tokens(part);
    const std::string kind = t.empty() ? "" : t[0];
    auto n = [&](std::size_t i, const char* what) { return positive(spec, what, t[i]); };
    if (kind == "linear" && t.size() == 3) {
      m.emplace<Linear>(n(1, "IN"), n(2, "OUT"));
    } else if (kind == "conv2d" && t.size() == 6) {
      const std::int64_t pad = t[5] == "0" ? 0 : n(5, "PAD");
      m.emplace<Conv2d>(n(1, "IN"), n(2, "OUT"), n(3, "KERNEL"), n(4, "STRIDE"), pad);
    } else if (kind == "maxpool2d" && t.size() == 2) {
      m.emplace<MaxPool2d>(n(1, "WINDOW"));
    } else if (kind == "relu" && t.size() == 1) {
      m.emplace<ReLU>();
    } else if (kind == "gelu" && t.size() == 1) {
      m.emplace<GELU>();
    } else if (kind == "flatten" && t.size() == 1) {
      m.emplace<Flatten>();
    } else if (kind == "layernorm" && t.size() == 2) {
      m.emplace<LayerNorm>(n(1, "DIM"));
    } else {
      throw Error("model spec '" + spec + "': layer '" + part + "': " + forms);
    }
  }
  check(m.size() > 0, "model spec '" + spec + "' lists no layers");
  return m;
}

}  // namespace

Model make_model_from_spec(const std::string& spec) {
  const std::vector<std::string> tok = tokens(spec);
  const std::string forms =
      "expected 'mlp IN H1,H2,... CLASSES', 'cnn CHANNELS IMAGE CLASSES', 'gpt VOCAB MAX_LEN DIM "
      "HEADS LAYERS' or 'layers L1; L2; ...'";
  if (tok.empty()) throw Error("model spec '" + spec + "' is empty: " + forms);
  const std::string& kind = tok[0];
  if (kind == "layers") return layer_list(spec, spec.substr(spec.find("layers") + 6));
  if (kind == "mlp" && tok.size() == 4) {
    std::vector<std::int64_t> hidden;
    if (tok[2] != "-") {
      std::stringstream h(tok[2]);
      for (std::string v; std::getline(h, v, ',');)
        hidden.push_back(positive(spec, "hidden size", v));
    }
    return make_mlp(positive(spec, "IN", tok[1]), hidden, positive(spec, "CLASSES", tok[3]));
  }
  if (kind == "cnn" && tok.size() == 4)
    return make_cnn(positive(spec, "CHANNELS", tok[1]), positive(spec, "IMAGE", tok[2]),
                    positive(spec, "CLASSES", tok[3]));
  if (kind == "gpt" && tok.size() == 6)
    return make_gpt(positive(spec, "VOCAB", tok[1]), positive(spec, "MAX_LEN", tok[2]),
                    positive(spec, "DIM", tok[3]), positive(spec, "HEADS", tok[4]),
                    positive(spec, "LAYERS", tok[5]));
  throw Error("model spec '" + spec + "': " + forms);
}

}  // namespace hydra
