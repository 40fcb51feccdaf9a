#pragma once
// Human-readable durations for reports and the progress display.
#include <string>

namespace hydra {

// "0.42 s", "12.3 s", "4m 05s", "2h 03m 09s"; negative or non-finite values give "-".
std::string format_duration(double seconds);

}  // namespace hydra
