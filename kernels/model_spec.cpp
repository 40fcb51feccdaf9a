#include "kernels/model_spec.hpp"

#include <cerrno>
#include <cstdlib>
#include <sstream>
#include <vector>

#include "kernels/core/error.hpp"
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

}  // namespace

Model make_model_from_spec(const std::string& spec) {
  std::istringstream in(spec);
  std::vector<std::string> tok;
  for (std::string t; in >> t;)
    tok.push_back(t);
  const std::string forms =
      "expected 'mlp IN H1,H2,... CLASSES', 'cnn CHANNELS IMAGE CLASSES' or 'gpt VOCAB MAX_LEN DIM "
      "HEADS LAYERS'";
  if (tok.empty()) throw Error("model spec '" + spec + "' is empty: " + forms);
  const std::string& kind = tok[0];
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
