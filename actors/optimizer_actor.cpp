#include "actors/optimizer_actor.hpp"

#include <cmath>

namespace hydra::actors {

caf::behavior optimizer_actor(caf::event_based_actor*, OptimizerConfig config) {
  auto steps = std::make_shared<std::int64_t>(0);
  return {
      [config](config_atom) { return config; },
      [config, steps](clip_atom, const std::vector<double>& squares) -> caf::result<double> {
        double total = 0;
        for (double s : squares)  // in shard order: the reduction is deterministic
          total += s;
        const double norm = std::sqrt(total);
        if (!std::isfinite(norm))
          return caf::make_error(caf::sec::runtime_error, std::string("gradient norm is ") +
                                                              (std::isnan(norm) ? "NaN" : "inf") +
                                                              " at step " +
                                                              std::to_string(*steps + 1));
        if (config.clip_grad_norm > 0 && norm > config.clip_grad_norm)
          return config.clip_grad_norm / (norm + 1e-6);  // as torch.nn.utils.clip_grad_norm_
        return 1.0;
      },
      [steps](stepped_atom) { return ++*steps; },
      [steps](stepped_atom, std::int64_t n) { *steps = n; },
  };
}

}  // namespace hydra::actors
