#pragma once
// A sweep's time budget as an EarlyStopping rule: once `seconds` have passed since construction,
// every job that validates is stopped; before that the decision is the inner rule's (or go_on).
#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "runtime/early_stopping.hpp"

namespace hydra::sweep {

class TimeBudget : public EarlyStopping {
 public:
  TimeBudget(double seconds, std::shared_ptr<EarlyStopping> inner);

  void add_job(const std::string& job) override;
  void report(const std::string& job, std::int64_t step, std::int64_t total_steps, double val_loss,
              double val_accuracy) override;
  StopDecision decide(const std::string& job) override;
  void job_ended(const std::string& job) override;
  std::string reason(const std::string& job) const override;

 private:
  double seconds_;
  std::shared_ptr<EarlyStopping> inner_;
  std::chrono::steady_clock::time_point start_;
  std::map<std::string, std::string> reasons_;
};

}  // namespace hydra::sweep
