#include "runtime/results_table.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "kernels/core/error.hpp"
#include "runtime/duration_format.hpp"
#include "runtime/text_escape.hpp"
#include "runtime/text_file.hpp"

namespace hydra {

namespace {

std::vector<std::string> config_keys(const std::vector<JobResult>& results) {
  std::set<std::string> keys;
  for (const JobResult& r : results)
    for (const auto& [k, v] : r.config)
      keys.insert(k);
  return {keys.begin(), keys.end()};
}

std::string fixed(double v, int decimals) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string csv_number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

// Display width: UTF-8 code points (continuation bytes do not count).
std::size_t width_of(const std::string& s) {
  std::size_t w = 0;
  for (const char c : s)
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++w;
  return w;
}

// Table cells on one line: no control characters.
std::string one_line(const std::string& s) {
  std::string out = sanitize_utf8(s);
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = ' ';
  return out;
}

}  // namespace

std::string format_results_table(std::vector<JobResult> results, const std::string& sort_key) {
  const bool by_accuracy = sort_key == "val_accuracy";
  if (!by_accuracy && sort_key != "val_loss")
    throw Error("format_results_table: unknown sort key \"" + sort_key +
                "\" (use \"val_accuracy\" or \"val_loss\")");
  const auto metric = [&](const JobResult& r) {
    return by_accuracy ? r.best_val_accuracy : r.best_val_loss;
  };
  // 0: ranked, 1: no usable validation point, 2: failed.
  const auto group = [&](const JobResult& r) {
    if (r.status == JobStatus::failed) return 2;
    if (r.best_step < 0 || !std::isfinite(metric(r))) return 1;
    return 0;
  };
  std::stable_sort(results.begin(), results.end(), [&](const JobResult& a, const JobResult& b) {
    const int ga = group(a), gb = group(b);
    if (ga != gb) return ga < gb;
    if (ga == 0 && metric(a) != metric(b))
      return by_accuracy ? metric(a) > metric(b) : metric(a) < metric(b);
    return a.name < b.name;
  });

  const std::vector<std::string> keys = config_keys(results);
  std::vector<std::string> header = {"rank", "name"};
  header.insert(header.end(), keys.begin(), keys.end());
  const std::vector<std::string> tail = {by_accuracy ? "best val acc" : "best val loss",
                                         by_accuracy ? "val loss" : "val acc",
                                         "best step",
                                         "steps",
                                         "time",
                                         "status"};
  header.insert(header.end(), tail.begin(), tail.end());
  const std::size_t first_numeric = 2 + keys.size();  // right-aligned from here on, but status

  std::vector<std::vector<std::string>> rows;
  int rank = 0;
  for (const JobResult& r : results) {
    std::vector<std::string> row;
    const bool ranked = group(r) == 0;
    row.push_back(ranked ? std::to_string(++rank) : "-");
    row.push_back(one_line(r.name));
    for (const std::string& k : keys) {
      const auto it = r.config.find(k);
      row.push_back(it == r.config.end() ? "" : one_line(it->second));
    }
    const bool has_val = r.status != JobStatus::failed && r.best_step >= 0;
    const double other = by_accuracy ? r.best_val_loss : r.best_val_accuracy;
    row.push_back(has_val ? fixed(metric(r), 4) : "-");
    row.push_back(has_val ? fixed(other, 4) : "-");
    row.push_back(r.best_step >= 0 ? std::to_string(r.best_step) : "-");
    row.push_back(std::to_string(r.steps));
    row.push_back(format_duration(r.seconds));
    row.push_back(job_status_name(r.status));
    rows.push_back(std::move(row));
  }

  std::vector<std::size_t> widths(header.size());
  for (std::size_t c = 0; c < header.size(); ++c) {
    widths[c] = width_of(header[c]);
    for (const auto& row : rows)
      widths[c] = std::max(widths[c], width_of(row[c]));
  }
  const auto format_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      const std::string pad(widths[c] - width_of(row[c]), ' ');
      const bool right = c == 0 || (c >= first_numeric && c + 1 < row.size());
      if (c > 0) line += "  ";
      line += right ? pad + row[c] : row[c] + (c + 1 < row.size() ? pad : "");
    }
    return line + "\n";
  };
  std::string out = format_row(header);
  std::size_t total = 0;
  for (const std::size_t w : widths)
    total += w;
  out += std::string(total + 2 * (widths.size() - 1), '-') + "\n";
  for (const auto& row : rows)
    out += format_row(row);
  if (results.empty()) out += "(no jobs)\n";

  bool any_failed = false;
  for (const JobResult& r : results) {
    if (r.status != JobStatus::failed) continue;
    if (!any_failed) out += "\nfailed jobs:\n";
    any_failed = true;
    std::string error = sanitize_utf8(r.error.empty() ? "(no error message)" : r.error);
    // Indent continuation lines of a multi-line error.
    std::string indented;
    for (const char c : error) {
      indented += c;
      if (c == '\n') indented += "    ";
    }
    out += "  " + one_line(r.name) + ": " + indented + "\n";
  }
  return out;
}

std::string results_csv(const std::vector<JobResult>& results) {
  const std::vector<std::string> fixed_before = {"name", "status"};
  const std::vector<std::string> fixed_after = {
      "best_val_accuracy", "best_val_loss",      "best_step",       "steps",
      "seconds",           "samples_per_second", "checkpoint_path", "error"};
  const std::vector<std::string> keys = config_keys(results);
  std::string out;
  std::vector<std::string> header = fixed_before;
  for (const std::string& k : keys) {
    const bool clash =
        std::find(fixed_before.begin(), fixed_before.end(), k) != fixed_before.end() ||
        std::find(fixed_after.begin(), fixed_after.end(), k) != fixed_after.end();
    header.push_back(clash ? "config:" + k : k);
  }
  header.insert(header.end(), fixed_after.begin(), fixed_after.end());
  for (std::size_t i = 0; i < header.size(); ++i) {
    if (i) out += ',';
    out += csv_field(sanitize_utf8(header[i]));
  }
  out += "\n";
  for (const JobResult& r : results) {
    std::vector<std::string> row = {r.name, job_status_name(r.status)};
    for (const std::string& k : keys) {
      const auto it = r.config.find(k);
      row.push_back(it == r.config.end() ? "" : it->second);
    }
    row.push_back(csv_number(r.best_val_accuracy));
    row.push_back(csv_number(r.best_val_loss));
    row.push_back(std::to_string(r.best_step));
    row.push_back(std::to_string(r.steps));
    row.push_back(csv_number(r.seconds));
    row.push_back(csv_number(r.samples_per_second));
    row.push_back(r.checkpoint_path);
    row.push_back(r.error);
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (i) out += ',';
      out += csv_field(sanitize_utf8(row[i]));
    }
    out += "\n";
  }
  return out;
}

std::string curves_csv(const std::vector<JobResult>& results) {
  std::string out = "job,curve,step,epoch,value\n";
  for (const JobResult& r : results) {
    const std::string job = csv_field(sanitize_utf8(r.name));
    for (const Curve c : {Curve::train_loss, Curve::val_loss, Curve::val_accuracy})
      for (const CurvePoint& p : curve_points(r, c))
        out += job + "," + curve_name(c) + "," + std::to_string(p.step) + "," +
               csv_number(p.epoch) + "," + csv_number(p.value) + "\n";
  }
  return out;
}

void write_results_csv(const std::vector<JobResult>& results, const std::string& path) {
  write_text_file(path, results_csv(results), "results CSV");
}

void write_curves_csv(const std::vector<JobResult>& results, const std::string& path) {
  write_text_file(path, curves_csv(results), "curves CSV");
}

}  // namespace hydra
