#pragma once
// JobResults as JSON, for a sweep directory: one file per finished job (read back by
// `hydra resume`) and curves.json with every job's curves. Non-finite numbers are written as the
// strings "nan", "inf" and "-inf" (JSON has no such numbers) and read back exactly.
#include <string>
#include <vector>

#include "runtime/job_result.hpp"

namespace hydra::sweep {

// One JobResult as a JSON object (every field, curves included).
std::string job_result_to_json(const JobResult& r);
// Throws hydra::Error naming `source` when the text is not such an object.
JobResult job_result_from_json(const std::string& text, const std::string& source);
// {"jobs": [ {name, status, config, best..., train_loss: [[step, epoch, value], ...], ...} ]}
std::string curves_json(const std::vector<JobResult>& results);

}  // namespace hydra::sweep
