#include "runtime/job_result.hpp"

namespace hydra {

const char* job_status_name(JobStatus s) {
  switch (s) {
    case JobStatus::done:
      return "done";
    case JobStatus::failed:
      return "failed";
    case JobStatus::stopped:
      return "stopped";
  }
  return "unknown";
}

const char* curve_name(Curve c) {
  switch (c) {
    case Curve::train_loss:
      return "train_loss";
    case Curve::val_loss:
      return "val_loss";
    case Curve::val_accuracy:
      return "val_accuracy";
  }
  return "unknown";
}

const char* curve_title(Curve c) {
  switch (c) {
    case Curve::train_loss:
      return "training loss";
    case Curve::val_loss:
      return "validation loss";
    case Curve::val_accuracy:
      return "validation accuracy";
  }
  return "unknown";
}

const std::vector<CurvePoint>& curve_points(const JobResult& r, Curve c) {
  switch (c) {
    case Curve::train_loss:
      return r.train_loss;
    case Curve::val_loss:
      return r.val_loss;
    case Curve::val_accuracy:
      return r.val_accuracy;
  }
  return r.train_loss;
}

}  // namespace hydra
