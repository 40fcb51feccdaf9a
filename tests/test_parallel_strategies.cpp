// Per-job parallel strategies in the actor runtime (JobSpec's strategy fields).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "actors/hydra.hpp"
#include "kernels/model_zoo.hpp"
#include "kernels/optim/adamw.hpp"
#include "kernels/optim/sgd.hpp"
#include "kernels/random.hpp"

using namespace hydra;

namespace {

// A small separable classification task: labels from a random linear teacher.
DataSplits teacher_data(std::int64_t n, std::int64_t features, std::int64_t classes,
                        std::uint64_t seed) {
  std::vector<float> x(static_cast<std::size_t>(n * features));
  for (std::size_t i = 0; i < x.size(); ++i)
    x[i] = 2.0f * uniform01(seed, i) - 1.0f;
  std::vector<std::int32_t> y(static_cast<std::size_t>(n));
  for (std::int64_t r = 0; r < n; ++r) {
    int best = 0;
    double best_v = -1e30;
    for (std::int64_t c = 0; c < classes; ++c) {
      double v = 0;
      for (std::int64_t f = 0; f < features; ++f)
        v += x[static_cast<std::size_t>(r * features + f)] *
             (2.0 * uniform01(seed + 1, static_cast<std::uint64_t>(f * classes + c)) - 1.0);
      if (v > best_v) best_v = v, best = static_cast<int>(c);
    }
    y[static_cast<std::size_t>(r)] = best;
  }
  Dataset all(Tensor::from_vector(x, {n, features}), Tensor::from_ints(y, {n}));
  auto [train, val] = all.split(n * 3 / 4);
  return {train, val};
}

// A 4-layer MLP job on the teacher data; `shards` > 0 forces the cut.
JobSpec job(const std::string& name, std::size_t shards, bool adamw = false,
            std::int64_t width = 48) {
  JobSpec j;
  j.name = name;
  j.make_model = [width] { return make_mlp(16, {width, width, width}, 4); };
  if (adamw)
    j.make_optimizer = [] { return std::make_unique<AdamW>(1e-2, 0.9, 0.999, 1e-8, 0.01); };
  else
    j.make_optimizer = [] { return std::make_unique<SGD>(0.05, 0.9); };
  j.data = [] { return teacher_data(400, 16, 4, 11); };
  j.data_key = "teacher-16-4";
  j.batch_size = 24;
  j.max_steps = 8;
  j.seed = 5;
  j.shards = shards;
  return j;
}

RuntimeOptions cpu_devices(int n) {
  RuntimeOptions o;
  for (int i = 0; i < n; ++i)
    o.devices.push_back({Device::cpu(i), 64 << 20});
  return o;
}

bool is_task(const TraceEvent& e) {
  return e.kind == "forward" || e.kind == "backward" || e.kind == "update" || e.kind == "eval";
}

}  // namespace

TEST_CASE("actors: device affinity runs every task of a job on its device") {
  JobSpec a = job("pinned-1", 2), b = job("pinned-0", 2), free = job("free", 2);
  a.device_affinity = 1;
  b.device_affinity = 0;
  b.seed = 6;
  free.seed = 7;
  RunReport r = run({a, b, free}, cpu_devices(3));
  for (const JobResult& j : r.jobs) {
    INFO(j.name << ": " << j.error);
    CHECK(j.status == JobStatus::done);
    CHECK(j.steps == 8);
  }
  std::map<std::string, std::set<std::string>> devices;
  for (const TraceEvent& e : r.trace)
    if (is_task(e)) devices[e.job].insert(e.device);
  CHECK(devices["pinned-1"] == std::set<std::string>{"cpu:1"});
  CHECK(devices["pinned-0"] == std::set<std::string>{"cpu:0"});
  CHECK(r.scheduler.idle_while_ready == 0);
}

TEST_CASE("actors: a device affinity outside the run's devices fails only that job") {
  JobSpec bad = job("bad-affinity", 1), good = job("good", 1);
  bad.device_affinity = 2;
  std::vector<JobResult> r = train({bad, good}, cpu_devices(2));
  CHECK(r[0].status == JobStatus::failed);
  CHECK(r[0].error.find("device_affinity 2") != std::string::npos);
  CHECK(r[0].error.find("devices 0..1") != std::string::npos);
  CHECK(r[1].status == JobStatus::done);
}
