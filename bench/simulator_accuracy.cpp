// Simulated vs measured makespan of small multi-model runs on virtual CPU devices, and whether
// the simulator ranks plans of the same jobs as they measure. Each run goes through hydra::run
// for real (`--repeats` times, in turn with the other plans of its set; the median makespan
// counts) and through the simulator:
//   simulated  the prediction: shard task times from the cost model (measured alone in this
//              process before the runs) slowed by each shard's measured contention while k CPU
//              devices compute at once (SimOptions::contention), plus the runtime's per-task
//              overhead measured on a run of a tiny job (measure_task_overhead);
//   earlier    the earlier prediction, for comparison: task times alone, CPU devices sharing the
//              cores CostModel::host_parallelism found free just before the run, an overhead
//              fitted on a one-job run (calibrate_latency);
//   replayed   the run's own task times (mean per job, shard and kind) with the measured
//              overhead: checks the schedule model alone.
// Then for each set of runs of the same jobs under different plans (devices, shard counts,
// policies) the measured and simulated orders are compared pairwise (ties: within the tie
// tolerance, by default the larger of 5% and the median spread of the repeated runs).
//
//   simulator_accuracy [--repeats N] [--tie FRACTION]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "actors/hydra.hpp"
#include "actors/simulate.hpp"
#include "bench/sim_jobs.hpp"
#include "kernels/core/error.hpp"
#include "runtime/cost_model.hpp"
#include "runtime/simulator.hpp"

using namespace hydra;
using bench::numbered;

namespace {

struct PlanRun {
  std::string name;
  const std::vector<JobSpec>* jobs;
  int devices;
  std::size_t budget;
  const char* policy;
};

struct Group {
  std::string name;
  std::vector<PlanRun> plans;
};

double number_arg(const char* flag, const char* value) {
  check(value != nullptr, std::string(flag) + " needs a value");
  char* end = nullptr;
  const double v = std::strtod(value, &end);
  check(end != value && *end == '\0', std::string(flag) + ": not a number: " + value);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  int repeats = 3;
  double tie = -1;  // default: max(5%, median spread of the repeated runs)
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--repeats") == 0) {
      repeats = static_cast<int>(number_arg(argv[i], i + 1 < argc ? argv[i + 1] : nullptr));
      ++i;
      check(repeats >= 1, "--repeats: at least 1");
    } else if (std::strcmp(argv[i], "--tie") == 0) {
      tie = number_arg(argv[i], i + 1 < argc ? argv[i + 1] : nullptr);
      ++i;
      check(tie >= 0, "--tie: not negative");
    } else {
      std::fprintf(stderr, "usage: simulator_accuracy [--repeats N] [--tie FRACTION]\n");
      return 2;
    }
  }
  set_blas_threads(1);
  CostModel costs;

  // The runtime's overhead per task, from a tiny job's run (not from the runs predicted).
  const double overhead = measure_task_overhead();
  // The earlier calibration, for the comparison column.
  const std::vector<JobSpec> one = {synthetic_mlp_job("calibrate", 1024, 3, 6, 2)};
  CheckOptions co;
  co.devices = 1;
  co.policy = "fifo";
  const SimulationCheck cal = check_simulation("calibration", one, co, costs);
  const SimLatency fitted = calibrate_latency(cal);
  std::printf(
      "per-task overhead measured on a tiny job: %.3f ms; earlier fit on a 1-job run (measured "
      "%.3f s, simulated %.3f s, %llu tasks): %.2f ms\n",
      1e3 * overhead, cal.measured, cal.shared_cores, static_cast<unsigned long long>(cal.tasks),
      1e3 * fitted.model);

  std::vector<JobSpec> four, four3;
  for (int i = 0; i < 4; ++i)
    four.push_back(synthetic_mlp_job(numbered("mlp", i), 1024, 3, 8, 2));
  four3 = four;
  for (JobSpec& j : four3)
    j.shards = 3;
  std::vector<JobSpec> mixed;
  for (int i = 0; i < 6; ++i) {
    JobSpec j = synthetic_mlp_job(numbered("mix", i), 384 + 192 * (i % 3), 2 + i % 3,
                                  4 + 2 * (i % 4), 0, i % 2 == 1);
    j.eval_every = i % 2 == 0 ? 3 : 0;
    if (i == 5) j.clip_grad_norm = 1.0;
    mixed.push_back(j);
  }
  // Plans with a strategy: one model per device (affinity), the long job data-parallel.
  std::vector<JobSpec> pinned = four;
  for (std::size_t i = 0; i < pinned.size(); ++i)
    pinned[i].device_affinity = static_cast<int>(i % 2);
  std::vector<JobSpec> uneven;
  for (int i = 0; i < 6; ++i)
    uneven.push_back(
        synthetic_mlp_job(numbered("u", i), 512 + 256 * (i % 3), 2, i == 0 ? 30 : 6, 1 + i % 2));
  std::vector<JobSpec> uneven_dp = uneven;
  uneven_dp[0].replicas = 2;
  const std::size_t mib48 = std::size_t{48} << 20;
  const std::vector<Group> groups = {
      {"4 MLP 1024x3, 8 steps",
       {{"4 MLP, 2 shards, 2 dev, lrtf", &four, 2, 0, "lrtf"},
        {"4 MLP, 2 shards, 2 dev, fifo", &four, 2, 0, "fifo"},
        {"4 MLP, 2 shards, 1 dev, lrtf", &four, 1, 0, "lrtf"},
        {"4 MLP, 2 shards, 3 dev, lrtf", &four, 3, 0, "lrtf"},
        {"4 MLP, 3 shards, 2 dev, lrtf", &four3, 2, 0, "lrtf"},
        {"4 MLP, 2 dev, one per device", &pinned, 2, 0, "lrtf"}}},
      {"6 mixed, 48 MiB devices",
       {{"6 mixed, 3 dev, lrtf", &mixed, 3, mib48, "lrtf"},
        {"6 mixed, 2 dev, random", &mixed, 2, mib48, "random"},
        {"6 mixed, 2 dev, lrtf", &mixed, 2, mib48, "lrtf"},
        {"6 mixed, 1 dev, lrtf", &mixed, 1, mib48, "lrtf"}}},
      {"6 MLP, 1 long",
       {{"6 MLP, 1 long, 2 dev, lrtf", &uneven, 2, 0, "lrtf"},
        {"6 MLP, 1 long, 2 dev, fifo", &uneven, 2, 0, "fifo"},
        {"6 MLP, 1 long, 1 dev, fifo", &uneven, 1, 0, "fifo"},
        {"6 MLP, long 2 replicas, lrtf", &uneven_dp, 2, 0, "lrtf"}}},
  };

  // The repeats go round the plans of a group (plan 1, plan 2, .., plan 1, ..), so a change in the
  // machine's load falls on every plan alike; each plan keeps its median run.
  std::vector<std::vector<SimulationCheck>> results;
  for (const Group& g : groups) {
    std::vector<std::vector<SimulationCheck>> tries(g.plans.size());
    for (int r = 0; r < repeats; ++r)
      for (std::size_t i = 0; i < g.plans.size(); ++i) {
        const PlanRun& p = g.plans[i];
        CheckOptions o;
        o.devices = p.devices;
        o.budget = p.budget;
        o.policy = p.policy;
        o.overhead = overhead;
        o.fitted = fitted;
        tries[i].push_back(check_simulation(p.name, *p.jobs, o, costs));
      }
    results.emplace_back();
    for (std::vector<SimulationCheck>& t : tries) {
      std::sort(t.begin(), t.end(), [](const SimulationCheck& x, const SimulationCheck& y) {
        return x.measured < y.measured;
      });
      SimulationCheck c = t[t.size() / 2];
      c.runs.clear();
      for (const SimulationCheck& x : t)
        c.runs.push_back(x.measured);
      c.cores = t.front().cores;
      for (const SimulationCheck& x : t)
        c.cores = std::min(c.cores, x.cores);
      results.back().push_back(std::move(c));
    }
  }

  std::printf("%-30s %5s %8s %6s %9s %6s %9s %6s %9s %6s\n", "run", "cores", "measured", "spread",
              "simulated", "ratio", "earlier", "ratio", "replayed", "ratio");
  double worst_sim = 0, worst_earlier = 0, worst_replay = 0, spread = 0;
  std::vector<double> spreads;
  for (const std::vector<SimulationCheck>& rows : results)
    for (const SimulationCheck& c : rows) {
      std::printf("%-30s %5.2f %8.3f %5.0f%% %9.3f %6.3f %9.3f %6.3f %9.3f %6.3f\n", c.name.c_str(),
                  c.cores, c.measured, 100 * c.spread(), c.simulated, c.ratio(), c.shared_cores,
                  c.shared_cores_ratio(), c.replayed, c.replay_ratio());
      worst_sim = std::max(worst_sim, std::abs(c.ratio() - 1));
      worst_earlier = std::max(worst_earlier, std::abs(c.shared_cores_ratio() - 1));
      worst_replay = std::max(worst_replay, std::abs(c.replay_ratio() - 1));
      spread = std::max(spread, c.spread());
      spreads.push_back(c.spread());
    }
  std::printf(
      "worst |ratio - 1|: simulated %.0f%%, earlier %.0f%%, replayed %.0f%%; spread of %d "
      "repeated runs: largest %.0f%%\n",
      100 * worst_sim, 100 * worst_earlier, 100 * worst_replay, repeats, 100 * spread);

  // Ranking: per group, the plans in measured order and the pairwise comparison.
  std::sort(spreads.begin(), spreads.end());
  const double typical = spreads[spreads.size() / 2];
  const double tol = tie >= 0 ? tie : std::max(0.05, typical);
  std::printf("ranking (ties within %.0f%%):\n", 100 * tol);
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const std::vector<SimulationCheck>& rows = results[g];
    std::vector<double> m, s, f;
    for (const SimulationCheck& c : rows) {
      m.push_back(c.measured);
      s.push_back(c.simulated);
      f.push_back(c.shared_cores);
    }
    const RankAgreement a = rank_agreement(m, s, tol), b = rank_agreement(m, f, tol);
    std::printf(
        "  %-26s %d pairs: %d measured ties; simulated: %d alike, %d opposite, %d tied "
        "(agreement %.0f%%, tau-b %.2f); earlier: %d alike, %d opposite, %d tied (%.0f%%, "
        "tau-b %.2f)\n",
        groups[g].name.c_str(), a.pairs, a.measured_ties, a.concordant, a.discordant,
        a.simulated_ties, 100 * a.agreement(), a.tau_b, b.concordant, b.discordant,
        b.simulated_ties, 100 * b.agreement(), b.tau_b);
    std::vector<std::size_t> by_m(rows.size()), by_s(rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i)
      by_m[i] = by_s[i] = i;
    std::sort(by_m.begin(), by_m.end(), [&](std::size_t x, std::size_t y) { return m[x] < m[y]; });
    std::sort(by_s.begin(), by_s.end(), [&](std::size_t x, std::size_t y) { return s[x] < s[y]; });
    std::printf("    measured order: ");
    for (std::size_t i : by_m)
      std::printf("[%s %.3f] ", rows[i].name.c_str(), m[i]);
    std::printf("\n    simulated order: ");
    for (std::size_t i : by_s)
      std::printf("[%s %.3f] ", rows[i].name.c_str(), s[i]);
    std::printf("\n");
  }
  return 0;
}
