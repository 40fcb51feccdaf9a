#include "runtime/svg_gantt.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "kernels/core/error.hpp"
#include "runtime/svg_common.hpp"
#include "runtime/text_escape.hpp"
#include "runtime/text_file.hpp"

namespace hydra {

namespace {

constexpr double kWidth = 1200, kLeft = 130, kRight = 30, kTop = 48, kRowHeight = 32;
constexpr double kComputeTop = 4, kComputeHeight = 18;    // within a row
constexpr double kTransferTop = 24, kTransferHeight = 5;  // within a row
constexpr double kTransferLighten = 0.5;

std::string event_tooltip(const TraceEvent& e) {
  std::string t = e.job + " s" + std::to_string(e.shard) + " " + e.kind + " on " + e.device + ": " +
                  format_number(e.start, 6) + " s to " + format_number(e.end, 6) + " s (" +
                  format_number((e.end - e.start) * 1e3, 4) + " ms)";
  if (e.bytes > 0) t += ", " + format_bytes(e.bytes);
  return t;
}

}  // namespace

std::string gantt_svg(const std::vector<TraceEvent>& events, const std::string& title) {
  std::set<std::string, decltype(&device_name_less)> device_set(&device_name_less);
  std::set<std::string> job_set;
  double t0 = 0, t1 = 0;
  bool any = false;
  for (const TraceEvent& e : events) {
    device_set.insert(e.device);
    job_set.insert(e.job);
    if (!std::isfinite(e.start) || !std::isfinite(e.end)) continue;
    t0 = any ? std::min(t0, e.start) : e.start;
    t1 = any ? std::max(t1, e.end) : e.end;
    any = true;
  }
  if (!(t1 > t0)) t1 = t0 + 1;
  const std::vector<std::string> devices(device_set.begin(), device_set.end());
  const std::vector<std::string> jobs(job_set.begin(), job_set.end());
  std::map<std::string, std::size_t> device_row, job_index;
  for (std::size_t i = 0; i < devices.size(); ++i)
    device_row[devices[i]] = i;
  for (std::size_t i = 0; i < jobs.size(); ++i)
    job_index[jobs[i]] = i;

  const double plot_w = kWidth - kLeft - kRight;
  const double rows_h = kRowHeight * static_cast<double>(std::max<std::size_t>(devices.size(), 1));
  const double axis_y = kTop + rows_h;
  const auto x_of = [&](double t) { return kLeft + (t - t0) / (t1 - t0) * plot_w; };

  // Legend layout first (it sets the height): items flow left to right and wrap.
  struct Item {
    std::string label, colour;
    double x, y;
  };
  std::vector<Item> legend;
  const double legend_top = axis_y + 80;
  double lx = kLeft, ly = legend_top;
  const auto add_item = [&](const std::string& label, const std::string& colour) {
    const double w = 22 + 7.0 * static_cast<double>(std::min<std::size_t>(label.size(), 40)) + 18;
    if (lx + w > kWidth - kRight && lx > kLeft) {
      lx = kLeft;
      ly += 20;
    }
    legend.push_back({label, colour, lx, ly});
    lx += w;
  };
  for (std::size_t i = 0; i < jobs.size(); ++i)
    add_item(jobs[i], palette_colour(i));
  const double height = ly + 28;

  std::string svg = svg_open(kWidth, height);
  svg += "<title>" + xml_escape(title) + "</title>\n";
  svg += "<text class=\"title\" x=\"" + svg_num(kLeft) + "\" y=\"26\" font-size=\"16\">" +
         xml_escape(title) + "</text>\n";

  // Rows: alternating bands with the device name on the left.
  for (std::size_t r = 0; r < std::max<std::size_t>(devices.size(), 1); ++r) {
    const double y = kTop + kRowHeight * static_cast<double>(r);
    svg += "<rect class=\"row\" x=\"" + svg_num(kLeft) + "\" y=\"" + svg_num(y) + "\" width=\"" +
           svg_num(plot_w) + "\" height=\"" + svg_num(kRowHeight) + "\" fill=\"" +
           (r % 2 ? "#ffffff" : "#f3f3f3") + "\"/>\n";
    const std::string name = r < devices.size() ? devices[r] : "(no events)";
    svg += "<text class=\"device\" x=\"" + svg_num(kLeft - 8) + "\" y=\"" +
           svg_num(y + kRowHeight / 2 + 4) + "\" text-anchor=\"end\">" +
           xml_escape(shorten(name, 18)) + "</text>\n";
  }

  // Time axis with grid lines.
  const std::vector<double> ticks = nice_ticks(0, t1 - t0, 10);
  const double step = ticks.size() > 1 ? ticks[1] - ticks[0] : 1;
  svg += "<g class=\"axis\" stroke=\"#999999\">\n";
  svg += "<line x1=\"" + svg_num(kLeft) + "\" y1=\"" + svg_num(axis_y) + "\" x2=\"" +
         svg_num(kLeft + plot_w) + "\" y2=\"" + svg_num(axis_y) + "\"/>\n";
  for (const double v : ticks) {
    const double x = x_of(t0 + v);
    svg += "<line x1=\"" + svg_num(x) + "\" y1=\"" + svg_num(kTop) + "\" x2=\"" + svg_num(x) +
           "\" y2=\"" + svg_num(axis_y) + "\" stroke=\"#dddddd\"/>\n";
    svg += "<line x1=\"" + svg_num(x) + "\" y1=\"" + svg_num(axis_y) + "\" x2=\"" + svg_num(x) +
           "\" y2=\"" + svg_num(axis_y + 5) + "\"/>\n";
  }
  svg += "</g>\n";
  for (const double v : ticks)
    svg += "<text class=\"tick\" x=\"" + svg_num(x_of(t0 + v)) + "\" y=\"" + svg_num(axis_y + 18) +
           "\" text-anchor=\"middle\">" + tick_label(v, step) + "</text>\n";
  svg += "<text class=\"axis-label\" x=\"" + svg_num(kLeft + plot_w / 2) + "\" y=\"" +
         svg_num(axis_y + 36) + "\" text-anchor=\"middle\">time since the first event (s)</text>\n";

  // Events: transfers first, then compute on top.
  for (const bool transfers : {true, false}) {
    for (const TraceEvent& e : events) {
      if (is_compute_kind(e.kind) == transfers) continue;
      const double y = kTop + kRowHeight * static_cast<double>(device_row[e.device]);
      const double start = std::isfinite(e.start) ? e.start : t0;
      const double end = std::isfinite(e.end) ? std::max(e.end, start) : start;
      const double x = x_of(start), w = std::max(x_of(end) - x, 0.5);
      std::string colour = palette_colour(job_index[e.job]);
      if (transfers) colour = lighten(colour, kTransferLighten);
      svg += "<rect class=\"ev\" x=\"" + svg_num(x) + "\" y=\"" +
             svg_num(y + (transfers ? kTransferTop : kComputeTop)) + "\" width=\"" + svg_num(w) +
             "\" height=\"" + svg_num(transfers ? kTransferHeight : kComputeHeight) + "\" fill=\"" +
             colour + "\"><title>" + xml_escape(event_tooltip(e)) + "</title></rect>\n";
    }
  }

  // Legend.
  svg += "<g class=\"legend\">\n";
  for (const Item& it : legend) {
    svg += "<rect class=\"swatch\" x=\"" + svg_num(it.x) + "\" y=\"" + svg_num(it.y - 10) +
           "\" width=\"14\" height=\"12\" fill=\"" + it.colour + "\"/>\n";
    svg += "<text x=\"" + svg_num(it.x + 20) + "\" y=\"" + svg_num(it.y) + "\">" +
           xml_escape(shorten(it.label, 40)) + "</text>\n";
  }
  svg += "<text x=\"" + svg_num(kLeft) + "\" y=\"" + svg_num(axis_y + 56) +
         "\" fill=\"#666666\">upper bars: compute (forward, backward, update, eval); lower bars: "
         "transfers (lighter)</text>\n";
  svg += "</g>\n</svg>\n";
  return svg;
}

void write_gantt_svg(const Trace& trace, const std::string& path, const std::string& title) {
  write_text_file(path, gantt_svg(trace.events(), title), "Gantt SVG");
}

}  // namespace hydra
