#include "runtime/sweep/search_space.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "kernels/core/error.hpp"
#include "kernels/random.hpp"

namespace hydra::sweep {

namespace {

template <class T>
std::vector<T> grid_values(const SearchValues<T>& v, T fallback) {
  return v.values.empty() ? std::vector<T>{fallback} : v.values;
}

// Draw number `dim` of trial `trial`: uniform in [0, 1).
double draw(std::uint64_t seed, std::int64_t trial, int dim) {
  return uniform01(seed, static_cast<std::uint64_t>(trial) * 64 + static_cast<std::uint64_t>(dim));
}

std::int64_t sample_int(const SearchValues<std::int64_t>& v, std::int64_t fallback, double u) {
  if (!v.is_range) {
    const auto& vals = v.values.empty() ? std::vector<std::int64_t>{fallback} : v.values;
    return vals[std::min(vals.size() - 1, static_cast<std::size_t>(u * double(vals.size())))];
  }
  if (v.log) {
    const double lo = std::log(double(v.min)), hi = std::log(double(v.max) + 1);
    return std::clamp<std::int64_t>(static_cast<std::int64_t>(std::exp(lo + u * (hi - lo))), v.min,
                                    v.max);
  }
  return std::min(v.max, v.min + static_cast<std::int64_t>(u * double(v.max - v.min + 1)));
}

double sample_real(const SearchValues<double>& v, double u) {
  if (!v.is_range)
    return v.values[std::min(v.values.size() - 1,
                             static_cast<std::size_t>(u * double(v.values.size())))];
  if (v.log) return std::exp(std::log(v.min) + u * (std::log(v.max) - std::log(v.min)));
  return v.min + u * (v.max - v.min);
}

std::string trial_name(const Trial& t) {
  std::string n = t.family + "-w" + std::to_string(t.width) + "-d" + std::to_string(t.depth);
  if (t.family == "gpt") n += "-h" + std::to_string(t.heads);
  return n + "-" + t.optimizer + "-lr" + number_text(t.lr) + "-b" + std::to_string(t.batch_size);
}

void check_trial(const SweepFile& s, const Trial& t) {
  if (t.family == "gpt" && t.width % t.heads != 0)
    throw Error("sweep file " + s.source + ": \"model.width\" " + std::to_string(t.width) +
                " is not divisible by \"model.heads\" " + std::to_string(t.heads) +
                " (configuration " + t.name + ")");
}

}  // namespace

std::string number_text(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

std::int64_t default_width(const std::string& family) {
  return family == "cnn" ? 16 : family == "gpt" ? 64 : 256;
}
std::int64_t default_depth(const std::string& family) {
  return family == "mlp" ? 1 : 2;
}

std::map<std::string, std::string> Trial::config() const {
  std::map<std::string, std::string> c = {
      {"family", family}, {"width", std::to_string(width)}, {"depth", std::to_string(depth)},
      {"opt", optimizer}, {"lr", number_text(lr)},          {"batch", std::to_string(batch_size)}};
  if (family == "gpt") c["heads"] = std::to_string(heads);
  return c;
}

std::vector<Trial> expand_search_space(const SweepFile& s) {
  const TrainingSpace& tr = s.training;
  std::vector<Trial> out;
  if (s.search.method == "grid") {
    std::set<std::string> names;
    for (const ModelSpace& m : s.models)
      for (const std::string& family : m.family) {
        for (std::int64_t width : grid_values(m.width, default_width(family)))
          for (std::int64_t depth : grid_values(m.depth, default_depth(family)))
            for (std::int64_t heads : family == "gpt" ? grid_values<std::int64_t>(m.heads, 4)
                                                      : std::vector<std::int64_t>{0})
              for (const std::string& opt : tr.optimizer)
                for (double lr : tr.lr.values)
                  for (std::int64_t batch : tr.batch_size.values) {
                    if (out.size() >= 10000)
                      throw Error("sweep file " + s.source +
                                  ": the grid has more than 10000 configurations; use "
                                  "\"search\": {\"method\": \"random\", \"trials\": N}");
                    Trial t{"", family, width, depth, heads, opt, lr, batch};
                    t.name = trial_name(t);
                    check_trial(s, t);
                    if (!names.insert(t.name).second)
                      throw Error("sweep file " + s.source + ": \"model\": configuration " +
                                  t.name + " comes from two model entries");
                    out.push_back(std::move(t));
                  }
      }
    return out;
  }
  const std::uint64_t seed = s.search.seed;
  const int digits = s.search.trials > 100 ? (s.search.trials > 1000 ? 4 : 3) : 2;
  for (std::int64_t i = 0; i < s.search.trials; ++i) {
    Trial t;
    // A model entry, then a family of it, uniformly.
    const ModelSpace& m = s.models[std::min(
        s.models.size() - 1, static_cast<std::size_t>(draw(seed, i, 7) * double(s.models.size())))];
    t.family = m.family[std::min(
        m.family.size() - 1, static_cast<std::size_t>(draw(seed, i, 0) * double(m.family.size())))];
    t.width = sample_int(m.width, default_width(t.family), draw(seed, i, 1));
    t.depth = sample_int(m.depth, default_depth(t.family), draw(seed, i, 2));
    t.heads = t.family == "gpt" ? sample_int(m.heads, 4, draw(seed, i, 3)) : 0;
    t.optimizer = tr.optimizer[std::min(
        tr.optimizer.size() - 1,
        static_cast<std::size_t>(draw(seed, i, 4) * double(tr.optimizer.size())))];
    t.lr = sample_real(tr.lr, draw(seed, i, 5));
    t.batch_size = sample_int(tr.batch_size, 128, draw(seed, i, 6));
    char prefix[32];
    std::snprintf(prefix, sizeof prefix, "t%0*lld-", digits, static_cast<long long>(i));
    t.name = prefix + trial_name(t);
    check_trial(s, t);
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace hydra::sweep
