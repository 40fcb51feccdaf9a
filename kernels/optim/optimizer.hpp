#pragma once
// Optimizers update a Parameter in place using the state stored in the parameter itself.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/exec_context.hpp"
#include "kernels/parameter.hpp"

namespace hydra {

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual std::string name() const = 0;
  // Applies one update to `p` (creating its state on the first call) and increments p.step.
  virtual void update(Parameter& p, ExecContext& ctx) = 0;
  void step(const std::vector<Parameter*>& params, ExecContext& ctx) {
    for (auto* p : params)
      update(*p, ctx);
  }
  double lr = 0;

 protected:
  // Checks p's grad against its value, creates `slots` zero state tensors (value's shape, dtype
  // and device) when p has none yet, checks existing ones, and returns p.step + 1.
  static std::int64_t begin_update(const std::string& optimizer, Parameter& p, std::size_t slots,
                                   ExecContext& ctx);
};

using OptimizerPtr = std::unique_ptr<Optimizer>;

}  // namespace hydra
