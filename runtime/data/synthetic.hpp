#pragma once
// Synthetic classification data for benchmarks, simulator checks and tests: inputs uniform in
// [-1, 1) from a counter-based generator (the same on every platform), labels a simple
// deterministic function of the inputs and the row, so a model can learn part of it.
#include <cstdint>

#include "runtime/data/dataset.hpp"

namespace hydra {

// `n` samples of `features` f32 inputs [n, features] and i32 labels [n] in [0, classes);
// classes must be an even number >= 2. Throws hydra::Error on bad arguments.
Dataset make_synthetic_classification(std::int64_t n, std::int64_t features, std::int64_t classes,
                                      std::uint64_t seed);

}  // namespace hydra
