#include "runtime/svg_common.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace hydra {

std::string palette_colour(std::size_t i) {
  static const char* const colours[] = {"#1f6fb4", "#e8731a", "#2a9d48", "#d23c3c",
                                        "#8a5cc4", "#8c564b", "#d85fae", "#5f5f5f",
                                        "#a9a91c", "#17a7bb", "#0b3d91", "#b8860b"};
  return colours[i % (sizeof colours / sizeof colours[0])];
}

std::string lighten(const std::string& hex, double amount) {
  if (hex.size() != 7 || hex[0] != '#') return hex;
  amount = std::clamp(amount, 0.0, 1.0);
  char out[8];
  int rgb[3];
  for (int k = 0; k < 3; ++k) {
    const int v = std::stoi(hex.substr(static_cast<std::size_t>(1 + 2 * k), 2), nullptr, 16);
    rgb[k] = static_cast<int>(std::lround(v + (255 - v) * amount));
  }
  std::snprintf(out, sizeof out, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
  return out;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {};
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo) return {lo};
  const double raw = (hi - lo) / std::max(target, 1);
  const double exponent = std::floor(std::log10(raw));
  const double mag = std::pow(10.0, exponent);
  double m = 10;
  for (const double c : {1.0, 2.0, 5.0})
    if (c * mag >= raw) {
      m = c;
      break;
    }
  const double step = m * mag;
  // Tick k is k * m * 10^exponent; dividing by 10^-exponent for small steps keeps decimals
  // exact (0.3, not 0.30000000000000004).
  const double inverse = exponent < 0 ? std::pow(10.0, -exponent) : 0;
  const auto tick = [&](double k) { return inverse > 0 ? k * m / inverse : k * step; };
  std::vector<double> ticks;
  for (double k = std::ceil(lo / step - 1e-9);; ++k) {
    double v = tick(k);
    if (v > hi + step * 1e-9) break;
    if (std::abs(v) < step * 1e-9) v = 0;  // no "-0"
    ticks.push_back(v);
    if (ticks.size() > 1000) break;  // cannot happen with a sane target; a guard
  }
  return ticks;
}

std::string tick_label(double value, double step) {
  int decimals = 0;
  if (step > 0 && std::isfinite(step))
    decimals = std::clamp(static_cast<int>(std::ceil(-std::log10(step) - 1e-9)), 0, 12);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  const std::string s = buf;
  if (s.find_first_not_of("-0.") == std::string::npos) return std::string(1, '0');
  return s;
}

std::string svg_num(double v) {
  if (!std::isfinite(v)) v = 0;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  std::string s = buf;
  while (s.back() == '0')
    s.pop_back();
  if (s.back() == '.') s.pop_back();
  if (s == "-0") s = "0";
  return s;
}

std::string svg_open(double width, double height) {
  const std::string w = svg_num(width), h = svg_num(height);
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
         "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
         w + "\" height=\"" + h + "\" viewBox=\"0 0 " + w + " " + h +
         "\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
         "<rect class=\"background\" x=\"0\" y=\"0\" width=\"" +
         w + "\" height=\"" + h + "\" fill=\"#ffffff\"/>\n";
}

std::string shorten(const std::string& text, std::size_t max_chars) {
  if (text.size() <= max_chars) return text;
  std::size_t cut = max_chars > 3 ? max_chars - 3 : 0;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80)
    --cut;
  return text.substr(0, cut) + "...";
}

}  // namespace hydra
