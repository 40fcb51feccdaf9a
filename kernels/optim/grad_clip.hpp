#pragma once
#include <vector>

#include "kernels/exec_context.hpp"
#include "kernels/parameter.hpp"

namespace hydra {

// Scales all grads by max_norm / (norm + 1e-6) when their global L2 norm exceeds max_norm (as
// torch.nn.utils.clip_grad_norm_). Returns the norm before clipping; throws hydra::Error when it
// is NaN or inf. Grads must be on ctx.device.
double clip_grad_norm(const std::vector<Parameter*>& params, double max_norm, ExecContext& ctx);

}  // namespace hydra
