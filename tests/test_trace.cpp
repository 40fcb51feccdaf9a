#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "kernels/core/error.hpp"
#include "runtime/job_result.hpp"
#include "runtime/text_escape.hpp"
#include "runtime/trace.hpp"

using namespace hydra;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

double util_of(const std::vector<std::pair<std::string, double>>& u, const std::string& device) {
  for (const auto& [d, v] : u)
    if (d == device) return v;
  FAIL("device " << device << " missing from utilisation");
  return -1;
}

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() /
          ("hydra_test_trace_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("trace utilisation merges overlapping compute intervals per device") {
  Trace t;
  // cuda:0 busy [0, 3] (three overlapping or nested events) and [6, 7]; a transfer [3, 5] does
  // not count. cuda:1 busy [8, 10], which also sets the end of the window [0, 10].
  t.add(TraceEvent{"cuda:0", "a", 0, "forward", 0, 2});
  t.add(TraceEvent{"cuda:0", "b", 0, "backward", 1, 3});
  t.add(TraceEvent{"cuda:0", "a", 1, "update", 0.5, 1.0});
  t.add(TraceEvent{"cuda:0", "a", 0, "load", 3, 5, 1024});
  t.add(TraceEvent{"cuda:0", "b", 1, "eval", 6, 7});
  t.add(TraceEvent{"cuda:1", "a", 2, "eval", 8, 10});
  t.add(TraceEvent{"cpu:0", "a", 0, "store", 2, 4, 64});
  t.add(TraceEvent{kHostLane, "a", -1, "allreduce", 4, 5, 4096});  // not a device: not listed

  const auto u = t.utilisation();
  REQUIRE(u.size() == 3);
  CHECK(u[0].first == "cpu:0");
  CHECK(u[1].first == "cuda:0");
  CHECK(u[2].first == "cuda:1");
  CHECK(util_of(u, "cuda:0") == doctest::Approx(0.4));
  CHECK(util_of(u, "cuda:1") == doctest::Approx(0.2));
  CHECK(util_of(u, "cpu:0") == doctest::Approx(0.0));

  // A window: [2, 4] holds cuda:0's busy [2, 3].
  const auto w = t.utilisation(2, 4);
  CHECK(util_of(w, "cuda:0") == doctest::Approx(0.5));
  CHECK(util_of(w, "cuda:1") == doctest::Approx(0.0));
  CHECK(util_of(t.utilisation(8.5, 9.5), "cuda:1") == doctest::Approx(1.0));
  CHECK(util_of(t.utilisation(5, 5), "cuda:0") == 0.0);  // empty window

  // Touching intervals merge without double counting: [0, 1] + [1, 2] + [0, 2] = 2 of 4 s.
  Trace touching;
  touching.add(TraceEvent{"cpu:0", "x", 0, "forward", 0, 1});
  touching.add(TraceEvent{"cpu:0", "x", 0, "backward", 1, 2});
  touching.add(TraceEvent{"cpu:0", "y", 0, "forward", 0, 2});
  touching.add(TraceEvent{"cpu:0", "y", 0, "load", 2, 4});
  CHECK(util_of(touching.utilisation(), "cpu:0") == doctest::Approx(0.5));

  CHECK(Trace().utilisation().empty());
}

TEST_CASE("trace orders devices by type and numeric index and classifies kinds") {
  CHECK(device_name_less("cuda:2", "cuda:10"));
  CHECK_FALSE(device_name_less("cuda:10", "cuda:2"));
  CHECK(device_name_less("cpu:9", "cuda:0"));
  CHECK_FALSE(device_name_less("cuda:1", "cuda:1"));
  for (const char* k : {"forward", "backward", "update", "eval"})
    CHECK(is_compute_kind(k));
  for (const char* k : {"load", "store", ""})
    CHECK_FALSE(is_compute_kind(k));
}

TEST_CASE("trace clock starts at zero and add is thread-safe") {
  Trace t;
  const double t0 = t.now();
  CHECK(t0 >= 0);
  CHECK(t0 < 1.0);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK(t.now() >= t0 + 0.004);

  constexpr int kThreads = 4, kEach = 2000;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back([&, i] {
      for (int k = 0; k < kEach; ++k)
        t.add(TraceEvent{"cpu:" + std::to_string(i), "job", k, "forward", static_cast<double>(k),
                         k + 1.0});
    });
  for (auto& th : threads)
    th.join();
  const auto ev = t.events();
  CHECK(ev.size() == static_cast<std::size_t>(kThreads * kEach));
  std::map<std::string, int> per_device;
  for (const auto& e : ev)
    ++per_device[e.device];
  CHECK(per_device.size() == static_cast<std::size_t>(kThreads));
  for (const auto& [d, n] : per_device)
    CHECK(n == kEach);
}

TEST_CASE("trace writes a Chrome trace that parses and holds every event") {
  Trace t;
  const std::string weird = "job \"q\" \\ back\nline\ttab \x01 bad\xff utf8 \xC3\xA9";
  t.add(TraceEvent{"cuda:1", "mlp", 0, "forward", 0.001, 0.003});
  t.add(TraceEvent{"cuda:1", "mlp", 0, "backward", 0.002, 0.004});  // overlaps: a second lane
  t.add(TraceEvent{"cuda:1", "mlp", 1, "load", 0.0, 0.001, 4096});  // transfer lane
  t.add(TraceEvent{"cuda:0", weird, 2, "update", 0.5, 0.75});
  t.add(TraceEvent{"cuda:10", "gpt", 0, "eval", 1.0, 1.5});

  const std::string path = temp_path("chrome.json");
  t.write_chrome_json(path);
  const json doc = json::parse(read_text(path));  // throws (fails the test) when invalid
  fs::remove(path);
  REQUIRE(doc.contains("traceEvents"));
  const json& events = doc["traceEvents"];
  REQUIRE(events.is_array());

  std::map<int, std::string> process_names;
  std::map<std::pair<int, int>, std::string> thread_names;
  std::vector<json> complete;
  for (const json& e : events) {
    const std::string ph = e.at("ph");
    if (ph == "M" && e.at("name") == "process_name")
      process_names[e.at("pid").get<int>()] = e.at("args").at("name");
    else if (ph == "M" && e.at("name") == "thread_name")
      thread_names[{e.at("pid").get<int>(), e.at("tid").get<int>()}] = e.at("args").at("name");
    else if (ph == "X")
      complete.push_back(e);
  }
  CHECK(complete.size() == 5);
  REQUIRE(process_names.size() == 3);
  std::vector<std::string> devices;
  for (const auto& [pid, name] : process_names)
    devices.push_back(name);
  CHECK(devices == std::vector<std::string>{"cuda:0", "cuda:1", "cuda:10"});

  std::map<std::string, json> by_name;
  for (const json& e : complete)
    by_name[e.at("name").get<std::string>()] = e;
  REQUIRE(by_name.count("mlp s0 forward") == 1);
  const json& fwd = by_name["mlp s0 forward"];
  CHECK(fwd.at("ts").get<double>() == doctest::Approx(1000.0));
  CHECK(fwd.at("dur").get<double>() == doctest::Approx(2000.0));
  CHECK(process_names[fwd.at("pid").get<int>()] == "cuda:1");
  CHECK(fwd.at("args").at("bytes").get<std::size_t>() == 0);
  REQUIRE(by_name.count("mlp s1 load") == 1);
  const json& load = by_name["mlp s1 load"];
  CHECK(load.at("args").at("bytes").get<std::size_t>() == 4096);
  CHECK(load.at("dur").get<double>() == doctest::Approx(1000.0));

  // The escaped name survives the round trip (the invalid byte becomes U+FFFD).
  const std::string weird_clean = sanitize_utf8(weird);
  CHECK(weird_clean.find("\xEF\xBF\xBD") != std::string::npos);
  REQUIRE(by_name.count(weird_clean + " s2 update") == 1);
  CHECK(by_name[weird_clean + " s2 update"].at("args").at("job") == weird_clean);
  CHECK(by_name[weird_clean + " s2 update"].at("ts").get<double>() == doctest::Approx(500000.0));
  REQUIRE(by_name.count("gpt s0 eval") == 1);
  CHECK(process_names[by_name["gpt s0 eval"].at("pid").get<int>()] == "cuda:10");

  // Events on one (pid, tid) never overlap, every tid is named, and the overlapping mlp events
  // and the transfer got lanes of their own.
  std::map<std::pair<int, int>, std::vector<std::pair<double, double>>> lanes;
  for (const json& e : complete) {
    const std::pair<int, int> key{e.at("pid").get<int>(), e.at("tid").get<int>()};
    CHECK(thread_names.count(key) == 1);
    const double ts = e.at("ts"), dur = e.at("dur");
    lanes[key].emplace_back(ts, ts + dur);
  }
  for (auto& [key, spans] : lanes) {
    std::sort(spans.begin(), spans.end());
    for (std::size_t i = 1; i < spans.size(); ++i)
      CHECK(spans[i].first >= spans[i - 1].second);
  }
  std::set<std::string> mlp_threads;
  for (const auto& [key, name] : thread_names)
    if (name.rfind("mlp", 0) == 0) mlp_threads.insert(name);
  CHECK(mlp_threads == std::set<std::string>{"mlp", "mlp #2", "mlp transfers"});

  // An empty trace is valid too.
  const json empty = json::parse(Trace().chrome_json());
  CHECK(empty.at("traceEvents").empty());
}

TEST_CASE("trace reports an unwritable path as a hydra error") {
  Trace t;
  t.add(TraceEvent{"cpu:0", "a", 0, "forward", 0, 1});
  const std::string path = temp_path("no_such_dir") + "/trace.json";
  CHECK_THROWS_WITH_AS(t.write_chrome_json(path), doctest::Contains(path.c_str()), Error);
}

TEST_CASE("job status names") {
  CHECK(std::string(job_status_name(JobStatus::done)) == "done");
  CHECK(std::string(job_status_name(JobStatus::failed)) == "failed");
  CHECK(std::string(job_status_name(JobStatus::stopped)) == "stopped");
}

TEST_CASE("text escaping for json xml and csv") {
  CHECK(json_quote("a\"b\\c\n\x02") == "\"a\\\"b\\\\c\\n\\u0002\"");
  CHECK(json::parse(json_quote("x\x7f\xe2\x82\xac")).get<std::string>() == "x\x7f\xe2\x82\xac");
  CHECK(sanitize_utf8("ok \xC0\x80 \xED\xA0\x80 \xF4\x90\x80\x80") ==
        "ok \xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD "
        "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(sanitize_utf8("\xC3") == "\xEF\xBF\xBD");  // truncated sequence
  CHECK(xml_escape("<a & 'b' \"c\">\x01") == "&lt;a &amp; &apos;b&apos; &quot;c&quot;&gt;");
  CHECK(csv_field("plain") == "plain");
  CHECK(csv_field("a,b") == "\"a,b\"");
  CHECK(csv_field("say \"hi\"") == "\"say \"\"hi\"\"\"");
  CHECK(csv_field("two\nlines") == "\"two\nlines\"");
  CHECK(format_number(0.5) == "0.5");
  CHECK(format_number(std::numeric_limits<double>::infinity()) == "0");
  CHECK(format_number(-0.0) == "0");
}
