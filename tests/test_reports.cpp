#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "kernels/core/error.hpp"
#include "runtime/duration_format.hpp"
#include "runtime/job_result.hpp"
#include "runtime/progress_display.hpp"
#include "runtime/results_table.hpp"
#include "runtime/svg_common.hpp"
#include "runtime/svg_curves.hpp"
#include "runtime/svg_gantt.hpp"
#include "runtime/trace.hpp"

using namespace hydra;
namespace fs = std::filesystem;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() /
          ("hydra_test_reports_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1))
    ++n;
  return n;
}

// A small XML well-formedness check: one root element, properly nested tags, quoted attribute
// values, known entities only, no '<' in attributes or raw '&'. Returns "" or the problem.
std::string xml_problem(const std::string& x) {
  std::vector<std::string> stack;
  std::size_t i = 0, roots = 0;
  const auto entity_ok = [&](std::size_t at) {
    static const std::regex entity("&(amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);");
    const std::size_t end = x.find(';', at);
    return end != std::string::npos && end - at < 12 &&
           std::regex_match(x.substr(at, end - at + 1), entity);
  };
  const auto is_name = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == ':' ||
           c == '.';
  };
  if (x.rfind("<?xml", 0) == 0) i = x.find("?>") + 2;
  while (i < x.size()) {
    if (x[i] == '&') {
      if (!entity_ok(i)) return "bad entity at " + std::to_string(i);
      ++i;
    } else if (x[i] != '<') {
      if (stack.empty() && !std::isspace(static_cast<unsigned char>(x[i])))
        return "text outside the root at " + std::to_string(i);
      ++i;
    } else if (x.compare(i, 4, "<!--") == 0) {
      const std::size_t end = x.find("-->", i);
      if (end == std::string::npos) return "unterminated comment";
      i = end + 3;
    } else if (x.compare(i, 2, "</") == 0) {
      std::size_t j = i + 2;
      while (j < x.size() && is_name(x[j]))
        ++j;
      const std::string name = x.substr(i + 2, j - i - 2);
      if (j >= x.size() || x[j] != '>') return "bad close tag " + name;
      if (stack.empty() || stack.back() != name)
        return "close tag " + name + " does not match " + (stack.empty() ? "" : stack.back());
      stack.pop_back();
      i = j + 1;
    } else {
      std::size_t j = i + 1;
      while (j < x.size() && is_name(x[j]))
        ++j;
      const std::string name = x.substr(i + 1, j - i - 1);
      if (name.empty()) return "empty tag name at " + std::to_string(i);
      for (;;) {
        while (j < x.size() && std::isspace(static_cast<unsigned char>(x[j])))
          ++j;
        if (j >= x.size()) return "unterminated tag " + name;
        if (x[j] == '>' || x.compare(j, 2, "/>") == 0) break;
        const std::size_t a = j;
        while (j < x.size() && is_name(x[j]))
          ++j;
        if (j == a || j + 1 >= x.size() || x[j] != '=' || x[j + 1] != '"')
          return "bad attribute in " + name + " at " + std::to_string(a);
        const std::size_t close = x.find('"', j + 2);
        if (close == std::string::npos) return "unterminated attribute in " + name;
        for (std::size_t k = j + 2; k < close; ++k) {
          if (x[k] == '<') return "'<' in an attribute of " + name;
          if (x[k] == '&' && !entity_ok(k)) return "bad entity in an attribute of " + name;
        }
        j = close + 1;
      }
      if (stack.empty()) ++roots;
      if (x[j] == '>') {
        stack.push_back(name);
        i = j + 1;
      } else {
        i = j + 2;
      }
    }
  }
  if (!stack.empty()) return "unclosed " + stack.back();
  if (roots != 1) return std::to_string(roots) + " root elements";
  return "";
}

std::string unescape(std::string s) {
  for (const auto& [entity, c] : std::vector<std::pair<std::string, std::string>>{
           {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}, {"&amp;", "&"}})
    for (std::size_t p = s.find(entity); p != std::string::npos; p = s.find(entity, p + 1))
      s.replace(p, entity.size(), c);
  return s;
}

struct Rect {
  double x, width;
  std::string fill, tooltip;
};

// The event rectangles of a Gantt SVG.
std::vector<Rect> event_rects(const std::string& svg) {
  static const std::regex rect(
      "<rect class=\"ev\" x=\"([-0-9.]+)\" y=\"[-0-9.]+\" width=\"([0-9.]+)\" "
      "height=\"[0-9.]+\" fill=\"(#[0-9a-f]{6})\"><title>([^<]*)</title></rect>");
  std::vector<Rect> out;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), rect); it != std::sregex_iterator();
       ++it)
    out.push_back({std::stod((*it)[1]), std::stod((*it)[2]), (*it)[3], unescape((*it)[4])});
  return out;
}

const Rect& rect_for(const std::vector<Rect>& rects, const std::string& tooltip_prefix) {
  for (const Rect& r : rects)
    if (r.tooltip.rfind(tooltip_prefix, 0) == 0) return r;
  FAIL("no rectangle for " << tooltip_prefix);
  return rects.front();
}

std::vector<CurvePoint> points(const std::vector<double>& values, std::int64_t every = 100) {
  std::vector<CurvePoint> out;
  for (std::size_t i = 0; i < values.size(); ++i)
    out.push_back(
        {static_cast<std::int64_t>(i + 1) * every, 0.1 * static_cast<double>(i + 1), values[i]});
  return out;
}

JobResult job(std::string name, JobStatus status, double acc, double loss, std::int64_t best,
              std::map<std::string, std::string> config = {}) {
  JobResult r;
  r.name = std::move(name);
  r.status = status;
  r.best_val_accuracy = acc;
  r.best_val_loss = loss;
  r.best_step = best;
  r.config = std::move(config);
  r.steps = 1000;
  r.seconds = 75.5;
  return r;
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);)
    out.push_back(l);
  return out;
}

}  // namespace

TEST_CASE("the test xml checker rejects malformed documents") {
  CHECK(xml_problem("<svg><g a=\"1\"/><text>a &amp; b</text></svg>") == "");
  CHECK(xml_problem("<svg><g></svg>") != "");
  CHECK(xml_problem("<svg a=\"<\"/>") != "");
  CHECK(xml_problem("<svg>a & b</svg>") != "");
  CHECK(xml_problem("<svg a=1/>") != "");
  CHECK(xml_problem("<svg/><svg/>") != "");
}

TEST_CASE("gantt svg draws one rectangle per event with job colours and a legend") {
  Trace t;
  t.add(TraceEvent{"cuda:1", "mlp <a&b>", 0, "forward", 0, 1});
  t.add(TraceEvent{"cuda:1", "mlp <a&b>", 0, "backward", 1, 3});
  t.add(TraceEvent{"cuda:1", "mlp <a&b>", 1, "load", 3, 4, 2048});
  t.add(TraceEvent{"cuda:0", "cnn", 0, "forward", 5, 6});
  t.add(TraceEvent{"cuda:0", "cnn", 0, "eval", 9, 10});
  t.add(TraceEvent{"cuda:10", "gpt \"big\"", 2, "update", 2, 2});  // zero length: still visible

  const std::string path = temp_path("gantt.svg");
  write_gantt_svg(t, path, "Sweep <1>");
  const std::string svg = read_text(path);
  fs::remove(path);
  CHECK(xml_problem(svg) == "");
  CHECK(svg.find("Sweep &lt;1&gt;") != std::string::npos);

  const std::vector<Rect> rects = event_rects(svg);
  REQUIRE(rects.size() == 6);
  CHECK(count_of(svg, "<rect class=\"ev\"") == 6);
  // Legend and rows: every job and device name, escaped.
  for (const char* s :
       {"mlp &lt;a&amp;b&gt;", "cnn", "gpt &quot;big&quot;", ">cuda:0<", ">cuda:1<", ">cuda:10<"})
    CHECK_MESSAGE(svg.find(s) != std::string::npos, s);
  // Rows in device order: cuda:0 above cuda:1 above cuda:10.
  CHECK(svg.find(">cuda:0<") < svg.find(">cuda:1<"));
  CHECK(svg.find(">cuda:1<") < svg.find(">cuda:10<"));

  // Geometry: x grows with time, width is proportional to duration.
  const Rect& f = rect_for(rects, "mlp <a&b> s0 forward");
  const Rect& b = rect_for(rects, "mlp <a&b> s0 backward");
  const Rect& c = rect_for(rects, "cnn s0 forward");
  const Rect& e = rect_for(rects, "cnn s0 eval");
  CHECK(b.width == doctest::Approx(2 * f.width).epsilon(0.01));
  CHECK(c.width == doctest::Approx(f.width).epsilon(0.01));
  CHECK(b.x == doctest::Approx(f.x + f.width).epsilon(0.001));
  CHECK(e.x - c.x == doctest::Approx(4 * c.width).epsilon(0.01));
  CHECK(rect_for(rects, "gpt").width > 0);
  // Colours: one per job; transfers a lighter shade of their job's colour.
  CHECK(f.fill == b.fill);
  CHECK(f.fill != c.fill);
  const Rect& load = rect_for(rects, "mlp <a&b> s1 load");
  CHECK(load.fill != f.fill);
  CHECK(load.fill == lighten(f.fill, 0.5));
  CHECK(load.tooltip.find("2.00 KiB") != std::string::npos);
  // Time axis ticks 0..10 s.
  CHECK(svg.find(">0</text>") != std::string::npos);
  CHECK(svg.find(">10</text>") != std::string::npos);

  // An empty trace is still a valid document.
  CHECK(xml_problem(gantt_svg({})) == "");
  CHECK(event_rects(gantt_svg({})).empty());
  CHECK_THROWS_WITH_AS(write_gantt_svg(t, temp_path("missing_dir") + "/g.svg"),
                       doctest::Contains("missing_dir/g.svg"), Error);
}

TEST_CASE("curves svg draws a line per job and breaks it at non-finite values") {
  std::vector<JobResult> jobs(3);
  jobs[0].name = "lr=0.1 & wd";
  jobs[0].train_loss = points({2.0, 1.5, 1.2, 1.0});
  jobs[0].val_accuracy = points({0.5, 0.7}, 200);
  jobs[1].name = "diverged";
  jobs[1].train_loss = points({2.0, 3.0, kNaN, 5.0, 6.0});
  jobs[2].name = "empty";

  const std::string path = temp_path("curves.svg");
  write_curves_svg(jobs, Curve::train_loss, path, "Loss <train>");
  const std::string svg = read_text(path);
  fs::remove(path);
  CHECK(xml_problem(svg) == "");
  CHECK(svg.find("Loss &lt;train&gt;") != std::string::npos);
  CHECK(svg.find("lr=0.1 &amp; wd") != std::string::npos);
  CHECK(svg.find(">diverged<") != std::string::npos);
  CHECK(svg.find(">empty<") != std::string::npos);
  // One polyline for the first job, two for the diverged one (the NaN splits it).
  CHECK(count_of(svg, "<polyline") == 3);
  const std::regex polyline("<polyline[^>]*points=\"([^\"]*)\"");
  std::vector<std::size_t> sizes;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), polyline);
       it != std::sregex_iterator(); ++it)
    sizes.push_back(static_cast<std::size_t>(count_of((*it)[1], ",")));
  CHECK(sizes == std::vector<std::size_t>{4, 2, 2});
  // Axes: the x ticks reach step 500, the y axis names the curve.
  CHECK(svg.find(">500</text>") != std::string::npos);
  CHECK(svg.find("training loss") != std::string::npos);

  // Validation accuracy: two points, drawn with markers; the default title is the curve's.
  const std::string acc = curves_svg(jobs, Curve::val_accuracy);
  CHECK(xml_problem(acc) == "");
  CHECK(count_of(acc, "<polyline") == 1);
  CHECK(count_of(acc, "<circle") == 2);
  CHECK(acc.find("<title>validation accuracy</title>") != std::string::npos);

  // No data at all.
  const std::string none = curves_svg(jobs, Curve::val_loss);
  CHECK(xml_problem(none) == "");
  CHECK(none.find("no data") != std::string::npos);
  CHECK_THROWS_AS(write_curves_svg(jobs, Curve::val_loss, "/nonexistent_dir_hydra/c.svg"), Error);
}

TEST_CASE("svg helpers make round ticks and lighter colours") {
  CHECK(nice_ticks(0, 10, 5) == std::vector<double>{0, 2, 4, 6, 8, 10});
  CHECK(nice_ticks(0.13, 0.61, 5) == std::vector<double>{0.2, 0.3, 0.4, 0.5, 0.6});
  CHECK(nice_ticks(3, 3).size() == 1);
  CHECK(nice_ticks(0, kNaN).empty());
  CHECK(tick_label(0.25, 0.05) == "0.25");
  CHECK(tick_label(1000, 500) == "1000");
  CHECK(tick_label(-0.0, 0.1) == "0");
  CHECK(lighten("#000000", 0.5) == "#808080");
  CHECK(lighten("#ff0000", 1.0) == "#ffffff");
  CHECK(palette_colour(0) != palette_colour(1));
  CHECK(palette_colour(0) == palette_colour(12));
  CHECK(svg_num(1.005) == "1");
  CHECK(svg_num(12.5) == "12.5");
  CHECK(shorten("abcdefgh", 6) == "abc...");
  CHECK(shorten("ab\xC3\xA9"
                "cdefgh",
                6) == "ab...");
}

TEST_CASE("results table ranks by the metric and lists failed jobs last") {
  std::vector<JobResult> r = {
      job("mid", JobStatus::done, 0.85, 0.40, 300, {{"lr", "0.01"}}),
      job("broken", JobStatus::failed, 0, 0, -1, {{"lr", "10"}}),
      job("best", JobStatus::stopped, 0.91, 0.45, 500, {{"lr", "0.001"}, {"width", "256"}}),
      job("worst", JobStatus::done, 0.60, 0.30, 100, {{"lr", "0.1"}}),
      job("no-val", JobStatus::done, 0, 0, -1, {}),
  };
  r[1].error = "out of memory on cuda:0\nwhile allocating";

  const std::string table = format_results_table(r, "val_accuracy");
  const std::vector<std::string> lines = split_lines(table);
  REQUIRE(lines.size() >= 9);
  CHECK(lines[0].find("rank") == 0);
  CHECK(lines[0].find("lr") != std::string::npos);
  CHECK(lines[0].find("width") != std::string::npos);
  CHECK(lines[0].find("best val acc") != std::string::npos);
  CHECK(lines[1].find_first_not_of('-') == std::string::npos);
  const auto row_of = [&](const std::string& name) {
    for (std::size_t i = 2; i < lines.size(); ++i)
      if (lines[i].find(" " + name + " ") != std::string::npos) return i;
    return std::size_t{0};
  };
  CHECK(row_of("best") == 2);
  CHECK(row_of("mid") == 3);
  CHECK(row_of("worst") == 4);
  CHECK(row_of("no-val") == 5);
  CHECK(row_of("broken") == 6);
  CHECK(lines[2].find("   1  best") == 0);
  CHECK(lines[2].find("0.9100") != std::string::npos);
  CHECK(lines[2].find("stopped") != std::string::npos);
  CHECK(lines[2].find("1m 16s") != std::string::npos);
  CHECK(lines[5].find("   -  no-val") == 0);
  CHECK(lines[6].find("failed") != std::string::npos);
  CHECK(table.find("failed jobs:\n  broken: out of memory on cuda:0\n    while allocating\n") !=
        std::string::npos);
  // All rows are as wide as the header's columns allow: columns line up.
  CHECK(lines[2].find("0.001") == lines[0].find("lr"));
  CHECK(lines[3].find("0.01") == lines[0].find("lr"));

  const std::vector<std::string> by_loss = split_lines(format_results_table(r, "val_loss"));
  CHECK(by_loss[0].find("best val loss") != std::string::npos);
  CHECK(by_loss[2].find("worst") != std::string::npos);
  CHECK(by_loss[3].find("mid") != std::string::npos);
  CHECK(by_loss[4].find("best") != std::string::npos);
  CHECK(by_loss[6].find("broken") != std::string::npos);

  // A NaN metric is not ranked.
  r.push_back(job("nan", JobStatus::done, kNaN, kNaN, 10));
  const std::vector<std::string> with_nan = split_lines(format_results_table(r));
  CHECK(with_nan[5].find(" nan ") != std::string::npos);
  CHECK(with_nan[5].find("   -  nan") == 0);

  CHECK_THROWS_WITH_AS(format_results_table(r, "accuracy"), doctest::Contains("unknown sort key"),
                       Error);
  CHECK(format_results_table({}).find("(no jobs)") != std::string::npos);
}

TEST_CASE("results and curves csv hold one row per job and per point") {
  std::vector<JobResult> r = {job("a,b", JobStatus::done, 0.9, 0.3, 200, {{"lr", "1e-3"}}),
                              job("c", JobStatus::failed, 0, 0, -1, {{"steps", "5"}})};
  r[0].samples_per_second = 1234.5;
  r[0].checkpoint_path = "/tmp/a.ckpt";
  r[0].train_loss = points({2.5, 1.25});
  r[0].val_accuracy = points({0.9}, 200);
  r[1].error = "bad \"thing\"";
  r[1].best_val_loss = kNaN;
  r[1].val_loss = points({std::numeric_limits<double>::infinity()});

  const std::vector<std::string> rows = split_lines(results_csv(r));
  REQUIRE(rows.size() == 3);
  CHECK(rows[0] ==
        "name,status,lr,config:steps,best_val_accuracy,best_val_loss,best_step,steps,seconds,"
        "samples_per_second,checkpoint_path,error");
  CHECK(rows[1] == "\"a,b\",done,1e-3,,0.9,0.3,200,1000,75.5,1234.5,/tmp/a.ckpt,");
  CHECK(rows[2] == "c,failed,,5,0,nan,-1,1000,75.5,0,,\"bad \"\"thing\"\"\"");

  const std::string path = temp_path("curves.csv");
  write_curves_csv(r, path);
  const std::vector<std::string> curves = split_lines(read_text(path));
  fs::remove(path);
  REQUIRE(curves.size() == 5);
  CHECK(curves[0] == "job,curve,step,epoch,value");
  CHECK(curves[1] == "\"a,b\",train_loss,100,0.1,2.5");
  CHECK(curves[2] == "\"a,b\",train_loss,200,0.2,1.25");
  CHECK(curves[3] == "\"a,b\",val_accuracy,200,0.1,0.9");
  CHECK(curves[4] == "c,val_loss,100,0.1,inf");

  const std::string results_path = temp_path("results.csv");
  write_results_csv(r, results_path);
  CHECK(read_text(results_path) == results_csv(r));
  fs::remove(results_path);
  CHECK_THROWS_WITH_AS(write_results_csv(r, "/nonexistent_dir_hydra/r.csv"),
                       doctest::Contains("/nonexistent_dir_hydra/r.csv"), Error);
}

TEST_CASE("durations format for humans") {
  CHECK(format_duration(0.4219) == "0.42 s");
  CHECK(format_duration(12.34) == "12.3 s");
  CHECK(format_duration(245) == "4m 05s");
  CHECK(format_duration(7389) == "2h 03m 09s");
  CHECK(format_duration(-1) == "-");
  CHECK(format_duration(kNaN) == "-");
}

TEST_CASE("progress display prints rate-limited compact lines when not on a terminal") {
  std::ostringstream out;
  double clock = 100;
  ProgressDisplay p({.mode = ProgressDisplayOptions::Mode::plain,
                     .out = &out,
                     .plain_interval_s = 10,
                     .clock = [&] { return clock; }});
  CHECK_FALSE(p.ansi());
  p.update_job({.name = "mlp-a",
                .status = "running",
                .epoch = 2,
                .epochs = 10,
                .step = 1200,
                .total_steps = 6000,
                .last_loss = 0.53214,
                .val_accuracy = 0.8712,
                .samples_per_second = 1234});
  p.update_job({.name = "cnn-b"});
  p.update_device({.name = "cuda:1", .utilisation = 0.25});
  p.update_device({.name = "cuda:0", .utilisation = 0.87, .current_task = "mlp-a s1 forward"});

  CHECK(p.render());
  clock = 105;
  CHECK_FALSE(p.render());
  clock = 110;
  p.update_job({.name = "mlp-a",
                .status = "done",
                .epoch = 10,
                .epochs = 10,
                .step = 6000,
                .total_steps = 6000,
                .last_loss = 0.25});
  CHECK(p.render());
  const std::vector<std::string> printed = split_lines(out.str());
  REQUIRE(printed.size() == 2);
  CHECK(printed[0].find("[hydra 0.00 s]") == 0);
  CHECK(printed[0].find("mlp-a running e2/10 20% loss 0.5321 acc 0.8712") != std::string::npos);
  CHECK(printed[0].find("cnn-b waiting") != std::string::npos);
  CHECK(printed[0].find("cuda:0 87% cuda:1 25%") != std::string::npos);
  CHECK(printed[1].find("[hydra 10.0 s]") == 0);
  CHECK(printed[1].find("mlp-a done e10/10 100% loss 0.25") != std::string::npos);
  CHECK(out.str().find('\x1b') == std::string::npos);

  // The block: header, a line per job (replaced, not duplicated), a line per device in order.
  const std::vector<std::string> block = p.lines();
  REQUIRE(block.size() == 5);
  CHECK(block[0].find("2 jobs (1 done, 1 waiting)") != std::string::npos);
  CHECK(block[1].find("mlp-a") != std::string::npos);
  CHECK(block[1].find("epoch 10/10") != std::string::npos);
  CHECK(block[1].find("step 6000/6000 (100%)") != std::string::npos);
  CHECK(block[1].find("loss 0.2500") != std::string::npos);
  CHECK(block[2].find("cnn-b") != std::string::npos);
  CHECK(block[2].find("loss -") != std::string::npos);
  CHECK(block[3].find("cuda:0  [#################...]  87%  mlp-a s1 forward") !=
        std::string::npos);
  CHECK(block[4].find("cuda:1  [#####...............]  25%  idle") != std::string::npos);

  // finish() prints the whole block regardless of the interval.
  p.finish();
  CHECK(split_lines(out.str()).size() == 2 + 5);
}

TEST_CASE("progress display redraws in place with ANSI escapes") {
  std::ostringstream out;
  double clock = 0;
  ProgressDisplay p({.mode = ProgressDisplayOptions::Mode::ansi,
                     .out = &out,
                     .ansi_interval_s = 0.5,
                     .width = 60,
                     .clock = [&] { return clock; }});
  CHECK(p.ansi());
  p.update_job({.name = std::string(100, 'x'), .status = "running", .step = 5});
  p.update_device({.name = "cpu:0", .utilisation = 1.5});
  CHECK(p.render());
  const std::string first = out.str();
  CHECK(first.find("\x1b[2K") != std::string::npos);
  CHECK(first.find("\x1b[3A") == std::string::npos);  // nothing to move over yet
  for (const std::string& l : p.lines())
    CHECK(l.size() <= 59);                                // cut to the width
  CHECK(p.lines()[2].find("100%") != std::string::npos);  // utilisation clamped
  clock = 0.1;
  CHECK_FALSE(p.render());
  clock = 1;
  out.str("");
  CHECK(p.render());
  const std::string second = out.str();
  CHECK(second.find("\r\x1b[3A") == 0);  // back over the three lines drawn before
  CHECK(count_of(second, "\x1b[2K") == 3);
  CHECK(second.find("\x1b[J") != std::string::npos);
}

TEST_CASE("progress display updates are thread-safe") {
  std::ostringstream out;
  ProgressDisplay p(
      {.mode = ProgressDisplayOptions::Mode::ansi, .out = &out, .ansi_interval_s = 0});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int k = 0; k < 300; ++k) {
        p.update_job(
            {.name = "job" + std::to_string(t * 10 + k % 10), .status = "running", .step = k});
        p.update_device({.name = "cpu:" + std::to_string(t), .utilisation = 0.5});
        if (k % 50 == 0) p.render();
      }
    });
  for (auto& th : threads)
    th.join();
  const std::vector<std::string> block = p.lines();
  CHECK(block.size() == 1 + 40 + 4);
  CHECK(block[0].find("40 jobs (40 running)") != std::string::npos);
}
