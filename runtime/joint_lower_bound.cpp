#include "runtime/joint_lower_bound.hpp"

#include <algorithm>
#include <limits>
#include <string>

#include "kernels/core/error.hpp"

namespace hydra {

JointBound joint_lower_bound(const std::vector<std::vector<CandidateCost>>& candidates,
                             std::size_t devices) {
  check(devices > 0, "joint_lower_bound: no devices");
  const std::size_t n = candidates.size();
  JointBound out;
  if (n == 0) return out;
  struct Entry {
    double chain, work;
    std::size_t job;
  };
  std::vector<Entry> entries;
  for (std::size_t j = 0; j < n; ++j) {
    check(!candidates[j].empty(),
          "joint_lower_bound: job " + std::to_string(j) + " has no candidate strategy");
    for (const CandidateCost& c : candidates[j])
      entries.push_back({c.chain, c.work, j});
  }
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.chain < b.chain; });
  const double d = static_cast<double>(devices);
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> least(n, inf);  // per job: least work with chain <= T so far
  std::size_t covered = 0;            // jobs with a candidate so far
  double sum = 0;                     // sum of least over covered jobs
  double best = inf, best_t = 0;
  for (std::size_t i = 0; i < entries.size();) {
    const double t = entries[i].chain;
    if (t >= best) break;  // f(T) >= T >= best from here on
    for (; i < entries.size() && entries[i].chain == t; ++i) {
      const Entry& e = entries[i];
      if (least[e.job] == inf) {
        ++covered;
        least[e.job] = e.work;
        sum += e.work;
      } else if (e.work < least[e.job]) {
        sum -= least[e.job] - e.work;
        least[e.job] = e.work;
      }
    }
    if (covered < n) continue;
    const double f = std::max(t, sum / d);
    if (f < best) best = f, best_t = t;
  }
  // The assignment at best_t, its work summed afresh (no drift from the running sum).
  out.choice.resize(n);
  for (std::size_t j = 0; j < n; ++j) {
    std::size_t pick = candidates[j].size();
    for (std::size_t k = 0; k < candidates[j].size(); ++k) {
      const CandidateCost& c = candidates[j][k];
      if (c.chain > best_t) continue;
      if (pick == candidates[j].size() || c.work < candidates[j][pick].work ||
          (c.work == candidates[j][pick].work && c.chain < candidates[j][pick].chain))
        pick = k;
    }
    out.choice[j] = pick;
    out.work += candidates[j][pick].work;
    out.chain = std::max(out.chain, candidates[j][pick].chain);
  }
  out.bound = std::max(out.chain, out.work / d);
  return out;
}

double assignment_bound(const std::vector<CandidateCost>& assignment, std::size_t devices) {
  check(devices > 0, "assignment_bound: no devices");
  double work = 0, chain = 0;
  for (const CandidateCost& c : assignment) {
    work += c.work;
    chain = std::max(chain, c.chain);
  }
  return std::max(chain, work / static_cast<double>(devices));
}

}  // namespace hydra
