#include "runtime/data/synthetic.hpp"

#include <vector>

#include "kernels/core/error.hpp"
#include "kernels/random.hpp"

namespace hydra {

Dataset make_synthetic_classification(std::int64_t n, std::int64_t features, std::int64_t classes,
                                      std::uint64_t seed) {
  check(n > 0 && features > 0 && classes >= 2 && classes % 2 == 0,
        "make_synthetic_classification: need n > 0, features > 0 and an even number of classes "
        ">= 2 (got n " +
            std::to_string(n) + ", features " + std::to_string(features) + ", classes " +
            std::to_string(classes) + ")");
  std::vector<float> x(static_cast<std::size_t>(n * features));
  for (std::size_t i = 0; i < x.size(); ++i)
    x[i] = 2.0f * uniform01(seed, i) - 1.0f;
  std::vector<std::int32_t> y(static_cast<std::size_t>(n));
  for (std::int64_t r = 0; r < n; ++r)
    y[static_cast<std::size_t>(r)] = static_cast<std::int32_t>(
        (x[static_cast<std::size_t>(r * features)] > 0 ? 1 : 0) + (r % (classes / 2)) * 2);
  return Dataset(Tensor::from_vector(x, {n, features}), Tensor::from_ints(y, {n}));
}

}  // namespace hydra
