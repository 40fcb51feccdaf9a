#include "runtime/progress_display.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>

#include "runtime/duration_format.hpp"
#include "runtime/trace.hpp"  // device_name_less

namespace hydra {

namespace {

constexpr std::size_t kNameWidth = 28;  // job names are cut to this in the block
constexpr int kBarWidth = 20;
constexpr std::size_t kCompactJobs = 6;  // jobs named in a plain-mode line

// Code points of a UTF-8 string (continuation bytes do not count).
std::size_t width_of(const std::string& s) {
  std::size_t w = 0;
  for (const char c : s)
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++w;
  return w;
}

// At most `columns` code points; control characters become spaces (they would break the block).
std::string cut(const std::string& s, std::size_t columns) {
  std::string out;
  std::size_t w = 0;
  for (const char c : s) {
    const bool continuation = (static_cast<unsigned char>(c) & 0xC0) == 0x80;
    if (!continuation && ++w > columns) break;
    out += static_cast<unsigned char>(c) < 0x20 || c == 0x7F ? ' ' : c;
  }
  return out;
}

std::string pad(const std::string& s, std::size_t width) {
  const std::size_t w = width_of(s);
  return w >= width ? s : s + std::string(width - w, ' ');
}

std::string num(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string of_total(std::int64_t done, std::int64_t total) {
  std::string s = std::to_string(done);
  if (total > 0) {
    s += '/';
    s += std::to_string(total);
  }
  return s;
}

// s += parts... without temporaries (and without GCC 12's false -Wrestrict on "a" + string).
template <class... Parts>
void append(std::string& s, const Parts&... parts) {
  (s.append(parts), ...);
}

std::string percent(double fraction) {
  return num("%3.0f%%", std::clamp(fraction, 0.0, 1.0) * 100);
}

}  // namespace

ProgressDisplay::ProgressDisplay(ProgressDisplayOptions options)
    : options_(std::move(options)), out_(options_.out ? options_.out : &std::cout) {
  using Mode = ProgressDisplayOptions::Mode;
  if (options_.mode == Mode::automatic) {
    const char* term = std::getenv("TERM");
    ansi_ = out_ == &std::cout && ::isatty(STDOUT_FILENO) == 1 &&
            !(term && std::strcmp(term, "dumb") == 0);
  } else {
    ansi_ = options_.mode == Mode::ansi;
  }
  width_ = options_.width > 0 ? options_.width : 120;
  if (options_.width <= 0 && ansi_ && out_ == &std::cout) {
    winsize ws{};
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 10) width_ = ws.ws_col;
  }
  start_ = now();
}

double ProgressDisplay::now() const {
  if (options_.clock) return options_.clock();
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void ProgressDisplay::update_job(const JobProgress& job) {
  std::lock_guard lock(mutex_);
  for (JobProgress& j : jobs_)
    if (j.name == job.name) {
      j = job;
      return;
    }
  jobs_.push_back(job);
}

void ProgressDisplay::update_device(const DeviceProgress& device) {
  std::lock_guard lock(mutex_);
  for (DeviceProgress& d : devices_)
    if (d.name == device.name) {
      d = device;
      return;
    }
  devices_.push_back(device);
}

std::vector<std::string> ProgressDisplay::lines() const {
  std::lock_guard lock(mutex_);
  return lines_locked();
}

std::string ProgressDisplay::compact_line() const {
  std::lock_guard lock(mutex_);
  return compact_line_locked();
}

std::vector<std::string> ProgressDisplay::lines_locked() const {
  std::vector<std::string> out;
  // Header: elapsed time and job counts by status, in order of first appearance.
  std::vector<std::pair<std::string, int>> counts;
  for (const JobProgress& j : jobs_) {
    auto it = std::find_if(counts.begin(), counts.end(),
                           [&](const auto& c) { return c.first == j.status; });
    if (it == counts.end())
      counts.emplace_back(j.status, 1);
    else
      ++it->second;
  }
  std::string header = "Hydra  elapsed " + format_duration(now() - start_) + "  " +
                       std::to_string(jobs_.size()) + (jobs_.size() == 1 ? " job" : " jobs");
  for (std::size_t i = 0; i < counts.size(); ++i)
    header += (i ? ", " : " (") + std::to_string(counts[i].second) + " " + counts[i].first +
              (i + 1 == counts.size() ? ")" : "");
  out.push_back(header);

  // Jobs as aligned columns: name, status, epoch, step, loss, val acc, samples/s (a column
  // that no job has is left out).
  std::vector<std::vector<std::string>> cells;
  for (const JobProgress& j : jobs_) {
    std::vector<std::string> c;
    c.push_back(cut(j.name, kNameWidth));
    c.push_back(j.status);
    c.push_back(j.epoch > 0 || j.epochs > 0 ? "epoch " + of_total(j.epoch, j.epochs) : "");
    std::string step = "step " + of_total(j.step, j.total_steps);
    if (j.total_steps > 0)
      append(step, " (",
             num("%.0f%%", 100.0 * std::clamp(static_cast<double>(j.step) /
                                                  static_cast<double>(j.total_steps),
                                              0.0, 1.0)),
             ")");
    c.push_back(step);
    c.push_back("loss " + (std::isfinite(j.last_loss) ? num("%.4f", j.last_loss)
                           : std::isnan(j.last_loss)  ? std::string("-")
                                                      : num("%g", j.last_loss)));
    c.push_back("val acc " +
                (std::isfinite(j.val_accuracy) ? num("%.4f", j.val_accuracy) : std::string("-")));
    c.push_back(j.samples_per_second > 0 ? num("%.0f", j.samples_per_second) + " samples/s" : "");
    cells.push_back(std::move(c));
  }
  std::vector<std::size_t> widths(7, 0);
  for (const auto& c : cells)
    for (std::size_t k = 0; k < c.size(); ++k)
      widths[k] = std::max(widths[k], width_of(c[k]));
  for (const auto& c : cells) {
    std::string line;
    for (std::size_t k = 0; k < c.size(); ++k)
      if (widths[k] > 0) append(line, "  ", pad(c[k], widths[k]));
    while (!line.empty() && line.back() == ' ')
      line.pop_back();
    out.push_back(line);
  }

  std::vector<const DeviceProgress*> devices;
  for (const DeviceProgress& d : devices_)
    devices.push_back(&d);
  std::stable_sort(devices.begin(), devices.end(),
                   [](const DeviceProgress* a, const DeviceProgress* b) {
                     return device_name_less(a->name, b->name);
                   });
  std::size_t device_w = 6;
  for (const DeviceProgress* d : devices)
    device_w = std::max(device_w, width_of(d->name));
  for (const DeviceProgress* d : devices) {
    const double u = std::isfinite(d->utilisation) ? std::clamp(d->utilisation, 0.0, 1.0) : 0.0;
    const int filled = static_cast<int>(std::lround(u * kBarWidth));
    out.push_back("  " + pad(d->name, device_w) + "  [" + std::string(filled, '#') +
                  std::string(kBarWidth - filled, '.') + "] " + percent(u) + "  " +
                  (d->current_task.empty() ? "idle" : d->current_task));
  }
  for (std::string& l : out)
    l = cut(l, static_cast<std::size_t>(std::max(width_ - 1, 20)));
  return out;
}

std::string ProgressDisplay::compact_line_locked() const {
  std::string line = "[hydra " + format_duration(now() - start_) + "]";
  std::map<std::string, int> counts;
  for (const JobProgress& j : jobs_)
    ++counts[j.status];
  for (const auto& [status, n] : counts) {
    line += ' ';
    line += std::to_string(n);
    line += ' ';
    line += status;
  }
  // Running jobs first (they change), then the others, up to kCompactJobs.
  std::vector<const JobProgress*> shown;
  for (const bool running : {true, false})
    for (const JobProgress& j : jobs_)
      if ((j.status == "running") == running) shown.push_back(&j);
  const std::size_t n = std::min(shown.size(), kCompactJobs);
  for (std::size_t i = 0; i < n; ++i) {
    const JobProgress& j = *shown[i];
    append(line, " | ", cut(j.name, kNameWidth), " ", j.status);
    if (j.epochs > 0 || j.epoch > 0) append(line, " e", of_total(j.epoch, j.epochs));
    if (j.total_steps > 0)
      append(
          line, " ",
          num("%.0f%%", 100.0 * static_cast<double>(j.step) / static_cast<double>(j.total_steps)));
    else if (j.step > 0)
      append(line, " s", std::to_string(j.step));
    if (!std::isnan(j.last_loss)) append(line, " loss ", num("%.4g", j.last_loss));
    if (std::isfinite(j.val_accuracy)) append(line, " acc ", num("%.4f", j.val_accuracy));
  }
  if (shown.size() > n) append(line, " | +", std::to_string(shown.size() - n), " more");
  if (!devices_.empty()) {
    line += " |";
    std::vector<const DeviceProgress*> devices;
    for (const DeviceProgress& d : devices_)
      devices.push_back(&d);
    std::stable_sort(devices.begin(), devices.end(),
                     [](const DeviceProgress* a, const DeviceProgress* b) {
                       return device_name_less(a->name, b->name);
                     });
    for (const DeviceProgress* d : devices) {
      const double u = std::isfinite(d->utilisation) ? d->utilisation : 0.0;
      append(line, " ", d->name, " ", num("%.0f%%", std::clamp(u, 0.0, 1.0) * 100));
    }
  }
  return cut(line, 4096);
}

void ProgressDisplay::draw_locked(bool final_frame) {
  std::ostream& os = *out_;
  if (ansi_) {
    const std::vector<std::string> block = lines_locked();
    std::string s;
    // Back to the first line of the previous block, then overwrite it line by line and clear
    // whatever is left below (a previous block may have been longer).
    if (drawn_lines_ > 0) s += "\r\x1b[" + std::to_string(drawn_lines_) + "A";
    for (const std::string& l : block)
      s += "\x1b[2K" + l + "\n";
    s += "\x1b[J";
    os << s << std::flush;
    drawn_lines_ = final_frame ? 0 : block.size();
  } else if (final_frame) {
    std::string s;
    for (const std::string& l : lines_locked())
      s += l + "\n";
    os << s << std::flush;
  } else {
    os << compact_line_locked() + "\n" << std::flush;
  }
}

bool ProgressDisplay::render() {
  std::lock_guard lock(mutex_);
  const double t = now();
  const double interval = ansi_ ? options_.ansi_interval_s : options_.plain_interval_s;
  if (t - last_render_ < interval) return false;
  last_render_ = t;
  draw_locked(false);
  return true;
}

void ProgressDisplay::finish() {
  std::lock_guard lock(mutex_);
  last_render_ = now();
  draw_locked(true);
}

}  // namespace hydra
