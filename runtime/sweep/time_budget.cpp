#include "runtime/sweep/time_budget.hpp"

#include <cstdio>

namespace hydra::sweep {

TimeBudget::TimeBudget(double seconds, std::shared_ptr<EarlyStopping> inner)
    : seconds_(seconds), inner_(std::move(inner)), start_(std::chrono::steady_clock::now()) {}

void TimeBudget::add_job(const std::string& job) {
  if (inner_) inner_->add_job(job);
}

void TimeBudget::report(const std::string& job, std::int64_t step, std::int64_t total_steps,
                        double val_loss, double val_accuracy) {
  if (inner_) inner_->report(job, step, total_steps, val_loss, val_accuracy);
}

StopDecision TimeBudget::decide(const std::string& job) {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (elapsed >= seconds_) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "time budget of %g s spent (%.1f s)", seconds_, elapsed);
    reasons_[job] = buf;
    return StopDecision::stop;
  }
  return inner_ ? inner_->decide(job) : StopDecision::go_on;
}

void TimeBudget::job_ended(const std::string& job) {
  if (inner_) inner_->job_ended(job);
}

std::string TimeBudget::reason(const std::string& job) const {
  if (const auto it = reasons_.find(job); it != reasons_.end()) return it->second;
  return inner_ ? inner_->reason(job) : std::string();
}

}  // namespace hydra::sweep
