#pragma once
// Small shared pieces of the hand-written SVG reports (svg_gantt, svg_curves): the job colour
// palette, axis ticks and the document frame.
#include <cstddef>
#include <string>
#include <vector>

namespace hydra {

// Colour `i` ("#rrggbb") of a 12-colour qualitative palette, repeating after 12. Reports give
// job k of the alphabetically sorted job names colour k, so one job has the same colour in the
// Gantt chart and the curves of one run.
std::string palette_colour(std::size_t i);
// `hex` ("#rrggbb") mixed with white: amount 0 keeps it, 1 gives white.
std::string lighten(const std::string& hex, double amount);

// Round tick values (1, 2 or 5 times a power of ten apart) inside [lo, hi], about `target` of
// them; lo == hi gives {lo}. Non-finite bounds give {}.
std::vector<double> nice_ticks(double lo, double hi, int target = 6);
// A tick value with just enough decimals for ticks `step` apart: 0.25 -> "0.25", 1000 -> "1000".
std::string tick_label(double value, double step);

// "<?xml ...?>\n<svg xmlns=... width=... height=... viewBox=...>" plus a white background and a
// default font; close with "</svg>\n".
std::string svg_open(double width, double height);
// A number for an SVG attribute: at most two decimals, no exponent.
std::string svg_num(double v);
// `text` cut to at most `max_chars` bytes (then ending in "..."), never inside a UTF-8
// character.
std::string shorten(const std::string& text, std::size_t max_chars);

}  // namespace hydra
