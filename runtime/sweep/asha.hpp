#pragma once
// Successive halving as an EarlyStopping rule (runtime/early_stopping.hpp).
//
// Rungs: rung k is reached at resource min_resource * reduction_factor^k (k < max_rungs), in
// steps or epochs (a job's steps per resource unit are given by set_steps_per_unit; default 1:
// steps). A job is judged at a rung at its first validation at or past the rung's step, with that
// validation's metric, unless the rung lies at or beyond its last step (it finishes anyway).
//
//  - "asha" (asynchronous, Li et al. 2020, stopping variant): a job reaching a rung goes on if its
//    metric is among the top max(1, floor(n / reduction_factor)) of the n jobs recorded at that
//    rung so far (itself included), else it stops. Decisions depend on the order of arrival.
//  - "sha" (synchronous): a job reaching a rung waits (StopDecision::wait) until every job has
//    either recorded at that rung or ended; then the top max(1, floor(n / reduction_factor)) of the
//    n recorded go on and the rest stop. Decisions depend only on the metrics, not on timing.
//
// Metric "val_accuracy" is maximised, "val_loss" minimised; a NaN metric ranks last; ties go to
// the job whose name sorts first. Reports at a step not beyond the job's last report are ignored
// (a resumed job repeating a validation). Every judgement is recorded (decisions()).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/early_stopping.hpp"

namespace hydra::sweep {

struct AshaOptions {
  bool synchronous = false;     // "sha" instead of "asha"
  double min_resource = 1;      // first rung, in units (steps, or epochs via steps_per_unit)
  double reduction_factor = 3;  // > 1
  int max_rungs = 3;
  bool maximize = true;  // val_accuracy; false: val_loss
};

class Asha : public EarlyStopping {
 public:
  // Throws hydra::Error for min_resource <= 0, reduction_factor <= 1 or max_rungs < 1.
  explicit Asha(AshaOptions options);

  // Steps per resource unit of `job` (e.g. its steps per epoch); call before its first report.
  void set_steps_per_unit(const std::string& job, double steps);
  // The step at which `job` reaches rung k: ceil(min_resource * reduction_factor^k * units).
  std::int64_t rung_step(const std::string& job, int rung) const;

  void add_job(const std::string& job) override;
  void report(const std::string& job, std::int64_t step, std::int64_t total_steps, double val_loss,
              double val_accuracy) override;
  StopDecision decide(const std::string& job) override;
  void job_ended(const std::string& job) override;
  std::string reason(const std::string& job) const override;

  // A judgement at a rung: the job went on or was stopped.
  struct Judgement {
    std::string job;
    int rung = 0;
    std::int64_t step = 0;
    double metric = 0;
    bool stopped = false;
  };
  const std::vector<Judgement>& decisions() const { return decisions_; }
  const AshaOptions& options() const { return options_; }

 private:
  struct Job {
    double steps_per_unit = 1;
    std::int64_t last_step = -1, total_steps = 0;
    double last_metric = 0;
    int next_rung = 0;  // the first rung not judged yet
    int pending = -1;   // sha: the rung it waits at; -1 none
    bool stopped = false, ended = false;
    std::string reason;
  };
  struct Entry {
    std::string job;
    double metric;
  };
  bool better(const Entry& a, const Entry& b) const;
  // Whether `job` is among the kept of `entries` (rank < max(1, floor(n / eta))).
  bool kept(const std::vector<Entry>& entries, const std::string& job, std::string& why) const;
  bool rung_complete(int rung) const;
  void judge(const std::string& name, Job& j, int rung, double metric, bool stop,
             const std::string& why);
  Job& at(const std::string& job);

  AshaOptions options_;
  std::map<std::string, Job> jobs_;
  std::map<int, std::vector<Entry>> rungs_;  // recorded metrics per rung, in arrival order
  std::vector<Judgement> decisions_;
};

}  // namespace hydra::sweep
