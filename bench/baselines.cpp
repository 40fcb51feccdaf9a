// Hydra's Sharded-LRTF against the classic ways of training many models, side by side in one run,
// on the same runtime, beside the lower bound max(total work / devices, longest job):
//   1. sequential model parallelism: one model at a time, its shards across all devices;
//   2. GPipe-style pipelining: one model at a time, each batch in m micro-batches;
//   3. task parallelism: one model per device (models assigned longest first);
//   4. Sharded-LRTF: every model's shard tasks on every device (Hydra's default);
//   5. the planner's choice.
// First for real on virtual CPU devices (mixed MLPs, some larger than a device budget), then in
// the simulator at scale (8, 64 and 512 devices, 12 to 1000 jobs of mixed sizes). A row whose
// runtime support is missing prints why instead of a figure.
//
//   baselines [--quick] [--real-only | --sim-only] [--rounds R] [--micro-batches M]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "actors/hydra.hpp"
#include "actors/plan.hpp"
#include "actors/simulate.hpp"
#include "bench/sim_jobs.hpp"
#include "kernels/random.hpp"
#include "runtime/planner.hpp"
#include "runtime/simulator.hpp"
#include "runtime/trace_lower_bound.hpp"

using namespace hydra;

namespace {

using Clock = std::chrono::steady_clock;

// One strategy's outcome: a makespan, or why there is none.
struct Row {
  std::string name;
  std::optional<double> makespan;
  std::string note;    // what the row did, or why it is missing
  double compute = 0;  // real runs: seconds of compute in the row's traces (all devices)
};

void print_header(bool compute = false) {
  std::printf("%-34s %11s %10s %10s", "strategy", "makespan s", "vs LRTF", "vs bound");
  if (compute) std::printf(" %10s", "compute s");
  std::printf("  %s\n", "note");
}

void print_row(const Row& r, double lrtf, double bound, bool compute = false) {
  if (!r.makespan) {
    std::printf("%-34s %11s %10s %10s", r.name.c_str(), "-", "-", "-");
    if (compute) std::printf(" %10s", "-");
    std::printf("  %s\n", r.note.c_str());
    return;
  }
  std::printf("%-34s %11.3f %10.3f %10.3f", r.name.c_str(), *r.makespan, *r.makespan / lrtf,
              *r.makespan / bound);
  if (compute) std::printf(" %10.3f", r.compute);
  std::printf("  %s\n", r.note.c_str());
}

// Assigns job indices to `devices` bins, longest first onto the least loaded (LPT).
std::vector<int> longest_first(const std::vector<double>& work, int devices) {
  std::vector<int> order(work.size()), out(work.size(), 0);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return work[static_cast<std::size_t>(a)] > work[static_cast<std::size_t>(b)];
  });
  std::vector<double> load(static_cast<std::size_t>(devices), 0.0);
  for (int j : order) {
    const auto d =
        static_cast<std::size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    out[static_cast<std::size_t>(j)] = static_cast<int>(d);
    load[d] += work[static_cast<std::size_t>(j)];
  }
  return out;
}

// ================================ real runs on virtual CPU devices ==============================

struct RealSetup {
  std::vector<JobSpec> jobs;
  int devices = 2;
  std::size_t budget = 0;
  std::int64_t micro_batches = 4;
};

RuntimeOptions options_for(const RealSetup& s) {
  RuntimeOptions o;
  for (int d = 0; d < s.devices; ++d)
    o.devices.push_back({Device::cpu(d), s.budget});
  return o;
}

// First trace event start to last end: the time the devices worked on the jobs (data loading
// and job setup before the first task are not counted, for every strategy alike).
double span(const std::vector<TraceEvent>& trace) {
  if (trace.empty()) return 0;
  double lo = trace.front().start, hi = trace.front().end;
  for (const TraceEvent& e : trace)
    lo = std::min(lo, e.start), hi = std::max(hi, e.end);
  return hi - lo;
}

double compute_seconds(const std::vector<TraceEvent>& trace) {
  double c = 0;
  for (const TraceEvent& e : trace)
    if (is_compute_kind(e.kind)) c += e.end - e.start;
  return c;
}

// The error of the first failed job, or "".
std::string first_failure(const RunReport& r) {
  for (const JobResult& j : r.jobs)
    if (j.status == JobStatus::failed) return j.name + ": " + j.error;
  return "";
}

// Runs each job alone (its own hydra::run on all devices), `change` applied; sums the spans.
Row one_at_a_time(const std::string& name, const RealSetup& s,
                  const std::function<void(JobSpec&)>& change, const std::string& note) {
  Row row{name, std::nullopt, note};
  double total = 0;
  for (JobSpec j : s.jobs) {
    change(j);
    const RunReport r = run({j}, options_for(s));
    if (const std::string e = first_failure(r); !e.empty()) {
      row.note = "no figure: " + e;
      return row;
    }
    total += span(r.trace);
    row.compute += compute_seconds(r.trace);
  }
  row.makespan = total;
  return row;
}

Row real_sequential(const RealSetup& s) {
  return one_at_a_time(
      "1 sequential model parallelism", s, [](JobSpec&) {},
      "each job alone on all devices, spans summed");
}

// GPipe on the jobs of two or more shards (`shards`: per job); a job of one shard has no
// pipeline to fill and runs as it is.
Row real_gpipe(const RealSetup& s, const std::vector<int>& shards) {
  const std::int64_t m = s.micro_batches;
  RealSetup piped = s;
  for (std::size_t i = 0; i < piped.jobs.size(); ++i)
    if (shards[i] > 1) piped.jobs[i].micro_batches = m;
  return one_at_a_time(
      "2 GPipe, m = " + std::to_string(m), piped, [](JobSpec&) {},
      "each job alone, multi-shard jobs in " + std::to_string(m) + " micro-batches");
}

// One model per device, assigned longest first by the compute each job measured under LRTF.
Row real_task_parallel(const RealSetup& s, const RunReport& lrtf) {
  Row row{"3 task parallelism", std::nullopt, ""};
  std::vector<double> work(s.jobs.size(), 0.0);
  std::vector<int> shards(s.jobs.size(), 1);
  for (std::size_t i = 0; i < s.jobs.size(); ++i)
    for (const TraceEvent& e : lrtf.trace)
      if (e.job == s.jobs[i].name) {
        if (is_compute_kind(e.kind)) work[i] += e.end - e.start;
        shards[i] = std::max(shards[i], e.shard + 1);
      }
  const std::vector<int> device = longest_first(work, s.devices);
  std::vector<JobSpec> jobs = s.jobs;
  int spilled = 0;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    jobs[i].device_affinity = device[i];
    spilled += shards[i] > 1 ? 1 : 0;
  }
  const RunReport r = run(jobs, options_for(s));
  if (const std::string e = first_failure(r); !e.empty()) {
    row.note = "no figure: " + e;
    return row;
  }
  row.makespan = span(r.trace);
  row.compute = compute_seconds(r.trace);
  row.note = "jobs pinned longest first";
  if (spilled > 0)
    row.note +=
        "; " + std::to_string(spilled) + " models larger than a device spill through theirs";
  return row;
}

// The planner's strategies for these jobs and devices (shard costs measured on this machine),
// run for real.
Row real_planner(const RealSetup& s, const RunPlan& p) {
  Row row{"5 planner's choice", std::nullopt, ""};
  int changed = 0;
  std::string what;
  for (std::size_t i = 0; i < p.plan.strategies.size(); ++i) {
    const JobStrategy& js = p.plan.strategies[i];
    if (js.replicas > 1 || js.micro_batches > 1 || js.device_affinity >= 0 || js.option > 0) {
      ++changed;
      if (!what.empty()) what += "; ";
      what += s.jobs[i].name + ": " + js.describe();
    }
  }
  const RunReport r = run(apply_plan(s.jobs, p), options_for(s));
  if (const std::string e = first_failure(r); !e.empty()) {
    row.note = "no figure: " + e;
    return row;
  }
  row.makespan = span(r.trace);
  row.compute = compute_seconds(r.trace);
  row.note = changed == 0 ? "the default strategies (nothing predicted faster)" : what;
  return row;
}

// Keeps the row with the smaller makespan (a row with a figure beats one without).
void keep_best(Row& best, const Row& r) {
  if (best.name.empty() || (r.makespan && (!best.makespan || *r.makespan < *best.makespan)))
    best = r;
}

// Every strategy once per round, rounds in turn, the best round of each kept: on a machine
// shared with other work, the rows then compare like with like.
void real_comparison(const RealSetup& s, int rounds) {
  std::printf("Real runs: %zu MLP jobs on %d virtual CPU devices of %.0f MiB, best of %d rounds\n",
              s.jobs.size(), s.devices, s.budget / double(1 << 20), rounds);
  const auto t0 = Clock::now();
  CostModel costs;
  const RunPlan plan = plan_run(s.jobs, options_for(s), costs);
  std::vector<Row> best(5);
  TraceLowerBound lb;
  std::vector<int> shards(s.jobs.size(), 1);
  bool have_bound = false;
  for (int round = 0; round < rounds; ++round) {
    const RunReport lrtf = run(s.jobs, options_for(s));
    Row lrtf_row{"4 Sharded-LRTF (Hydra)", std::nullopt, "all jobs at once",
                 compute_seconds(lrtf.trace)};
    if (const std::string e = first_failure(lrtf); !e.empty()) {
      lrtf_row.note = "failed: " + e;
      std::printf("round %d: the Sharded-LRTF run failed: %s\n", round + 1, e.c_str());
    } else {
      lrtf_row.makespan = span(lrtf.trace);
      for (std::size_t i = 0; i < s.jobs.size(); ++i)
        for (const TraceEvent& e : lrtf.trace)
          if (e.job == s.jobs[i].name) shards[i] = std::max(shards[i], e.shard + 1);
      // The bound from the round whose tasks ran fastest (the least contention).
      const TraceLowerBound b = trace_lower_bound(lrtf.trace, s.devices);
      if (!have_bound || b.bound < lb.bound) lb = b;
      have_bound = true;
    }
    const std::vector<Row> rows = {real_sequential(s), real_gpipe(s, shards),
                                   real_task_parallel(s, lrtf), lrtf_row, real_planner(s, plan)};
    for (std::size_t i = 0; i < rows.size(); ++i)
      keep_best(best[i], rows[i]);
  }
  if (!have_bound || !best[3].makespan)
    throw Error("every Sharded-LRTF round failed: no lower bound and nothing to compare with");
  std::printf("jobs (shards):");
  for (std::size_t i = 0; i < s.jobs.size(); ++i)
    std::printf(" %s (%d)", s.jobs[i].name.c_str(), shards[i]);
  std::printf("\n");
  std::printf(
      "lower bound %.3f s = max(compute %.3f s / %d devices, longest job %s %.3f s), "
      "task times from the fastest Sharded-LRTF round\n",
      lb.bound, lb.total_compute, s.devices, lb.longest_job_name.c_str(), lb.longest_job);
  print_header(true);
  for (const Row& r : best)
    print_row(r, *best[3].makespan, lb.bound, true);
  std::printf("(%.0f s for all real runs)\n\n",
              std::chrono::duration<double>(Clock::now() - t0).count());
  std::fflush(stdout);
}

RealSetup real_setup(bool quick, std::int64_t micro_batches) {
  RealSetup s;
  s.devices = 2;
  s.budget = 16u << 20;
  s.micro_batches = micro_batches;
  const std::int64_t steps = quick ? 8 : 30;
  // width, hidden layers (odd positions train with AdamW, the others with SGD): the last three
  // need two or more shards on a 16 MiB device (8 MiB per shard); the others fit one device.
  const std::vector<std::pair<std::int64_t, int>> sizes = {{256, 2}, {384, 2}, {512, 2},
                                                           {640, 2}, {512, 4}, {640, 3}};
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    const auto [width, hidden] = sizes[i];
    s.jobs.push_back(synthetic_mlp_job(
        bench::numbered("mlp", static_cast<long long>(width)) + "x" + std::to_string(hidden), width,
        hidden, steps, 0, i % 2 == 1));
  }
  return s;
}

// ==================================== the simulator at scale ====================================

// Job i of a mixed population: small (1 shard, 0.5-2 ms forwards), medium (2-3 shards) and large
// (4-8 shards, up to 8 ms per shard forward) models, 20 to 200 steps, evaluation every 50 steps.
std::vector<SimJob> mixed_jobs(int n, std::uint64_t seed) {
  std::vector<SimJob> jobs;
  for (int i = 0; i < n; ++i) {
    const auto u = [&](int k) { return uniform01(seed, static_cast<std::uint64_t>(i * 8 + k)); };
    const double size = u(0);
    const int shards = size < 0.5   ? 1
                       : size < 0.8 ? 2 + static_cast<int>(u(4) * 2)
                                    : 4 + static_cast<int>(u(4) * 5);
    const double fwd = (0.5e-3 + 1.5e-3 * u(1)) * (size < 0.5 ? 1.0 : size < 0.8 ? 2.0 : 4.0);
    const auto bytes = static_cast<std::size_t>((4 + 60 * u(2)) * (1 << 20));
    jobs.push_back(bench::synthetic_sim_job(i, shards, fwd, bytes,
                                            20 + static_cast<std::int64_t>(180 * u(3))));
  }
  return jobs;
}

SimOptions sim_options() {
  SimOptions o;
  o.submit_latency = 50e-6;
  return o;
}

Row sim_sequential(const std::vector<SimJob>& jobs, const std::vector<SimDevice>& devices) {
  return {"1 sequential model parallelism",
          simulate_sequential(jobs, devices, sim_options()).makespan,
          "each job alone on all devices"};
}

// GPipe: the jobs one at a time, each multi-shard job's batches in m micro-batches (a job of one
// shard has no pipeline to fill).
Row sim_gpipe(std::vector<SimJob> jobs, const std::vector<SimDevice>& devices, int m) {
  for (SimJob& j : jobs)
    if (j.shards.size() > 1) j.micro_batches = m;
  return {"2 GPipe, m = " + std::to_string(m),
          simulate_sequential(jobs, devices, sim_options()).makespan,
          "each job alone, multi-shard jobs in " + std::to_string(m) + " micro-batches"};
}

// One model per device, longest first (device_affinity; a model of several shards spills them
// through its one device).
Row sim_task_parallel(std::vector<SimJob> jobs, const std::vector<SimDevice>& devices) {
  std::vector<double> work;
  int spilled = 0;
  for (const SimJob& j : jobs) {
    work.push_back(job_bounds(j, devices.front(), sim_options()).chain);
    spilled += j.shards.size() > 1 ? 1 : 0;
  }
  const std::vector<int> device = longest_first(work, static_cast<int>(devices.size()));
  for (std::size_t i = 0; i < jobs.size(); ++i)
    jobs[i].device_affinity = device[i];
  return {"3 task parallelism", simulate(jobs, devices, sim_options()).makespan,
          "pinned longest first; " + std::to_string(spilled) + " multi-shard models spill"};
}

// The planner (runtime/planner): per job shards, replicas, micro-batches and device affinity,
// chosen by simulating Sharded-LRTF plans.
Row sim_planner(const std::vector<SimJob>& jobs, const std::vector<SimDevice>& devices,
                double& plan_bound) {
  PlannerOptions po;
  po.sim = sim_options();
  const Plan p = plan(bench::plan_jobs(jobs, 128), devices, po);
  plan_bound = p.lower_bound;
  const bench::StrategyCounts n = bench::count_strategies(p);
  char note[160];
  std::snprintf(note, sizeof note,
                "%d replicated, %d micro-batched, %d pinned; %d simulations in %.1f s",
                n.replicated, n.micro_batched, n.pinned, p.evaluations, p.search_seconds);
  return {"5 planner's choice", p.makespan, note};
}

void sim_comparison(bool quick, int micro_batches) {
  struct Case {
    int devices, jobs;
  };
  std::vector<Case> cases = {{8, 12}, {8, 100}, {64, 100}, {64, 500}, {512, 1000}};
  if (quick) cases = {{8, 12}, {64, 100}};
  std::printf(
      "Simulator at scale: GPU-like synthetic costs: half the jobs small (1 shard, 0.5-2 ms "
      "forwards), 30%% medium (2-3 shards, 1-4 ms), 20%% large (4-8 shards, 2-8 ms); 20 to 200 "
      "steps of batch 128, 25 GB/s links, 50 us per-task overhead\n");
  for (const Case& c : cases) {
    const auto t0 = Clock::now();
    const std::vector<SimJob> jobs = mixed_jobs(c.jobs, 23);
    const std::vector<SimDevice> devices = bench::gpu_devices(c.devices);
    const double bound = makespan_lower_bound(jobs, devices, sim_options());
    SimOptions lo = sim_options();
    lo.policy = "lrtf";
    const Row lrtf{"4 Sharded-LRTF (Hydra)", simulate(jobs, devices, lo).makespan,
                   "all jobs at once"};
    double plan_bound = 0;
    const Row planned = sim_planner(jobs, devices, plan_bound);
    std::vector<Row> rows = {sim_sequential(jobs, devices), sim_gpipe(jobs, devices, micro_batches),
                             sim_task_parallel(jobs, devices), lrtf, planned};
    std::printf(
        "\n%d devices, %d jobs: joint lower bound %.2f s = the least max(longest chain, work / "
        "devices) of one assignment of the planner's strategies to the jobs (the issue's bound, "
        "default strategies only: %.2f s)\n",
        c.devices, c.jobs, plan_bound, bound);
    print_header();
    for (const Row& r : rows)
      print_row(r, *lrtf.makespan, plan_bound);
    std::printf("(simulated in %.1f s)\n",
                std::chrono::duration<double>(Clock::now() - t0).count());
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    bool quick = false, real = true, sim = true;
    std::int64_t m = 4;
    int rounds = 0;
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--quick") {
        quick = true;
      } else if (a == "--real-only") {
        sim = false;
      } else if (a == "--sim-only") {
        real = false;
      } else if (a == "--rounds" && i + 1 < argc) {
        rounds = std::stoi(argv[++i]);
        check(rounds >= 1, "--rounds must be at least 1, got " + std::to_string(rounds));
      } else if (a == "--micro-batches" && i + 1 < argc) {
        m = std::stoll(argv[++i]);
        check(m >= 1, "--micro-batches must be at least 1, got " + std::to_string(m));
      } else {
        throw Error("unknown argument " + a +
                    " (allowed: --quick, --real-only, --sim-only, --rounds R, --micro-batches M)");
      }
    }
    if (rounds == 0) rounds = quick ? 1 : 3;
    if (real) real_comparison(real_setup(quick, m), rounds);
    if (sim) sim_comparison(quick, static_cast<int>(m));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "baselines: %s\n", e.what());
    return 1;
  }
  return 0;
}
