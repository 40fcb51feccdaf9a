#pragma once
// The median of a sample (the mean of the two middle values for an even count; 0 when empty).
#include <algorithm>
#include <cstddef>
#include <vector>

namespace hydra {

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace hydra
