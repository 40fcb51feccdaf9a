// Re-planning during a run (RuntimeOptions::plan, replan), side by side in one process: a
// sweep-like run on the two virtual CPU devices where most jobs stop early (a rung at 10% of the
// steps stops all jobs but one, as successive halving with a large reduction factor would), run
// with the plan's strategies fixed and with re-planning, alternating, several rounds. Prints
// each round's makespan, the medians and their ratio, the strategy changes and the time the
// re-planner searched.
//
//   build/bench/replanning [--jobs N] [--steps S] [--width W] [--rounds R] [--quick]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "actors/hydra.hpp"
#include "actors/plan.hpp"
#include "actors/simulate.hpp"
#include "runtime/median.hpp"

using namespace hydra;

namespace {

// Stops every job but `keep` at its first validation (the rung): the decisions do not depend
// on the order jobs arrive, so both arms of the comparison stop the same jobs at the same step.
class Rung : public EarlyStopping {
 public:
  explicit Rung(std::string keep) : keep_(std::move(keep)) {}
  void add_job(const std::string&) override {}
  void report(const std::string&, std::int64_t, std::int64_t, double, double) override {}
  StopDecision decide(const std::string& job) override {
    return job == keep_ ? StopDecision::go_on : StopDecision::stop;
  }
  void job_ended(const std::string&) override {}
  std::string reason(const std::string&) const override { return "below the rung's top 1/N"; }

 private:
  std::string keep_;
};

// Makespan: first to last task of the run (setup before the first task excluded).
double makespan(const RunReport& r) {
  double first = 1e300, last = 0;
  for (const TraceEvent& e : r.trace) {
    first = std::min(first, e.start);
    last = std::max(last, e.end);
  }
  return last > first ? last - first : 0;
}

}  // namespace

int main(int argc, char** argv) {
  int n_jobs = 6, rounds = 3;
  std::int64_t steps = 200, width = 512;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> long long {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return std::atoll(argv[++i]);
    };
    if (a == "--jobs") {
      n_jobs = static_cast<int>(next());
    } else if (a == "--steps") {
      steps = next();
    } else if (a == "--width") {
      width = next();
    } else if (a == "--rounds") {
      rounds = static_cast<int>(next());
    } else if (a == "--quick") {
      steps = 60, width = 256, rounds = 1;
    } else {
      std::printf(
          "usage: %s [--jobs N (6)] [--steps S (200)] [--width W (512)] [--rounds R (3)] "
          "[--quick]\n",
          argv[0]);
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  if (n_jobs < 2 || steps < 20 || width < 1 || rounds < 1) {
    std::fprintf(stderr, "need --jobs >= 2, --steps >= 20, --width >= 1, --rounds >= 1\n");
    return 2;
  }
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) < 0) load[0] = -1;
  std::printf(
      "Re-planning: %d MLP jobs (128-%lld-%lld-%lld-10, SGD, batch 128, %lld steps) on 2 "
      "virtual CPU devices; every job but one stops at step %lld (its first validation).\n"
      "load average before: %.2f %.2f %.2f (shared machine)\n\n",
      n_jobs, static_cast<long long>(width), static_cast<long long>(width),
      static_cast<long long>(width), static_cast<long long>(steps),
      static_cast<long long>(steps / 10), load[0], load[1], load[2]);
  std::vector<JobSpec> jobs;
  for (int j = 0; j < n_jobs; ++j) {
    std::string name = "mlp";
    name += std::to_string(j);
    // Up to 2 shards (planner's choice); validation every 10% of the steps.
    JobSpec spec = synthetic_mlp_job(name, width, 3, steps, 0);
    spec.eval_every = steps / 10;
    jobs.push_back(spec);
  }
  RuntimeOptions o;
  o.devices = {{Device::cpu(0), 0}, {Device::cpu(1), 0}};
  CostModel costs;
  auto plan = std::make_shared<RunPlan>(plan_run(jobs, o, costs));
  std::fputs(explain(*plan).c_str(), stdout);
  const std::vector<JobSpec> planned = apply_plan(jobs, *plan);
  o.plan = plan;
  const std::string keep = jobs.back().name;

  std::vector<double> fixed, replanned;
  std::printf("\nround  fixed strategies  re-planning  ratio  changes  re-plans (search)\n");
  for (int r = 0; r < rounds; ++r) {
    double t[2] = {0, 0};
    RunReport with;
    // Alternate which arm runs first, so a load change hits both alike.
    for (int k = 0; k < 2; ++k) {
      const bool re = (k == 0) == (r % 2 == 1);
      RuntimeOptions ro = o;
      ro.replan.enabled = re;
      ro.early_stopping = std::make_shared<Rung>(keep);
      RunReport rep = run(planned, ro);
      for (const JobResult& j : rep.jobs)
        if (j.status == JobStatus::failed) {
          std::fprintf(stderr, "job %s failed: %s\n", j.name.c_str(), j.error.c_str());
          return 1;
        }
      t[re ? 1 : 0] = makespan(rep);
      if (re) with = std::move(rep);
    }
    fixed.push_back(t[0]);
    replanned.push_back(t[1]);
    std::printf("%5d  %14.2f s  %9.2f s  %5.2fx  %7zu  %d (%.3f s)\n", r + 1, t[0], t[1],
                t[0] / t[1], with.strategy_changes.size(), with.replans, with.replan_seconds);
    std::fputs(format_strategy_changes(with.strategy_changes).c_str(), stdout);
  }
  const double mf = median(fixed), mr = median(replanned);
  if (getloadavg(load, 3) < 0) load[0] = -1;
  std::printf("median %13.2f s  %9.2f s  %5.2fx  (medians of %d alternating rounds)\n", mf, mr,
              mf / mr, rounds);
  std::printf("load average after: %.2f %.2f %.2f\n", load[0], load[1], load[2]);
  return 0;
}
