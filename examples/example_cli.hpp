#pragma once
// Shared by the example programs: a small command-line flag parser with --help and precise
// errors, device options for hydra::run, and the run summaries the examples print (utilisation,
// bytes moved, output files).
//
//   long long epochs = 2;
//   std::string policy = "lrtf";
//   examples::Flags flags("sweep", "Trains many models at once.");
//   flags.add_int("--epochs", &epochs, 1, 1000, "N", "epochs per model");
//   flags.add_choice("--policy", &policy, {"lrtf", "fifo", "random"}, "scheduling policy");
//   if (!flags.parse(argc, argv)) return 0;   // --help printed
//   // an unknown flag or a bad value throws examples::UsageError naming the flag
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "actors/hydra.hpp"
#include "runtime/results_table.hpp"
#include "runtime/svg_curves.hpp"
#include "runtime/svg_gantt.hpp"
#include "runtime/trace.hpp"

namespace examples {

// A bad command line; main() prints it with a pointer to --help and exits with status 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Flags {
 public:
  Flags(std::string program, std::string summary)
      : program_(std::move(program)), summary_(std::move(summary)) {}

  // An integer flag with a value in [lo, hi].
  void add_int(const std::string& name, long long* target, long long lo, long long hi,
               const std::string& metavar, const std::string& help) {
    const std::string range =
        "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    add(name, metavar, help, std::to_string(*target), [=](const std::string& v) {
      errno = 0;
      char* end = nullptr;
      const long long x = std::strtoll(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || errno == ERANGE || x < lo || x > hi)
        throw UsageError(name + ": expected " + range + ", got '" + v + "'");
      *target = x;
    });
  }
  // A floating-point flag with a value in [lo, hi].
  void add_double(const std::string& name, double* target, double lo, double hi,
                  const std::string& metavar, const std::string& help) {
    std::ostringstream range;
    range << "a number in [" << lo << ", " << hi << "]";
    std::ostringstream def;
    def << *target;
    add(name, metavar, help, def.str(), [=, r = range.str()](const std::string& v) {
      errno = 0;
      char* end = nullptr;
      const double x = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(x) || x < lo || x > hi)
        throw UsageError(name + ": expected " + r + ", got '" + v + "'");
      *target = x;
    });
  }
  // A flag whose value is one of `choices`.
  void add_choice(const std::string& name, std::string* target, std::vector<std::string> choices,
                  const std::string& help) {
    std::string metavar;
    for (const std::string& c : choices)
      metavar += (metavar.empty() ? "" : "|") + c;
    add(name, metavar, help, *target, [=](const std::string& v) {
      if (std::find(choices.begin(), choices.end(), v) == choices.end())
        throw UsageError(name + ": '" + v + "' is not one of " + join(choices, ", "));
      *target = v;
    });
  }
  // A free-form string flag (a path, a prompt); `non_empty` rejects "".
  void add_string(const std::string& name, std::string* target, const std::string& metavar,
                  const std::string& help, bool non_empty = true) {
    add(name, metavar, help, target->empty() ? "" : "'" + *target + "'", [=](const std::string& v) {
      if (non_empty && v.empty()) throw UsageError(name + ": expected a non-empty " + metavar);
      *target = v;
    });
  }
  // A switch without a value.
  void add_switch(const std::string& name, bool* target, const std::string& help) {
    Flag f;
    f.name = name;
    f.help = help;
    f.is_switch = true;
    f.set = [target](const std::string&) { *target = true; };
    flags_.push_back(std::move(f));
  }

  // Parses argv (values as "--flag VALUE" or "--flag=VALUE"). Returns false after printing the
  // usage for --help / -h. Throws UsageError for an unknown flag, a missing or a bad value.
  bool parse(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      if (arg == "--help" || arg == "-h") {
        std::fputs(usage().c_str(), stdout);
        return false;
      }
      std::string value;
      bool has_value = false;
      if (const auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
        value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
        has_value = true;
      }
      Flag* f = find(arg);
      if (f == nullptr) {
        std::vector<std::string> names{"--help"};
        for (const Flag& g : flags_)
          names.push_back(g.name);
        throw UsageError("unknown flag '" + arg + "'; the flags are " + join(names, ", "));
      }
      if (f->is_switch) {
        if (has_value) throw UsageError(arg + " takes no value");
      } else if (!has_value) {
        if (i + 1 >= argc) throw UsageError(arg + " needs a value (" + f->metavar + ")");
        value = argv[++i];
      }
      f->set(value);
      given_.push_back(arg);
    }
    return true;
  }

  bool given(const std::string& name) const {
    return std::find(given_.begin(), given_.end(), name) != given_.end();
  }

  std::string usage() const {
    std::string out = "usage: " + program_ + " [flags]\n" + summary_ + "\n\nflags:\n";
    std::size_t width = 6;  // "--help"
    for (const Flag& f : flags_)
      width = std::max(width, head(f).size());
    // The help text wrapped at 100 columns, continuation lines indented under it.
    auto line = [&](const std::string& h, const std::string& text) {
      const std::size_t indent = width + 4, room = indent < 60 ? 100 - indent : 40;
      std::string row = "  " + h + std::string(width - h.size() + 2, ' ');
      std::size_t used = 0;
      std::istringstream words(text);
      for (std::string w; words >> w;) {
        if (used > 0 && used + 1 + w.size() > room) {
          out += row + "\n";
          row = std::string(indent, ' ');
          used = 0;
        }
        row += (used > 0 ? " " : "") + w;
        used += (used > 0 ? 1 : 0) + w.size();
      }
      out += row + "\n";
    };
    // The default is shown unless the help text already says it.
    for (const Flag& f : flags_)
      line(head(f), f.help + (f.is_switch || f.default_value.empty() ||
                                      f.help.find("(default") != std::string::npos
                                  ? std::string()
                                  : " (default " + f.default_value + ")"));
    line("--help", "print this help and exit");
    return out;
  }

 private:
  struct Flag {
    std::string name, metavar, help, default_value;
    bool is_switch = false;
    std::function<void(const std::string&)> set;
  };

  void add(const std::string& name, const std::string& metavar, const std::string& help,
           const std::string& default_value, std::function<void(const std::string&)> set) {
    Flag f;
    f.name = name;
    f.metavar = metavar;
    f.help = help;
    f.default_value = default_value;
    f.set = std::move(set);
    flags_.push_back(std::move(f));
  }
  Flag* find(const std::string& name) {
    for (Flag& f : flags_)
      if (f.name == name) return &f;
    return nullptr;
  }
  static std::string head(const Flag& f) { return f.is_switch ? f.name : f.name + " " + f.metavar; }
  static std::string join(const std::vector<std::string>& parts, const std::string& sep) {
    std::string out;
    for (const std::string& p : parts)
      out += (out.empty() ? "" : sep) + p;
    return out;
  }

  std::string program_, summary_;
  std::vector<Flag> flags_;
  std::vector<std::string> given_;
};

// --devices, --device-memory and --policy as the sweeps take them (make_devices() turns the first
// two into DeviceSpecs).
inline void add_device_flags(Flags& f, long long* devices, long long* device_memory_mib,
                             std::string* policy) {
  f.add_int("--devices", devices, 1, 64, "N",
            "train on N virtual CPU devices cpu:0..N-1 (default: all GPUs, else 2 virtual CPU "
            "devices)");
  f.add_int("--device-memory", device_memory_mib, 1, 1 << 20, "MiB",
            "memory budget of every device; models are cut into shards that fit half of it "
            "(default: unlimited on virtual CPU devices, the whole memory on GPUs)");
  f.add_choice("--policy", policy, {"lrtf", "fifo", "random"},
               "scheduling policy: lrtf (longest remaining time first), fifo or random");
}

// The shape of every example's main(): parse the flags into Options (exit 0 after --help), then
// run `body(options)`. A UsageError (from the flags or from checks in the body) becomes
// "<program>: <what>\n(see --help)" and exit 2; any other exception "<program>: <what>", exit 1.
template <class Options, class Parse, class Body>
int run_program(const char* program, int argc, char** argv, Parse parse, Body body) {
  try {
    Options options;
    if (!parse(argc, argv, options)) return 0;
    return body(options);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "%s: %s\n(see --help)\n", program, e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
    return 1;
  }
}

// Throws UsageError unless `train` + `val` images fit the 60000 Fashion-MNIST training images.
inline void check_fashion_mnist_samples(long long train, long long val) {
  if (train + val > 60000)
    throw UsageError("--train-samples + --val-samples: " + std::to_string(train + val) +
                     " exceeds the 60000 training images");
}

// A seeded shuffle of `all` (the training set): the first `train` samples for training, the last
// `val` held out for validation (the test set stays untouched).
inline hydra::DataSplits seeded_split(const hydra::Dataset& all, long long train, long long val,
                                      long long seed) {
  const std::vector<std::int64_t> perm =
      hydra::seeded_permutation(all.size(), static_cast<std::uint64_t>(seed));
  return {all.subset({perm.begin(), perm.begin() + train}),
          all.subset({perm.end() - val, perm.end()})};
}

// Seconds of steady-clock time since `t`.
inline double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Devices for hydra::run: `virtual_cpus` > 0 gives cpu:0..N-1, else hydra::default_devices()
// (all GPUs, or two virtual CPU devices). `memory_mib` > 0 sets every device's budget.
inline std::vector<hydra::DeviceSpec> make_devices(long long virtual_cpus, long long memory_mib) {
  std::vector<hydra::DeviceSpec> devices;
  if (virtual_cpus > 0) {
    for (long long i = 0; i < virtual_cpus; ++i)
      devices.push_back({hydra::Device::cpu(static_cast<int>(i)), 0});
  } else {
    devices = hydra::default_devices();
  }
  for (hydra::DeviceSpec& d : devices)
    if (memory_mib > 0) d.memory_bytes = static_cast<std::size_t>(memory_mib) << 20;
  return devices;
}

inline std::string mib(double bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / (1024.0 * 1024.0));
  return buf;
}

inline std::string percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100.0 * fraction);
  return buf;
}

// Totals over a run's trace: compute (forward, backward, update, eval) and transfers (load,
// store), in seconds summed over devices, and bytes moved host <-> device.
struct TraceTotals {
  double compute_s = 0, load_s = 0, store_s = 0;
  std::size_t load_bytes = 0, store_bytes = 0;
  std::size_t tasks = 0;
  std::map<std::string, double> compute_by_device;
  double transfer_share() const {
    const double all = compute_s + load_s + store_s;
    return all > 0 ? (load_s + store_s) / all : 0.0;
  }
};

inline TraceTotals trace_totals(const std::vector<hydra::TraceEvent>& events) {
  TraceTotals t;
  for (const hydra::TraceEvent& e : events) {
    const double d = std::max(0.0, e.end - e.start);
    if (e.kind == "load") {
      t.load_s += d;
      t.load_bytes += e.bytes;
    } else if (e.kind == "store") {
      t.store_s += d;
      t.store_bytes += e.bytes;
    } else if (hydra::is_compute_kind(e.kind)) {
      t.compute_s += d;
      t.compute_by_device[e.device] += d;
      ++t.tasks;
    }
  }
  return t;
}

// "cpu:0 97.1%  cpu:1 95.3%" plus the scheduler's counters, one line.
inline std::string utilisation_line(const hydra::RunReport& r) {
  std::string out;
  for (const auto& [device, u] : r.utilisation)
    out += (out.empty() ? "" : "  ") + device + " " + percent(u);
  return out.empty() ? "(no tasks ran)" : out;
}

inline void print_utilisation(const hydra::RunReport& r) {
  std::printf("Device utilisation (busy fraction of the run's trace, compute only):\n");
  for (const auto& [device, u] : r.utilisation) {
    const int bar = static_cast<int>(std::lround(30.0 * std::clamp(u, 0.0, 1.0)));
    std::printf("  %-8s %6.1f%%  [%s%s]\n", device.c_str(), 100.0 * u,
                std::string(static_cast<std::size_t>(bar), '#').c_str(),
                std::string(static_cast<std::size_t>(30 - bar), '.').c_str());
  }
  const auto n = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
  std::printf(
      "  scheduler: %llu tasks to idle devices, %llu into a busy device's lookahead slot "
      "(%llu loaded while another task computed), %llu times a device idled while a task was "
      "ready\n  prefetch of a job's next shard: %llu hints, %llu hits, %llu dropped\n",
      n(r.scheduler.dispatched_to_idle), n(r.scheduler.dispatched_lookahead),
      n(r.scheduler.prefetched), n(r.scheduler.idle_while_ready), n(r.scheduler.prefetch_hints),
      n(r.scheduler.prefetch_hits), n(r.scheduler.prefetch_dropped));
}

// Writes into `dir` whatever of the standard reports hydra::run did not write itself
// (trace.json, gantt.svg, the curve SVGs, results.csv, curves.csv) plus utilisation.csv, and
// returns the files now in `dir` (not descending into checkpoints/).
inline std::vector<std::string> complete_outputs(const hydra::RunReport& r,
                                                 const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path out(dir);
  fs::create_directories(out);
  auto missing = [&](const std::string& name) { return !fs::exists(out / name); };
  auto write_text = [&](const std::string& name, const std::string& text) {
    std::ofstream f(out / name, std::ios::binary);
    f << text;
    if (!f) throw hydra::Error("cannot write " + (out / name).string());
  };
  if (missing("trace.json") || missing("gantt.svg")) {
    hydra::Trace trace;
    for (const hydra::TraceEvent& e : r.trace)
      trace.add(e);
    if (missing("trace.json")) trace.write_chrome_json((out / "trace.json").string());
    if (missing("gantt.svg")) write_text("gantt.svg", hydra::gantt_svg(r.trace));
  }
  for (hydra::Curve c :
       {hydra::Curve::train_loss, hydra::Curve::val_loss, hydra::Curve::val_accuracy}) {
    const std::string name = std::string(hydra::curve_name(c)) + ".svg";
    if (missing(name)) hydra::write_curves_svg(r.jobs, c, (out / name).string());
  }
  if (missing("results.csv")) hydra::write_results_csv(r.jobs, (out / "results.csv").string());
  if (missing("curves.csv")) hydra::write_curves_csv(r.jobs, (out / "curves.csv").string());

  const TraceTotals totals = trace_totals(r.trace);
  std::ostringstream u;
  u << "device,utilisation,compute_seconds\n";
  for (const auto& [device, frac] : r.utilisation) {
    const auto it = totals.compute_by_device.find(device);
    u << device << ',' << frac << ',' << (it == totals.compute_by_device.end() ? 0.0 : it->second)
      << '\n';
  }
  write_text("utilisation.csv", u.str());

  std::vector<std::string> files;
  for (const fs::directory_entry& e : fs::directory_iterator(out))
    files.push_back(e.path().filename().string() + (e.is_directory() ? "/" : ""));
  std::sort(files.begin(), files.end());
  return files;
}

// Prints the output directory's files and how to look at the trace.
inline void print_outputs(const std::vector<std::string>& files, const std::string& dir) {
  std::string list;
  for (const std::string& f : files)
    list += (list.empty() ? "" : " ") + f;
  std::printf("Wrote %s/: %s\n", dir.c_str(), list.c_str());
  std::printf(
      "View the device timeline: open %s/gantt.svg in a browser, or load %s/trace.json in "
      "https://ui.perfetto.dev (Open trace file) or chrome://tracing\n",
      dir.c_str(), dir.c_str());
}

}  // namespace examples
