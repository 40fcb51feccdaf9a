#include "kernels/optim/optimizer.hpp"

namespace hydra {

std::int64_t Optimizer::begin_update(const std::string& optimizer, Parameter& p, std::size_t slots,
                                     ExecContext& ctx) {
  const std::string what = optimizer + ": parameter '" + p.name + "' ";
  check(p.value.defined() && p.grad.defined(), what + "has no value or grad");
  check(p.grad.shape() == p.value.shape() && p.grad.dtype() == p.value.dtype() &&
            p.grad.device() == p.value.device(),
        what + "grad " + p.grad.str() + " does not match value " + p.value.str());
  if (p.state.empty())
    for (std::size_t i = 0; i < slots; ++i)
      p.state.push_back(
          Tensor::zeros(p.value.shape(), p.value.dtype(), p.value.device(), ctx.stream));
  check(p.state.size() == slots, what + "has " + std::to_string(p.state.size()) +
                                     " state tensors, expected " + std::to_string(slots) +
                                     " (state of another optimizer?)");
  for (const Tensor& s : p.state)
    check(s.shape() == p.value.shape() && s.dtype() == p.value.dtype() &&
              s.device() == p.value.device(),
          what + "state " + s.str() + " does not match value " + p.value.str());
  return p.step + 1;
}

}  // namespace hydra
