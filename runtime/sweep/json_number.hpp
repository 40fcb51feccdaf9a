#pragma once
// Numbers in the sweep's JSON files (job results, report logs): JSON has no NaN or infinity, so
// those are written as the strings "nan", "inf" and "-inf" and read back exactly.
#include <nlohmann/json_fwd.hpp>

namespace hydra::sweep {

nlohmann::json json_number(double x);
// Throws hydra::Error when `v` is neither a number nor one of those strings.
double from_json_number(const nlohmann::json& v);

}  // namespace hydra::sweep
