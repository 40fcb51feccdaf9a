#include "runtime/duration_format.hpp"

#include <cmath>
#include <cstdio>

namespace hydra {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "-";
  char buf[64];
  if (seconds < 10) {
    std::snprintf(buf, sizeof buf, "%.2f s", seconds);
  } else if (seconds < 60) {
    std::snprintf(buf, sizeof buf, "%.1f s", seconds);
  } else {
    const auto total = static_cast<long long>(std::llround(seconds));
    const long long h = total / 3600, m = total / 60 % 60, s = total % 60;
    if (h > 0)
      std::snprintf(buf, sizeof buf, "%lldh %02lldm %02llds", h, m, s);
    else
      std::snprintf(buf, sizeof buf, "%lldm %02llds", m, s);
  }
  return buf;
}

}  // namespace hydra
