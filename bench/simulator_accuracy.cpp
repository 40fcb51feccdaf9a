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
#include "actors/simulate.hpp"
#include "bench/sim_jobs.hpp"
#include "kernels/model_zoo.hpp"
#include "kernels/optim/adamw.hpp"
#include "kernels/optim/sgd.hpp"
#include "kernels/random.hpp"
#include "runtime/cost_model.hpp"
#include "runtime/simulator.hpp"

using namespace hydra;
using bench::numbered;

int main() {
  set_blas_threads(1);
  CostModel costs;
  const std::vector<JobSpec> one = {synthetic_mlp_job("calibrate", 1024, 3, 6, 2)};
  const SimulationCheck cal = check_simulation("calibration", one, 1, 0, "fifo", costs);
  const SimLatency latency = calibrate_latency(cal);
  std::printf(
      "calibration (1 job, 1 device): measured %.3f s, simulated %.3f s, replayed %.3f s, "
      "%llu tasks: overhead %.2f / %.2f ms per task\n",
      cal.measured, cal.simulated, cal.replayed, static_cast<unsigned long long>(cal.tasks),
      1e3 * latency.model, 1e3 * latency.replay);
  std::vector<SimulationCheck> rows;
  std::vector<JobSpec> four;
  for (int i = 0; i < 4; ++i)
    four.push_back(synthetic_mlp_job(numbered("mlp", i), 1024, 3, 8, 2));
  rows.push_back(
      check_simulation("4 MLP, 2 shards, 2 dev, lrtf", four, 2, 0, "lrtf", costs, latency));
  rows.push_back(
      check_simulation("4 MLP, 2 shards, 2 dev, fifo", four, 2, 0, "fifo", costs, latency));
  rows.push_back(
      check_simulation("4 MLP, 2 shards, 1 dev, lrtf", four, 1, 0, "lrtf", costs, latency));
  std::vector<JobSpec> four3 = four;
  for (JobSpec& j : four3)
    j.shards = 3;
  rows.push_back(
      check_simulation("4 MLP, 3 shards, 2 dev, lrtf", four3, 2, 0, "lrtf", costs, latency));
  std::vector<JobSpec> mixed;
  for (int i = 0; i < 6; ++i) {
    JobSpec j = synthetic_mlp_job(numbered("mix", i), 384 + 192 * (i % 3), 2 + i % 3,
                                  4 + 2 * (i % 4), 0, i % 2 == 1);
    j.eval_every = i % 2 == 0 ? 3 : 0;
    if (i == 5) j.clip_grad_norm = 1.0;
    mixed.push_back(j);
  }
  rows.push_back(check_simulation("6 mixed, 3 dev, 48 MiB, lrtf", mixed, 3, 48u << 20, "lrtf",
                                  costs, latency));
  rows.push_back(check_simulation("6 mixed, 2 dev, 48 MiB, random", mixed, 2, 48u << 20, "random",
                                  costs, latency));
  std::vector<JobSpec> uneven;
  for (int i = 0; i < 6; ++i)
    uneven.push_back(
        synthetic_mlp_job(numbered("u", i), 512 + 256 * (i % 3), 2, i == 0 ? 30 : 6, 1 + i % 2));
  rows.push_back(
      check_simulation("6 MLP, 1 long, 2 dev, lrtf", uneven, 2, 0, "lrtf", costs, latency));
  rows.push_back(
      check_simulation("6 MLP, 1 long, 2 dev, fifo", uneven, 2, 0, "fifo", costs, latency));

  std::printf("%-32s %6s %10s %10s %7s %10s %7s\n", "run", "cores", "measured", "simulated",
              "ratio", "replayed", "ratio");
  double worst_sim = 0, worst_replay = 0;
  for (const SimulationCheck& c : rows) {
    std::printf("%-32s %6.2f %10.3f %10.3f %7.3f %10.3f %7.3f\n", c.name.c_str(), c.cores,
                c.measured, c.simulated, c.ratio(), c.replayed, c.replay_ratio());
    worst_sim = std::max(worst_sim, std::abs(c.ratio() - 1));
    worst_replay = std::max(worst_replay, std::abs(c.replay_ratio() - 1));
  }
  std::printf("worst |ratio - 1|: simulated (cost model) %.0f%%, replayed (trace) %.0f%%\n",
              100 * worst_sim, 100 * worst_replay);
  return 0;
}
