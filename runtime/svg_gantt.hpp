#pragma once
// A Gantt chart of a Trace as a standalone SVG file: one row per device (in device_name_less
// order), one rectangle per event coloured by job (palette_colour of the job's index among the
// sorted job names), compute kinds in the upper band of a row and transfers (load, store, ...)
// as lighter, thinner bars in the lower band; a time axis in seconds since the first event and
// a legend of the jobs. Each rectangle (class "ev") has a tooltip naming job, shard, kind, times
// and bytes.
#include <string>
#include <vector>

#include "runtime/trace.hpp"

namespace hydra {

std::string gantt_svg(const std::vector<TraceEvent>& events,
                      const std::string& title = "Hydra device timeline");
// Throws hydra::Error naming `path` on I/O failure.
void write_gantt_svg(const Trace& trace, const std::string& path,
                     const std::string& title = "Hydra device timeline");

}  // namespace hydra
