#include "runtime/sweep/asha.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "kernels/core/error.hpp"

namespace hydra::sweep {

Asha::Asha(AshaOptions options) : options_(options) {
  if (!(options_.min_resource > 0) || !(options_.reduction_factor > 1) || options_.max_rungs < 1)
    throw Error(
        "successive halving: need min_resource > 0, reduction_factor > 1 and max_rungs >= 1");
}

Asha::Job& Asha::at(const std::string& job) {
  const auto it = jobs_.find(job);
  if (it == jobs_.end()) throw Error("successive halving: unknown job '" + job + "'");
  return it->second;
}

void Asha::add_job(const std::string& job) {
  jobs_.try_emplace(job);
}

void Asha::set_steps_per_unit(const std::string& job, double steps) {
  if (!(steps > 0)) throw Error("successive halving: steps per unit of '" + job + "' must be > 0");
  jobs_[job].steps_per_unit = steps;
}

std::int64_t Asha::rung_step(const std::string& job, int rung) const {
  const auto it = jobs_.find(job);
  const double units = it == jobs_.end() ? 1.0 : it->second.steps_per_unit;
  const double r = options_.min_resource * std::pow(options_.reduction_factor, rung) * units;
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(r - 1e-9)));
}

bool Asha::better(const Entry& a, const Entry& b) const {
  const bool an = std::isnan(a.metric), bn = std::isnan(b.metric);
  if (an != bn) return bn;
  if (!an && a.metric != b.metric)
    return options_.maximize ? a.metric > b.metric : a.metric < b.metric;
  return a.job < b.job;
}

bool Asha::kept(const std::vector<Entry>& entries, const std::string& job, std::string& why) const {
  std::vector<Entry> sorted = entries;
  std::sort(sorted.begin(), sorted.end(),
            [&](const Entry& a, const Entry& b) { return better(a, b); });
  const auto n = sorted.size();
  const std::size_t keep = std::max<std::size_t>(
      1, static_cast<std::size_t>(std::floor(double(n) / options_.reduction_factor)));
  std::size_t rank = 0;
  while (rank < n && sorted[rank].job != job)
    ++rank;
  char buf[200];
  std::snprintf(buf, sizeof buf, "%s %.4g ranks %zu of %zu, the top %zu go on (best %.4g)",
                options_.maximize ? "val_accuracy" : "val_loss", sorted[rank].metric, rank + 1, n,
                keep, sorted[0].metric);
  why = buf;
  return rank < keep;
}

bool Asha::rung_complete(int rung) const {
  for (const auto& [name, j] : jobs_) {
    if (j.ended || j.stopped) continue;
    if (j.total_steps > 0 && rung_step(name, rung) >= j.total_steps) continue;  // never reaches it
    if (j.next_rung > rung) continue;                                           // recorded there
    return false;
  }
  return true;
}

void Asha::judge(const std::string& name, Job& j, int rung, double metric, bool stop,
                 const std::string& why) {
  decisions_.push_back({name, rung, j.last_step, metric, stop});
  if (stop) {
    j.stopped = true;
    j.reason = std::string(options_.synchronous ? "SHA" : "ASHA") + " rung " +
               std::to_string(rung) + " (step " + std::to_string(rung_step(name, rung)) +
               "): " + why;
  }
}

void Asha::report(const std::string& job, std::int64_t step, std::int64_t total_steps,
                  double val_loss, double val_accuracy) {
  Job& j = at(job);
  // A job parked at a rung reports nothing new until released (a resumed job may).
  if (j.ended || j.stopped || step <= j.last_step || j.pending >= 0) return;
  j.last_step = step;
  j.total_steps = total_steps;
  const double metric = options_.maximize ? val_accuracy : val_loss;
  // Record at every rung this validation passed (a coarse validation may pass several).
  while (j.pending < 0 && !j.stopped && j.next_rung < options_.max_rungs) {
    const int r = j.next_rung;
    const std::int64_t s = rung_step(job, r);
    if (s > step || s >= total_steps) break;
    rungs_[r].push_back({job, metric});
    j.next_rung = r + 1;
    if (options_.synchronous) {
      j.pending = r;
    } else {
      std::string why;
      const bool keep = kept(rungs_[r], job, why);
      judge(job, j, r, metric, !keep, why);
    }
  }
  j.last_metric = metric;
}

StopDecision Asha::decide(const std::string& job) {
  Job& j = at(job);
  while (!j.stopped && j.pending >= 0) {
    const int r = j.pending;
    if (!rung_complete(r)) return StopDecision::wait;
    std::string why;
    const bool keep = kept(rungs_[r], job, why);
    j.pending = -1;
    double metric = j.last_metric;
    for (const Entry& e : rungs_[r])
      if (e.job == job) metric = e.metric;
    judge(job, j, r, metric, !keep, why);
    // Passed this rung: the same validation may already be past the next one.
    if (keep && j.next_rung < options_.max_rungs) {
      const std::int64_t s = rung_step(job, j.next_rung);
      if (s <= j.last_step && s < j.total_steps) {
        rungs_[j.next_rung].push_back({job, j.last_metric});
        j.pending = j.next_rung++;
      }
    }
  }
  return j.stopped ? StopDecision::stop : StopDecision::go_on;
}

void Asha::job_ended(const std::string& job) {
  at(job).ended = true;
}

std::string Asha::reason(const std::string& job) const {
  const auto it = jobs_.find(job);
  return it == jobs_.end() ? std::string() : it->second.reason;
}

}  // namespace hydra::sweep
