#pragma once
// Softmax cross-entropy over the last dimension; logits [..., classes], labels i32 [...].
#include <cstdint>

#include "kernels/exec_context.hpp"
#include "kernels/core/tensor.hpp"

namespace hydra {

struct LossResult {
  double loss = 0;            // mean over all rows
  std::int64_t correct = 0;   // rows whose argmax equals the label
  std::int64_t count = 0;     // rows
  Tensor dlogits;             // d(mean loss)/d(logits), same shape as logits
};

// Throws hydra::Error on shape mismatch, label out of range, or a non-finite loss
// ("loss is NaN/inf").
LossResult softmax_cross_entropy(ExecContext& ctx, const Tensor& logits, const Tensor& labels,
                                 bool with_grad = true);

}  // namespace hydra
