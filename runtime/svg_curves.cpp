#include "runtime/svg_curves.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "runtime/svg_common.hpp"
#include "runtime/text_escape.hpp"
#include "runtime/text_file.hpp"

namespace hydra {

namespace {

constexpr double kWidth = 1000, kLeft = 80, kTop = 50, kPlotWidth = 640, kPlotHeight = 420;
constexpr double kLegendX = kLeft + kPlotWidth + 30, kLegendRow = 18;
constexpr std::size_t kMarkersUpTo = 30;  // points per line drawn with markers

struct Range {
  double lo = 0, hi = 1;
  std::vector<double> ticks;
  double step = 1;
};

// [lo, hi] widened to round tick values.
Range nice_range(double lo, double hi, int target) {
  if (!(hi > lo)) {
    const double pad = lo == 0 ? 1 : std::abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  Range r;
  std::vector<double> t = nice_ticks(lo, hi, target);
  r.step = t.size() > 1 ? t[1] - t[0] : (hi - lo);
  r.lo = std::floor(lo / r.step + 1e-9) * r.step;
  r.hi = std::ceil(hi / r.step - 1e-9) * r.step;
  if (!(r.hi > r.lo)) r.hi = r.lo + r.step;
  r.ticks = nice_ticks(r.lo, r.hi, target);
  return r;
}

}  // namespace

std::string curves_svg(const std::vector<JobResult>& jobs, Curve curve, const std::string& title) {
  const std::string heading = title.empty() ? curve_title(curve) : title;
  std::set<std::string> names;
  for (const JobResult& j : jobs)
    names.insert(j.name);
  std::map<std::string, std::size_t> colour_index;
  for (const std::string& n : names)
    colour_index.emplace(n, colour_index.size());

  // Data ranges over finite points.
  double x_lo = 0, x_hi = 0, y_lo = 0, y_hi = 0;
  bool any = false;
  for (const JobResult& j : jobs)
    for (const CurvePoint& p : curve_points(j, curve)) {
      if (!std::isfinite(p.value)) continue;
      const auto x = static_cast<double>(p.step);
      x_lo = any ? std::min(x_lo, x) : std::min(0.0, x);
      x_hi = any ? std::max(x_hi, x) : x;
      y_lo = any ? std::min(y_lo, p.value) : p.value;
      y_hi = any ? std::max(y_hi, p.value) : p.value;
      any = true;
    }
  if (curve == Curve::val_accuracy && any && y_lo >= 0 && y_hi <= 1) {
    y_lo = std::max(0.0, y_lo - 0.02);
    y_hi = std::min(1.0, y_hi + 0.02);
  }
  const Range xr = any ? nice_range(x_lo, std::max(x_hi, x_lo + 1), 8) : nice_range(0, 1, 8);
  const Range yr = any ? nice_range(y_lo, y_hi, 6) : nice_range(0, 1, 6);
  const auto px = [&](double x) { return kLeft + (x - xr.lo) / (xr.hi - xr.lo) * kPlotWidth; };
  const auto py = [&](double y) {
    return kTop + kPlotHeight - (y - yr.lo) / (yr.hi - yr.lo) * kPlotHeight;
  };

  const double height =
      std::max(kTop + kPlotHeight + 60, kTop + 30 + kLegendRow * static_cast<double>(jobs.size()));
  std::string svg = svg_open(kWidth, height);
  svg += "<title>" + xml_escape(heading) + "</title>\n";
  svg += "<text class=\"title\" x=\"" + svg_num(kLeft) + "\" y=\"28\" font-size=\"16\">" +
         xml_escape(heading) + "</text>\n";

  // Frame, grid and ticks.
  const double bottom = kTop + kPlotHeight, right = kLeft + kPlotWidth;
  svg += "<g class=\"grid\" stroke=\"#e2e2e2\">\n";
  for (const double v : xr.ticks)
    svg += "<line x1=\"" + svg_num(px(v)) + "\" y1=\"" + svg_num(kTop) + "\" x2=\"" +
           svg_num(px(v)) + "\" y2=\"" + svg_num(bottom) + "\"/>\n";
  for (const double v : yr.ticks)
    svg += "<line x1=\"" + svg_num(kLeft) + "\" y1=\"" + svg_num(py(v)) + "\" x2=\"" +
           svg_num(right) + "\" y2=\"" + svg_num(py(v)) + "\"/>\n";
  svg += "</g>\n";
  svg += "<rect class=\"frame\" x=\"" + svg_num(kLeft) + "\" y=\"" + svg_num(kTop) + "\" width=\"" +
         svg_num(kPlotWidth) + "\" height=\"" + svg_num(kPlotHeight) +
         "\" fill=\"none\" stroke=\"#888888\"/>\n";
  for (const double v : xr.ticks)
    svg += "<text class=\"tick\" x=\"" + svg_num(px(v)) + "\" y=\"" + svg_num(bottom + 18) +
           "\" text-anchor=\"middle\">" + tick_label(v, xr.step) + "</text>\n";
  for (const double v : yr.ticks)
    svg += "<text class=\"tick\" x=\"" + svg_num(kLeft - 8) + "\" y=\"" + svg_num(py(v) + 4) +
           "\" text-anchor=\"end\">" + tick_label(v, yr.step) + "</text>\n";
  svg += "<text class=\"axis-label\" x=\"" + svg_num(kLeft + kPlotWidth / 2) + "\" y=\"" +
         svg_num(bottom + 40) + "\" text-anchor=\"middle\">step</text>\n";
  svg += "<text class=\"axis-label\" x=\"20\" y=\"" + svg_num(kTop + kPlotHeight / 2) +
         "\" text-anchor=\"middle\" transform=\"rotate(-90 20 " + svg_num(kTop + kPlotHeight / 2) +
         ")\">" + xml_escape(curve_title(curve)) + "</text>\n";
  if (!any)
    svg += "<text x=\"" + svg_num(kLeft + kPlotWidth / 2) + "\" y=\"" +
           svg_num(kTop + kPlotHeight / 2) +
           "\" text-anchor=\"middle\" fill=\"#888888\">no data</text>\n";

  // Lines: one polyline per run of finite points, markers when there are few points.
  for (const JobResult& j : jobs) {
    const std::vector<CurvePoint>& pts = curve_points(j, curve);
    const std::string colour = palette_colour(colour_index[j.name]);
    svg += "<g class=\"job\" stroke=\"" + colour + "\" fill=\"" + colour + "\"><title>" +
           xml_escape(j.name) + "</title>\n";
    std::string run;
    std::size_t run_points = 0;
    const auto flush = [&] {
      if (run_points >= 2)
        svg += "<polyline class=\"curve\" fill=\"none\" stroke-width=\"1.8\" points=\"" + run +
               "\"/>\n";
      run.clear();
      run_points = 0;
    };
    for (const CurvePoint& p : pts) {
      if (!std::isfinite(p.value)) {
        flush();
        continue;
      }
      if (!run.empty()) run += ' ';
      run += svg_num(px(static_cast<double>(p.step))) + "," + svg_num(py(p.value));
      ++run_points;
    }
    flush();
    // Markers for short curves (and isolated points, which a line cannot show).
    for (std::size_t i = 0; i < pts.size(); ++i) {
      if (!std::isfinite(pts[i].value)) continue;
      const bool isolated = (i == 0 || !std::isfinite(pts[i - 1].value)) &&
                            (i + 1 == pts.size() || !std::isfinite(pts[i + 1].value));
      if (pts.size() > kMarkersUpTo && !isolated) continue;
      svg += "<circle cx=\"" + svg_num(px(static_cast<double>(pts[i].step))) + "\" cy=\"" +
             svg_num(py(pts[i].value)) + "\" r=\"2.5\" stroke=\"none\"/>\n";
    }
    svg += "</g>\n";
  }

  // Legend on the right, in the order of `jobs`.
  svg += "<g class=\"legend\">\n";
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const double y = kTop + 10 + kLegendRow * static_cast<double>(i);
    const std::string colour = palette_colour(colour_index[jobs[i].name]);
    svg += "<line x1=\"" + svg_num(kLegendX) + "\" y1=\"" + svg_num(y - 4) + "\" x2=\"" +
           svg_num(kLegendX + 22) + "\" y2=\"" + svg_num(y - 4) + "\" stroke=\"" + colour +
           "\" stroke-width=\"3\"/>\n";
    svg += "<text x=\"" + svg_num(kLegendX + 28) + "\" y=\"" + svg_num(y) + "\">" +
           xml_escape(shorten(jobs[i].name, 34)) + "</text>\n";
  }
  svg += "</g>\n</svg>\n";
  return svg;
}

void write_curves_svg(const std::vector<JobResult>& jobs, Curve curve, const std::string& path,
                      const std::string& title) {
  write_text_file(path, curves_svg(jobs, curve, title), "curves SVG");
}

}  // namespace hydra
