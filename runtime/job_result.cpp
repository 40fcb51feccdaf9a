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

}  // namespace hydra
