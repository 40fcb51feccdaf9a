#pragma once
// A live progress display of a sweep for a terminal.
//
//   ProgressDisplay progress;                  // on stdout
//   progress.update_job({.name = "mlp-lr3", .status = "running", .epoch = 2, .epochs = 10,
//                        .step = 1200, .total_steps = 6000, .last_loss = 0.53});
//   progress.update_device({.name = "cuda:0", .utilisation = 0.87, .current_task = "mlp s1"});
//   progress.render();                         // cheap: rate-limited
//   ...
//   progress.finish();                         // final state, always printed
//
// On a terminal (ANSI mode) every render redraws a block of lines in place: a header, one line
// per job (name, status, epoch and step of their totals, last loss, validation accuracy,
// samples/s) and one line per device (utilisation over the caller's recent window as a bar,
// current task). Elsewhere (plain mode, for CI logs) a render prints one compact line, at most
// one every `plain_interval_s`. All member functions are thread-safe.
#include <cmath>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

namespace hydra {

struct JobProgress {
  std::string name{};                  // the key: a later update with this name replaces it
  std::string status = "waiting";      // free text: waiting, running, done, failed, stopped, ...
  std::int64_t epoch = 0, epochs = 0;  // current epoch (from 1) of `epochs` (0: unknown)
  std::int64_t step = 0, total_steps = 0;  // steps done of `total_steps` (0: unknown)
  double last_loss = std::numeric_limits<double>::quiet_NaN();     // NaN: none yet
  double val_accuracy = std::numeric_limits<double>::quiet_NaN();  // NaN: none yet
  double samples_per_second = 0;                                   // 0: unknown
};

struct DeviceProgress {
  std::string name{};          // the key, e.g. "cuda:0"
  double utilisation = 0;      // busy fraction in [0, 1] over the last window
  std::string current_task{};  // "" when idle
};

struct ProgressDisplayOptions {
  enum class Mode : std::uint8_t { automatic, ansi, plain };
  // automatic: ansi when `out` is std::cout, stdout is a terminal and TERM is not "dumb".
  Mode mode = Mode::automatic;
  std::ostream* out = nullptr;     // nullptr: std::cout
  double ansi_interval_s = 0.2;    // redraw at most this often (finish() always draws)
  double plain_interval_s = 10.0;  // print a line at most this often (finish() always prints)
  int width = 0;  // columns to cut lines at in ANSI mode; 0: the terminal's width (or 120)
  // Seconds on a steady clock; tests substitute their own. Empty: std::chrono::steady_clock.
  std::function<double()> clock{};
};

class ProgressDisplay {
 public:
  explicit ProgressDisplay(ProgressDisplayOptions options = {});
  ProgressDisplay(const ProgressDisplay&) = delete;
  ProgressDisplay& operator=(const ProgressDisplay&) = delete;

  void update_job(const JobProgress& job);
  void update_device(const DeviceProgress& device);
  // Draws (ANSI) or prints a line (plain) unless the last one was less than the mode's
  // interval ago. Returns whether it wrote anything.
  bool render();
  // Draws the final state regardless of the interval: in plain mode the full multi-line block.
  void finish();

  bool ansi() const { return ansi_; }
  // The block shown in ANSI mode, without escape sequences: header, jobs, devices.
  std::vector<std::string> lines() const;
  // The one-line summary printed in plain mode.
  std::string compact_line() const;

 private:
  double now() const;
  std::vector<std::string> lines_locked() const;
  std::string compact_line_locked() const;
  void draw_locked(bool final_frame);

  ProgressDisplayOptions options_;
  std::ostream* out_;
  bool ansi_ = false;
  int width_ = 120;
  double start_ = 0;
  double last_render_ = -1e300;
  std::size_t drawn_lines_ = 0;  // lines of the block currently on screen (ANSI)
  mutable std::mutex mutex_;
  std::vector<JobProgress> jobs_;        // in order of first update
  std::vector<DeviceProgress> devices_;  // in order of first update
};

}  // namespace hydra
