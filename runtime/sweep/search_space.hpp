#pragma once
// The configurations of a sweep: the grid (every combination of the listed values, in a fixed
// order) or `search.trials` seeded random samples (lists sampled uniformly, ranges uniformly or
// log-uniformly). The same sweep file always gives the same trials.
//
//   for (const Trial& t : expand_search_space(parse_sweep_file(path))) ... t.name, t.config()
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/sweep/sweep_file.hpp"

namespace hydra::sweep {

struct Trial {
  std::string name;    // e.g. "mlp-w256-d2-adamw-lr0.001-b128"; random: "t03-" in front
  std::string family;  // "mlp", "cnn", "gpt"
  std::int64_t width = 0, depth = 0, heads = 0;  // heads: gpt only
  std::string optimizer;                         // "sgd", "adamw"
  double lr = 0;
  std::int64_t batch_size = 0;
  // family, width, depth, heads (gpt), opt, lr, batch: for the results table.
  std::map<std::string, std::string> config() const;
};

// The width and depth a family gets when the sweep file leaves them out.
std::int64_t default_width(const std::string& family);
std::int64_t default_depth(const std::string& family);

// Throws hydra::Error naming the fields when a trial is impossible (a gpt width not divisible by
// its heads) or the grid exceeds 10000 configurations.
std::vector<Trial> expand_search_space(const SweepFile& sweep);

// "%g" of a number: 0.001, 3e-05.
std::string number_text(double x);

}  // namespace hydra::sweep
