// Simulated vs measured makespan of small multi-model runs on virtual CPU devices. Each run goes
// through hydra::run for real and through the simulator twice: with shard task times from the
// cost model (measured in this process before the runs; CPU devices share the cores measured
// free just before each run) and replaying the run's own task times (median per job, shard and
// kind), which checks the schedule model alone. The runtime's per-task overhead is calibrated on
// a one-job run first.
//
//   simulator_accuracy
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "actors/hydra.hpp"
#include "kernels/model_zoo.hpp"
#include "kernels/optim/adamw.hpp"
#include "kernels/optim/sgd.hpp"
#include "kernels/random.hpp"
#include "runtime/cost_model.hpp"
#include "runtime/simulator.hpp"

using namespace hydra;

namespace {

std::string numbered(const char* prefix, long long i) {
  std::string s = prefix;
  s += std::to_string(i);
  return s;
}

std::vector<SimDevice> sim_devices(int n, LinkCost link) {
  std::vector<SimDevice> out;
  for (int i = 0; i < n; ++i) {
    SimDevice d;
    d.name = numbered("cpu:", i);
    d.link = link;
    out.push_back(d);
  }
  return out;
}

DataSplits synthetic(std::int64_t n, std::int64_t features, std::int64_t classes,
                     std::uint64_t seed) {
  std::vector<float> x(static_cast<std::size_t>(n * features));
  for (std::size_t i = 0; i < x.size(); ++i)
    x[i] = 2.0f * uniform01(seed, i) - 1.0f;
  std::vector<std::int32_t> y(static_cast<std::size_t>(n));
  for (std::int64_t r = 0; r < n; ++r)
    y[static_cast<std::size_t>(r)] = static_cast<std::int32_t>(
        (x[static_cast<std::size_t>(r * features)] > 0 ? 1 : 0) + (r % (classes / 2)) * 2);
  Dataset all(Tensor::from_vector(x, {n, features}), Tensor::from_ints(y, {n}));
  auto [train, val] = all.split(n * 7 / 8);
  return {train, val};
}

JobSpec mlp(const std::string& name, std::int64_t width, int hidden, std::int64_t steps,
            std::size_t shards, bool adam = false) {
  JobSpec j;
  j.name = name;
  j.make_model = [width, hidden] {
    return make_mlp(128, std::vector<std::int64_t>(static_cast<std::size_t>(hidden), width), 10);
  };
  j.make_optimizer = [adam]() -> OptimizerPtr {
    if (adam) return std::make_unique<AdamW>(1e-3);
    return std::make_unique<SGD>(0.01, 0.9);
  };
  j.data = [] { return synthetic(2048, 128, 10, 3); };
  j.data_key = "sim-synthetic";
  j.batch_size = 128;
  j.max_steps = steps;
  j.shards = shards;
  return j;
}

// The simulator's view of a JobSpec, partitioned as the runtime does it for `shard_budget`.
SimJob to_sim_job(const JobSpec& spec, std::size_t shard_budget, std::size_t run_shards,
                  CostModel& costs) {
  Model m = spec.make_model();
  m.init(spec.seed);
  OptimizerPtr opt = spec.make_optimizer();
  const DataSplits d = spec.data();
  Shape input = d.train.sample_shape();
  input.insert(input.begin(), spec.batch_size);
  PartitionOptions po;
  po.budget_bytes = shard_budget;
  po.optimizer_slots = dynamic_cast<SGD*>(opt.get()) != nullptr ? 1 : 2;
  po.shards = spec.shards > 0 ? spec.shards : run_shards;
  SimJob j = make_sim_job(spec.name, m, input, po, *opt, Device::cpu(0), costs);
  const std::int64_t batches = (d.train.size() + spec.batch_size - 1) / spec.batch_size;
  j.steps = spec.max_steps > 0 ? spec.max_steps : spec.epochs * batches;
  j.eval_every = spec.eval_every;
  j.eval_batches = (d.validation.size() + spec.batch_size - 1) / spec.batch_size;
  j.clip = spec.clip_grad_norm > 0;
  return j;
}

struct Compared {
  std::string name;
  double measured = 0;
  double simulated = 0;  // task times from the cost model
  double replayed = 0;   // task times from the run's own trace (medians per job, shard, kind)
  std::uint64_t tasks = 0;
  double cores = 0;  // free cores measured before the run
  double ratio() const { return simulated / measured; }
  double replay_ratio() const { return replayed / measured; }
};

// Per-task runtime overhead (actor messaging) used by the two simulations.
struct Latency {
  double model = 0, replay = 0;
};

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// `jobs` with each task's compute time replaced by the median of its measured durations.
std::vector<SimJob> replay_jobs(std::vector<SimJob> jobs, const std::vector<TraceEvent>& trace) {
  std::map<std::tuple<std::string, int, std::string>, std::vector<double>> d;
  for (const TraceEvent& e : trace)
    if (is_compute_kind(e.kind)) d[{e.job, e.shard, e.kind}].push_back(e.end - e.start);
  for (SimJob& j : jobs)
    for (int s = 0; s < static_cast<int>(j.shards.size()); ++s) {
      ShardCost& c = j.shards[static_cast<std::size_t>(s)];
      c.forward = median_of(d[{j.name, s, "forward"}]);
      c.eval = median_of(d[{j.name, s, "eval"}]);
      c.backward = median_of(d[{j.name, s, "backward"}]);  // the fused update included
      c.update = j.clip ? median_of(d[{j.name, s, "update"}]) : 0.0;
    }
  return jobs;
}

// Runs `jobs` for real on `devices` virtual CPU devices (each with `budget` bytes, 0: unlimited)
// and in the simulator, once with the cost model's task times (CPU devices sharing the cores
// measured free just before the run) and once replaying the run's own task times.
Compared compare(const std::string& name, const std::vector<JobSpec>& jobs, int devices,
                 std::size_t budget, const std::string& policy, CostModel& costs, Latency latency) {
  RuntimeOptions o;
  for (int i = 0; i < devices; ++i)
    o.devices.push_back({Device::cpu(i), budget});
  o.policy = policy;
  const std::size_t shard_budget = budget > 0 ? budget / 2 : SIZE_MAX / 4;
  std::vector<SimJob> sim_jobs;
  for (const JobSpec& j : jobs)
    sim_jobs.push_back(to_sim_job(j, shard_budget, 0, costs));
  const double cores = CostModel::host_parallelism(2);
  const RunReport r = run(jobs, o);
  for (const JobResult& j : r.jobs) {
    if (j.status != JobStatus::done)
      std::fprintf(stderr, "%s: %s failed: %s\n", name.c_str(), j.name.c_str(), j.error.c_str());
  }
  double first = 1e30, last = 0;
  for (const TraceEvent& e : r.trace) {
    first = std::min(first, e.start);
    last = std::max(last, e.end);
  }
  const std::vector<SimDevice> sd = sim_devices(devices, costs.link(Device::cpu(0)));
  SimOptions so;
  so.policy = policy;
  so.cpu_cores = cores;
  so.submit_latency = latency.model;
  const SimResult s = simulate(sim_jobs, sd, so);
  SimOptions ro;
  ro.policy = policy;
  ro.submit_latency = latency.replay;
  const SimResult rs = simulate(replay_jobs(sim_jobs, r.trace), sd, ro);
  return {name, last - first, s.makespan, rs.makespan, s.tasks, cores};
}

}  // namespace

int main() {
  set_blas_threads(1);
  CostModel costs;
  const std::vector<JobSpec> one = {mlp("calibrate", 1024, 3, 6, 2)};
  const Compared cal = compare("calibration", one, 1, 0, "fifo", costs, {});
  const auto per_task = [&](double simulated) {
    return std::max(0.0, (cal.measured - simulated) / static_cast<double>(cal.tasks));
  };
  const Latency latency{per_task(cal.simulated), per_task(cal.replayed)};
  std::printf(
      "calibration (1 job, 1 device): measured %.3f s, simulated %.3f s, replayed %.3f s, "
      "%llu tasks: overhead %.2f / %.2f ms per task\n",
      cal.measured, cal.simulated, cal.replayed, static_cast<unsigned long long>(cal.tasks),
      1e3 * latency.model, 1e3 * latency.replay);
  std::vector<Compared> rows;
  std::vector<JobSpec> four;
  for (int i = 0; i < 4; ++i)
    four.push_back(mlp(numbered("mlp", i), 1024, 3, 8, 2));
  rows.push_back(compare("4 MLP, 2 shards, 2 dev, lrtf", four, 2, 0, "lrtf", costs, latency));
  rows.push_back(compare("4 MLP, 2 shards, 2 dev, fifo", four, 2, 0, "fifo", costs, latency));
  rows.push_back(compare("4 MLP, 2 shards, 1 dev, lrtf", four, 1, 0, "lrtf", costs, latency));
  std::vector<JobSpec> four3 = four;
  for (JobSpec& j : four3)
    j.shards = 3;
  rows.push_back(compare("4 MLP, 3 shards, 2 dev, lrtf", four3, 2, 0, "lrtf", costs, latency));
  std::vector<JobSpec> mixed;
  for (int i = 0; i < 6; ++i) {
    JobSpec j =
        mlp(numbered("mix", i), 384 + 192 * (i % 3), 2 + i % 3, 4 + 2 * (i % 4), 0, i % 2 == 1);
    j.eval_every = i % 2 == 0 ? 3 : 0;
    if (i == 5) j.clip_grad_norm = 1.0;
    mixed.push_back(j);
  }
  rows.push_back(
      compare("6 mixed, 3 dev, 48 MiB, lrtf", mixed, 3, 48u << 20, "lrtf", costs, latency));
  rows.push_back(
      compare("6 mixed, 2 dev, 48 MiB, random", mixed, 2, 48u << 20, "random", costs, latency));
  std::vector<JobSpec> uneven;
  for (int i = 0; i < 6; ++i)
    uneven.push_back(mlp(numbered("u", i), 512 + 256 * (i % 3), 2, i == 0 ? 30 : 6, 1 + i % 2));
  rows.push_back(compare("6 MLP, 1 long, 2 dev, lrtf", uneven, 2, 0, "lrtf", costs, latency));
  rows.push_back(compare("6 MLP, 1 long, 2 dev, fifo", uneven, 2, 0, "fifo", costs, latency));

  std::printf("%-32s %6s %10s %10s %7s %10s %7s\n", "run", "cores", "measured", "simulated",
              "ratio", "replayed", "ratio");
  double worst_sim = 0, worst_replay = 0;
  for (const Compared& c : rows) {
    std::printf("%-32s %6.2f %10.3f %10.3f %7.3f %10.3f %7.3f\n", c.name.c_str(), c.cores,
                c.measured, c.simulated, c.ratio(), c.replayed, c.replay_ratio());
    worst_sim = std::max(worst_sim, std::abs(c.ratio() - 1));
    worst_replay = std::max(worst_replay, std::abs(c.replay_ratio() - 1));
  }
  std::printf("worst |ratio - 1|: simulated (cost model) %.0f%%, replayed (trace) %.0f%%\n",
              100 * worst_sim, 100 * worst_replay);
  return 0;
}
