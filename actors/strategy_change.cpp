#include "actors/strategy_change.hpp"

#include <cstdio>

#include "runtime/duration_format.hpp"

namespace hydra {

std::string format_strategy_changes(const std::vector<StrategyChange>& changes) {
  std::string out;
  for (const StrategyChange& c : changes) {
    out += "  " + format_duration(c.applied) + "  " + c.job + " at step " + std::to_string(c.step) +
           ": " + c.from + " -> " + c.to + " (predicted " + format_duration(c.predicted_before) +
           " -> " + format_duration(c.predicted_after) + " left; " + c.reason + ")\n";
  }
  return out;
}

void StrategyLog::add(StrategyChange change) {
  std::lock_guard lock(mutex_);
  changes_.push_back(std::move(change));
}

void StrategyLog::replanned(double search_seconds) {
  std::lock_guard lock(mutex_);
  ++replans_;
  search_seconds_ += search_seconds;
}

std::vector<StrategyChange> StrategyLog::changes() const {
  std::lock_guard lock(mutex_);
  return changes_;
}

int StrategyLog::replans() const {
  std::lock_guard lock(mutex_);
  return replans_;
}

double StrategyLog::search_seconds() const {
  std::lock_guard lock(mutex_);
  return search_seconds_;
}

}  // namespace hydra
