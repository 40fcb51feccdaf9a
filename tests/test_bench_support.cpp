// Reusable pieces the benchmarks use: the process RSS reader and sampler, and the makespan lower
// bound computed from a trace.
#include <doctest/doctest.h>

#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "kernels/core/error.hpp"
#include "runtime/process_memory.hpp"
#include "runtime/trace_lower_bound.hpp"

using namespace hydra;

TEST_CASE("bench support: resident_bytes grows by the memory a buffer touches") {
  const std::size_t before = resident_bytes();
  CHECK(before > 0);
  const std::size_t size = 64u << 20;
  std::vector<char> buffer(size);
  std::memset(buffer.data(), 1, size);  // touch every page
  const std::size_t after = resident_bytes();
  CHECK(after >= before + size / 2);
  CHECK(buffer[size - 1] == 1);
}

TEST_CASE("bench support: the RSS sampler samples at start every period and at stop") {
  RssSampler sampler(std::chrono::milliseconds(20));
  std::this_thread::sleep_for(std::chrono::milliseconds(130));
  sampler.stop();
  sampler.stop();  // idempotent
  const std::vector<RssSample> s = sampler.samples();
  // start + about 6 periodic + stop; a loaded machine may wake the thread late.
  REQUIRE(s.size() >= 3);
  CHECK(s.size() <= 9);
  CHECK(s.front().seconds < 0.02);
  CHECK(s.back().seconds >= 0.13);
  for (std::size_t i = 1; i < s.size(); ++i)
    CHECK(s[i].seconds >= s[i - 1].seconds);
  for (const RssSample& x : s)
    CHECK(x.bytes > 0);
  CHECK_THROWS_WITH_AS(RssSampler(std::chrono::milliseconds(0)),
                       "RssSampler: period must be positive, got 0 ms", Error);
}

TEST_CASE("bench support: the trace lower bound is the larger of work per device and longest job") {
  std::vector<TraceEvent> trace = {
      {"cpu:0", "a", 0, "forward", 0.0, 1.0, 0},  {"cpu:0", "a", 0, "load", 1.0, 9.0, 100},
      {"cpu:1", "a", 0, "backward", 1.0, 3.0, 0}, {"cpu:1", "b", 0, "forward", 0.0, 0.5, 0},
      {"cpu:0", "b", 1, "update", 3.0, 3.5, 0},   {"cpu:1", "c", 0, "eval", 3.0, 4.0, 0},
      {"cpu:1", "c", 0, "store", 4.0, 6.0, 10},
  };
  // Compute: a 3 s, b 1 s, c 1 s = 5 s; loads and stores do not count.
  TraceLowerBound two = trace_lower_bound(trace, 2);
  CHECK(two.total_compute == doctest::Approx(5.0));
  CHECK(two.per_device == doctest::Approx(2.5));
  CHECK(two.longest_job == doctest::Approx(3.0));
  CHECK(two.longest_job_name == "a");
  CHECK(two.bound == doctest::Approx(3.0));
  TraceLowerBound one = trace_lower_bound(trace, 1);
  CHECK(one.bound == doctest::Approx(5.0));
  CHECK(trace_lower_bound({}, 4).bound == 0.0);
  CHECK_THROWS_WITH_AS(trace_lower_bound(trace, 0),
                       "trace_lower_bound: devices must be at least 1, got 0", Error);
}
