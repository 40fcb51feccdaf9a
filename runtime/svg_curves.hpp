#pragma once
// Training curves of several jobs as a standalone SVG line chart: one line per job (colour
// palette_colour of the job's index among the sorted job names, as in the Gantt chart), step on
// the x axis, the curve's value on the y axis, both with round ticks and grid lines, and a
// legend of the jobs on the right. Non-finite values (a diverged loss) break the line.
#include <string>
#include <vector>

#include "runtime/job_result.hpp"

namespace hydra {

// `title` "" means curve_title(curve).
std::string curves_svg(const std::vector<JobResult>& jobs, Curve curve,
                       const std::string& title = "");
// Throws hydra::Error naming `path` on I/O failure.
void write_curves_svg(const std::vector<JobResult>& jobs, Curve curve, const std::string& path,
                      const std::string& title = "");

}  // namespace hydra
