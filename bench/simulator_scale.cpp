// Simulated makespan of large plans: 8, 64 and 512 devices with 12 to 1000 jobs of mixed sizes
// under the lrtf, fifo and random policies, and with the strategies runtime/planner chooses
// (replicas, sharded data parallelism, micro-batches, device affinity; "planned" rows: lrtf,
// wall = the whole search), beside a lower bound, with the simulation's wall time. The policy
// rows' bound is the max(total work / devices, longest job) of the default strategies;
// the planned rows' is the joint bound over the planner's strategies (runtime/joint_lower_bound:
// the least max(longest chain, work / devices) of one assignment of a strategy per job), with the
// default-strategy bound in brackets. Task costs are synthetic (a GPU-like device:
// milliseconds per shard task, 25 GB/s links), so no device is needed.
//
//   simulator_scale [--quick]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench/sim_jobs.hpp"
#include "kernels/random.hpp"
#include "runtime/planner.hpp"
#include "runtime/simulator.hpp"

using namespace hydra;

namespace {

// Job i: 1 to 8 shards, 0.5 to 8 ms forwards, 20 to 200 steps, a few MB per shard.
std::vector<SimJob> make_jobs(int n, std::uint64_t seed) {
  std::vector<SimJob> jobs;
  for (int i = 0; i < n; ++i) {
    const auto u = [&](int k) { return uniform01(seed, static_cast<std::uint64_t>(i * 8 + k)); };
    const int shards = 1 + static_cast<int>(u(0) * 8);
    const double fwd = 0.5e-3 + 7.5e-3 * u(1) * u(1);
    const auto bytes = static_cast<std::size_t>((1 + 63 * u(2)) * (1 << 20));
    jobs.push_back(bench::synthetic_sim_job(i, shards, fwd, bytes,
                                            20 + static_cast<std::int64_t>(180 * u(3))));
  }
  return jobs;
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  struct Case {
    int devices, jobs;
  };
  std::vector<Case> cases = {{8, 12}, {8, 100}, {64, 100}, {64, 500}, {512, 1000}};
  if (quick) cases = {{8, 12}, {64, 100}};
  std::printf("%8s %6s %8s %10s %12s %12s %8s %10s %8s\n", "devices", "jobs", "policy", "tasks",
              "makespan s", "lower bd s", "ratio", "mean util", "wall s");
  for (const Case& c : cases) {
    const std::vector<SimJob> jobs = make_jobs(c.jobs, 17);
    const std::vector<SimDevice> devices = bench::gpu_devices(c.devices);
    for (const char* policy : {"lrtf", "fifo", "random"}) {
      SimOptions o;
      o.policy = policy;
      o.policy_seed = 1;
      o.submit_latency = 50e-6;
      const auto t0 = std::chrono::steady_clock::now();
      const SimResult r = simulate(jobs, devices, o);
      const double wall =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double lb = makespan_lower_bound(jobs, devices, o);
      double util = 0;
      for (const auto& [name, u] : r.utilisation)
        util += u;
      util /= static_cast<double>(r.utilisation.size());
      std::printf("%8d %6d %8s %10llu %12.2f %12.2f %8.3f %9.1f%% %8.2f\n", c.devices, c.jobs,
                  policy, static_cast<unsigned long long>(r.tasks), r.makespan, lb, r.makespan / lb,
                  100 * util, wall);
      std::fflush(stdout);
    }
    PlannerOptions po;
    po.sim.submit_latency = 50e-6;
    po.sim.policy_seed = 1;
    const Plan p = plan(bench::plan_jobs(jobs, 64), devices, po);
    const bench::StrategyCounts n = bench::count_strategies(p);
    std::printf(
        "%8d %6d %8s %10s %12.2f %12.2f %8.3f %10s %8.2f   (joint bound; default-strategy bound "
        "%.2f s, planner / it %.3f; default makespan %.2f s; %d replicated, %d micro-batched, %d "
        "pinned; %d simulations, scoring %.2f s)\n",
        c.devices, c.jobs, "planned", "-", p.makespan, p.lower_bound, p.makespan / p.lower_bound,
        "-", p.search_seconds, p.default_bound, p.makespan / p.default_bound, p.default_makespan,
        n.replicated, n.micro_batched, n.pinned, p.evaluations, p.scoring_seconds);
    std::fflush(stdout);
  }
  return 0;
}
