#include "runtime/sweep/json_number.hpp"

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "kernels/core/error.hpp"

namespace hydra::sweep {

nlohmann::json json_number(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  return x;
}

double from_json_number(const nlohmann::json& v) {
  if (v.is_number()) return v.get<double>();
  const std::string s = v.get<std::string>();
  if (s == "nan") return std::nan("");
  if (s == "inf") return HUGE_VAL;
  if (s == "-inf") return -HUGE_VAL;
  throw Error("not a number: " + s);
}

}  // namespace hydra::sweep
