#pragma once
// What a training job reports: its curves, best validation point and checkpoint, time, status.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace hydra {

struct CurvePoint {
  std::int64_t step = 0;
  double epoch = 0;  // fractional epochs done
  double value = 0;
};

enum class JobStatus : std::uint8_t { done, failed, stopped };
const char* job_status_name(JobStatus s);

struct JobResult {
  std::string name;
  std::map<std::string, std::string> config;  // hyperparameters, for tables
  JobStatus status = JobStatus::done;
  std::string error;  // why it failed
  // Status stopped (by RuntimeOptions::early_stopping): the rule's reason (EarlyStopping::reason);
  // `error` stays empty.
  std::string stop_reason;
  std::vector<CurvePoint> train_loss, val_loss, val_accuracy;
  double best_val_accuracy = 0, best_val_loss = 0;
  std::int64_t best_step = -1;
  std::string checkpoint_path;  // parameters at the best validation point ("" if none written)
  std::string state_path;       // the last training-state file written ("" if none)
  std::int64_t steps = 0;
  double seconds = 0;  // wall time from start to end of the job
  double samples_per_second = 0;
};

// The three curves of a JobResult, for reports (svg_curves, results_table).
enum class Curve : std::uint8_t { train_loss, val_loss, val_accuracy };
const char* curve_name(Curve c);   // "train_loss", "val_loss", "val_accuracy"
const char* curve_title(Curve c);  // "training loss", "validation loss", "validation accuracy"
const std::vector<CurvePoint>& curve_points(const JobResult& r, Curve c);

}  // namespace hydra
