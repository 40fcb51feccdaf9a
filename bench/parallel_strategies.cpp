// One job's parallel strategy (JobSpec::micro_batches, replicas, sharded_data_parallel,
// device_affinity) side by side in one run: the same MLP job (or two jobs for affinity) trained
// for the same steps on two virtual CPU devices, with wall time, per-step time, device
// utilisation and the bytes the replicas' collectives moved. Ratios are against the plain job
// measured in the same run.
//
//   build/bench/parallel_strategies [--steps N] [--width W] [--batch B] [--repeat R]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "actors/hydra.hpp"
#include "kernels/model_zoo.hpp"
#include "kernels/optim/adamw.hpp"
#include "kernels/random.hpp"

using namespace hydra;

namespace {

DataSplits uniform_data(std::int64_t n, std::int64_t features, std::int64_t classes) {
  std::vector<float> x(static_cast<std::size_t>(n * features));
  for (std::size_t i = 0; i < x.size(); ++i)
    x[i] = 2.0f * uniform01(3, i) - 1.0f;
  std::vector<std::int32_t> y(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < y.size(); ++i)
    y[i] = static_cast<std::int32_t>(uniform01(4, i) * static_cast<double>(classes)) %
           static_cast<std::int32_t>(classes);
  Dataset all(Tensor::from_vector(x, {n, features}), Tensor::from_ints(y, {n}));
  auto [train, val] = all.split(n - 64);
  return {train, val};
}

struct Row {
  std::string name;
  std::vector<JobSpec> jobs;
};

struct Measured {
  double seconds = 0;
  std::vector<std::pair<std::string, double>> utilisation;
  std::size_t collective_bytes = 0;
  bool ok = true;
  std::string error;
};

Measured measure(const Row& row) {
  RuntimeOptions o;
  o.devices = {{Device::cpu(0), 512 << 20}, {Device::cpu(1), 512 << 20}};
  RunReport r = run(row.jobs, o);
  Measured m;
  m.seconds = r.seconds;
  for (const JobResult& j : r.jobs)
    if (j.status != JobStatus::done) {
      m.ok = false;
      m.error = j.name + ": " + j.error;
    }
  for (const auto& [d, u] : r.utilisation)
    if (d.rfind("cpu:", 0) == 0) m.utilisation.emplace_back(d, u);
  for (const TraceEvent& e : r.trace)
    if (e.kind == "allreduce" || e.kind == "allgather") m.collective_bytes += e.bytes;
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t steps = 40, width = 512, batch = 128;
  int repeat = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::int64_t {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return std::atoll(argv[++i]);
    };
    if (a == "--steps")
      steps = next();
    else if (a == "--width")
      width = next();
    else if (a == "--batch")
      batch = next();
    else if (a == "--repeat")
      repeat = static_cast<int>(next());
    else {
      std::fprintf(stderr,
                   "usage: %s [--steps N] [--width W] [--batch B] [--repeat R]\n"
                   "  one MLP job per strategy on 2 virtual CPU devices; best of R runs\n",
                   argv[0]);
      return a == "--help" ? 0 : 2;
    }
  }
  if (steps <= 0 || width <= 0 || batch <= 0 || batch % 8 != 0 || repeat <= 0) {
    std::fprintf(stderr,
                 "steps, width, repeat must be positive and batch a positive multiple of 8\n");
    return 2;
  }
  auto base = [&](const std::string& name) {
    JobSpec j;
    j.name = name;
    j.make_model = [width] { return make_mlp(256, {width, width, width}, 10); };
    j.make_optimizer = [] { return std::make_unique<AdamW>(1e-3, 0.9, 0.999, 1e-8, 0.01); };
    j.data = [] { return uniform_data(4096, 256, 10); };
    j.data_key = "bench-random";
    j.batch_size = batch;
    j.max_steps = steps;
    j.eval_every = 0;
    j.shards = 2;
    return j;
  };
  std::vector<Row> rows;
  rows.push_back({"plain (2 shards)", {base("plain")}});
  {
    JobSpec j = base("micro4");
    j.micro_batches = 4;
    rows.push_back({"micro_batches 4", {j}});
  }
  {
    JobSpec j = base("replicas2");
    j.replicas = 2;
    rows.push_back({"replicas 2", {j}});
  }
  {
    JobSpec j = base("replicas2-sharded");
    j.replicas = 2;
    j.sharded_data_parallel = true;
    rows.push_back({"replicas 2 sharded", {j}});
  }
  {
    JobSpec j = base("replicas2-micro2");
    j.replicas = 2;
    j.micro_batches = 2;
    rows.push_back({"replicas 2 x micro 2", {j}});
  }
  {
    JobSpec a = base("free-a"), b = base("free-b");
    b.seed = 1;
    rows.push_back({"2 jobs, any device", {a, b}});
    a.name = "pinned-a";
    b.name = "pinned-b";
    a.device_affinity = 0;
    b.device_affinity = 1;
    rows.push_back({"2 jobs, affinity 0 / 1", {a, b}});
  }
  std::printf(
      "MLP 256-%lld-%lld-%lld-10, AdamW, batch %lld, %lld steps, 2 virtual CPU devices, "
      "best of %d\n",
      static_cast<long long>(width), static_cast<long long>(width), static_cast<long long>(width),
      static_cast<long long>(batch), static_cast<long long>(steps), repeat);
  std::printf("%-24s %9s %9s %8s %8s %14s\n", "strategy", "wall s", "vs plain", "cpu:0", "cpu:1",
              "collective MB");
  double plain = 0;
  for (const Row& row : rows) {
    Measured best;
    best.seconds = 1e30;
    for (int k = 0; k < repeat; ++k) {
      Measured m = measure(row);
      if (!m.ok) {
        std::printf("%-24s failed: %s\n", row.name.c_str(), m.error.c_str());
        best.ok = false;
        break;
      }
      if (m.seconds < best.seconds) best = m;
    }
    if (!best.ok) continue;
    if (plain == 0) plain = best.seconds;
    double u0 = 0, u1 = 0;
    for (const auto& [d, u] : best.utilisation)
      (d == "cpu:0" ? u0 : u1) = u;
    std::printf("%-24s %9.3f %9.2f %7.1f%% %7.1f%% %14.2f\n", row.name.c_str(), best.seconds,
                best.seconds / plain, 100 * u0, 100 * u1,
                static_cast<double>(best.collective_bytes) / (1 << 20));
  }
  return 0;
}
