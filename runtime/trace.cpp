#include "runtime/trace.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <utility>

#include "kernels/core/error.hpp"
#include "runtime/text_escape.hpp"
#include "runtime/text_file.hpp"

namespace hydra {

namespace {

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Seconds as microseconds with nanosecond resolution, for JSON ("12.345"); never negative.
std::string micros(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) seconds = 0;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", seconds * 1e6);
  return buf;
}

// Devices of `events` in device_name_less order.
std::vector<std::string> device_names(const std::vector<TraceEvent>& events) {
  std::set<std::string, decltype(&device_name_less)> names(&device_name_less);
  for (const TraceEvent& e : events)
    names.insert(e.device);
  return {names.begin(), names.end()};
}

// Busy seconds of compute events on `device` inside [from, to], overlapping intervals merged.
double busy_seconds(const std::vector<TraceEvent>& events, const std::string& device, double from,
                    double to) {
  std::vector<std::pair<double, double>> spans;
  for (const TraceEvent& e : events) {
    if (e.device != device || !is_compute_kind(e.kind)) continue;
    const double a = std::max(e.start, from), b = std::min(e.end, to);
    if (b > a) spans.emplace_back(a, b);
  }
  std::sort(spans.begin(), spans.end());
  double busy = 0, cur_a = 0, cur_b = 0;
  bool open = false;
  for (const auto& [a, b] : spans) {
    if (open && a <= cur_b) {
      cur_b = std::max(cur_b, b);
      continue;
    }
    if (open) busy += cur_b - cur_a;
    cur_a = a;
    cur_b = b;
    open = true;
  }
  if (open) busy += cur_b - cur_a;
  return busy;
}

std::vector<std::pair<std::string, double>> utilisation_of(const std::vector<TraceEvent>& events,
                                                           double from, double to) {
  std::vector<std::pair<std::string, double>> out;
  for (const std::string& d : device_names(events)) {
    // The host's collectives (data-parallel all-reduce, all-gather) are not a device's work.
    if (d == kHostLane) continue;
    const double span = to - from;
    const double u = span > 0 ? busy_seconds(events, d, from, to) / span : 0.0;
    out.emplace_back(d, std::clamp(u, 0.0, 1.0));
  }
  return out;
}

// Splits "cuda:12" into ("cuda", 12); a name without a numeric index gets -1.
std::pair<std::string_view, long long> split_device_name(std::string_view name) {
  const auto colon = name.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == name.size()) return {name, -1};
  long long index = 0;
  for (std::size_t i = colon + 1; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9' || index > 1'000'000'000'000LL) return {name, -1};
    index = index * 10 + (name[i] - '0');
  }
  return {name.substr(0, colon), index};
}

}  // namespace

bool is_compute_kind(const std::string& kind) {
  return kind == "forward" || kind == "backward" || kind == "update" || kind == "eval";
}

bool device_name_less(const std::string& a, const std::string& b) {
  const auto [ta, ia] = split_device_name(a);
  const auto [tb, ib] = split_device_name(b);
  if (ta != tb) return ta < tb;
  if (ia != ib) return ia < ib;
  return a < b;
}

Trace::Trace() : origin_ns_(steady_ns()) {}

double Trace::now() const {
  return static_cast<double>(steady_ns() - origin_ns_) * 1e-9;
}

void Trace::add(TraceEvent e) {
  std::lock_guard lock(mutex_);
  events_.push_back(std::move(e));
}

std::vector<TraceEvent> Trace::events() const {
  std::lock_guard lock(mutex_);
  return events_;
}

std::vector<std::pair<std::string, double>> Trace::utilisation() const {
  const std::vector<TraceEvent> ev = events();
  if (ev.empty()) return {};
  double from = ev.front().start, to = ev.front().end;
  for (const TraceEvent& e : ev) {
    from = std::min(from, e.start);
    to = std::max(to, e.end);
  }
  return utilisation_of(ev, from, to);
}

std::vector<std::pair<std::string, double>> Trace::utilisation(double from, double to) const {
  return utilisation_of(events(), from, to);
}

std::string Trace::chrome_json() const {
  const std::vector<TraceEvent> ev = events();
  std::string out = "{\"displayTimeUnit\": \"ms\", \"traceEvents\": [";
  bool first = true;
  auto emit = [&](const std::string& object) {
    out += first ? "\n  " : ",\n  ";
    out += object;
    first = false;
  };
  auto metadata = [&](const char* name, int pid, int tid, const std::string& args) {
    emit("{\"name\": \"" + std::string(name) + "\", \"ph\": \"M\", \"pid\": " +
         std::to_string(pid) + ", \"tid\": " + std::to_string(tid) + ", \"args\": {" + args + "}}");
  };

  const std::vector<std::string> devices = device_names(ev);
  for (std::size_t d = 0; d < devices.size(); ++d) {
    const int pid = static_cast<int>(d) + 1;
    metadata("process_name", pid, 0, "\"name\": " + json_quote(devices[d]));
    metadata("process_sort_index", pid, 0, "\"sort_index\": " + std::to_string(pid));

    // The device's events grouped by (job, is transfer): jobs by name, compute before transfers.
    std::map<std::pair<std::string, bool>, std::vector<const TraceEvent*>> groups;
    for (const TraceEvent& e : ev)
      if (e.device == devices[d]) groups[{e.job, !is_compute_kind(e.kind)}].push_back(&e);

    int tid = 0;
    for (auto& [key, group] : groups) {
      const auto& [job, transfer] = key;
      std::stable_sort(group.begin(), group.end(), [](const TraceEvent* a, const TraceEvent* b) {
        return a->start < b->start;
      });
      // Greedy lanes: an event goes to the first lane whose last event has ended, so events on
      // one tid never overlap (Chrome nests overlapping complete events on one thread).
      std::vector<double> lane_end;
      std::vector<std::vector<const TraceEvent*>> lanes;
      for (const TraceEvent* e : group) {
        std::size_t lane = 0;
        while (lane < lane_end.size() && lane_end[lane] > e->start)
          ++lane;
        if (lane == lane_end.size()) {
          lane_end.push_back(e->end);
          lanes.emplace_back();
        }
        lane_end[lane] = std::max(e->start, e->end);
        lanes[lane].push_back(e);
      }
      for (std::size_t l = 0; l < lanes.size(); ++l) {
        ++tid;
        std::string name = job;
        if (transfer) name += " transfers";
        if (l > 0) name += " #" + std::to_string(l + 1);
        metadata("thread_name", pid, tid, "\"name\": " + json_quote(name));
        metadata("thread_sort_index", pid, tid, "\"sort_index\": " + std::to_string(tid));
        for (const TraceEvent* e : lanes[l]) {
          const std::string title = e->job + " s" + std::to_string(e->shard) + " " + e->kind;
          emit("{\"name\": " + json_quote(title) + ", \"cat\": " + json_quote(e->kind) +
               ", \"ph\": \"X\", \"pid\": " + std::to_string(pid) +
               ", \"tid\": " + std::to_string(tid) + ", \"ts\": " + micros(e->start) +
               ", \"dur\": " + micros(e->end - e->start) +
               ", \"args\": {\"job\": " + json_quote(e->job) +
               ", \"shard\": " + std::to_string(e->shard) + ", \"kind\": " + json_quote(e->kind) +
               ", \"bytes\": " + std::to_string(e->bytes) + "}}");
        }
      }
    }
  }
  out += "\n]}\n";
  return out;
}

void Trace::write_chrome_json(const std::string& path) const {
  write_text_file(path, chrome_json(), "Trace");
}

}  // namespace hydra
