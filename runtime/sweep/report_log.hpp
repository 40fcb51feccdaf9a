#pragma once
// The validation reports of a sweep as an append-only log, so `hydra resume` can rebuild an
// early-stopping rule's state exactly. One JSON object per line, flushed at once:
//   {"job": "a", "step": 100, "total": 400, "val_loss": 0.5, "val_accuracy": 0.8}
//   {"ended": "a"}
#include <cstdio>
#include <memory>
#include <string>

#include "runtime/early_stopping.hpp"

namespace hydra::sweep {

// Passes every call to `inner` and appends reports and job ends to the log at `path`.
class RecordingRule : public EarlyStopping {
 public:
  // Throws hydra::Error naming the path when it cannot be opened for appending.
  RecordingRule(std::shared_ptr<EarlyStopping> inner, const std::string& path);
  ~RecordingRule() override;
  RecordingRule(const RecordingRule&) = delete;
  RecordingRule& operator=(const RecordingRule&) = delete;

  void add_job(const std::string& job) override;
  void report(const std::string& job, std::int64_t step, std::int64_t total_steps, double val_loss,
              double val_accuracy) override;
  StopDecision decide(const std::string& job) override;
  void job_ended(const std::string& job) override;
  std::string reason(const std::string& job) const override;

 private:
  void append(const std::string& line);
  std::shared_ptr<EarlyStopping> inner_;
  std::string path_;
  std::FILE* file_ = nullptr;
};

// Replays a log into `rule` (whose jobs are already added): report + decide for every report,
// job_ended for every end, then decide once more for every reported job. A missing log replays
// nothing; a truncated last line (a kill while writing) is ignored; any other bad line throws
// hydra::Error naming the path and line. Returns the number of reports replayed.
std::size_t replay_report_log(const std::string& path, EarlyStopping& rule);

}  // namespace hydra::sweep
