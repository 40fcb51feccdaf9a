#include "actors/replanner.hpp"

#include <chrono>
#include <cstdio>
#include <set>

#include "kernels/core/error.hpp"

namespace hydra::actors {

namespace {

bool same_strategy(const JobStrategy& a, const JobStrategy& b) {
  return a.replicas == b.replicas && a.sharded_data_parallel == b.sharded_data_parallel &&
         a.micro_batches == b.micro_batches && a.device_affinity == b.device_affinity;
}

// The option of `job` with `shards` shards, or -1.
int option_with(const PlanJob& job, int shards) {
  for (std::size_t k = 0; k < job.options.size(); ++k)
    if (static_cast<int>(job.options[k].shards.size()) == shards) return static_cast<int>(k);
  return -1;
}

}  // namespace

ReplanDecision decide_replan(const ReplannerConfig& config, const std::vector<JobStrategy>& current,
                             const std::vector<std::int64_t>& steps_done,
                             const std::vector<bool>& ended) {
  const std::size_t n = config.jobs.size();
  check(current.size() == n && steps_done.size() == n && ended.size() == n,
        "re-planning: one strategy, step count and end flag per job (" + std::to_string(n) + ")");
  const auto t0 = std::chrono::steady_clock::now();
  // Each job keeps its shard count: its only option is the cut it runs with.
  std::vector<PlanJob> jobs(n);
  std::vector<bool> finished(n);
  std::vector<SimJob> left;
  for (std::size_t j = 0; j < n; ++j) {
    const PlanJob& full = config.jobs[j];
    check(!full.options.empty(), "re-planning: job " + full.job.name + " has no shard option");
    finished[j] = ended[j] || steps_done[j] >= full.job.steps;
    const int k = option_with(full, current[j].shards);
    if (k < 0 && !finished[j]) {
      std::string have;
      for (const ShardOption& o : full.options)
        have += (have.empty() ? "" : ", ") + std::to_string(o.shards.size());
      throw Error("re-planning: job " + full.job.name + " runs with " +
                  std::to_string(current[j].shards) + " shards but its plan has shard options " +
                  have);
    }
    jobs[j] = full;
    jobs[j].options = {full.options[static_cast<std::size_t>(std::max(0, k))]};
    if (finished[j]) continue;
    JobStrategy s = current[j];
    s.option = 0;
    SimJob sim = apply_strategy(jobs[j], s);
    sim.steps = full.job.steps - steps_done[j];
    left.push_back(std::move(sim));
  }
  ReplanDecision d;
  d.strategies = current;
  d.changed.assign(n, false);
  if (left.empty()) return d;
  d.predicted_before = simulate(left, config.devices, config.planner.sim).makespan;
  const Plan after = replan(jobs, steps_done, finished, config.devices, config.planner);
  d.predicted_after = after.makespan;
  d.search_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!(d.predicted_after < (1.0 - config.min_gain) * d.predicted_before) ||
      d.predicted_before - d.predicted_after < config.min_gain_seconds)
    return d;
  for (std::size_t j = 0; j < n; ++j) {
    if (finished[j] || same_strategy(after.strategies[j], current[j])) continue;
    JobStrategy s = after.strategies[j];
    s.option = current[j].option;
    s.shards = current[j].shards;
    d.strategies[j] = s;
    d.changed[j] = true;
    d.apply = true;
  }
  return d;
}

caf::behavior replanner_actor(caf::event_based_actor* self, ReplannerConfig config) {
  struct State {
    ReplannerConfig config;
    std::vector<caf::actor> jobs;
    std::vector<JobStrategy> current;
    std::vector<std::int64_t> steps;
    std::vector<bool> ended;
    std::vector<std::set<std::string>> rejected;  // per job: strategies whose trial failed
    std::string reasons;                          // the ends since the last re-plan
    bool scheduled = false;
  };
  auto st = std::make_shared<State>();
  const std::size_t n = config.jobs.size();
  st->current = config.initial;
  st->current.resize(n);
  st->steps.assign(n, 0);
  st->ended.assign(n, false);
  st->rejected.resize(n);
  st->config = std::move(config);
  auto valid = [st](int j) { return j >= 0 && static_cast<std::size_t>(j) < st->steps.size(); };
  return {
      [st](rp_jobs_atom, std::vector<caf::actor> jobs) { st->jobs = std::move(jobs); },
      [st, valid](rp_shards_atom, int j, int shards) {
        if (valid(j)) st->current[static_cast<std::size_t>(j)].shards = shards;
      },
      [st, valid](rp_step_atom, int j, std::int64_t step) {
        if (valid(j)) st->steps[static_cast<std::size_t>(j)] = step;
      },
      [st, valid](rp_rejected_atom, int j, const std::string& rejected, int replicas, bool sharded,
                  int micro_batches, int device_affinity) {
        if (!valid(j)) return;
        const auto k = static_cast<std::size_t>(j);
        st->rejected[k].insert(rejected);
        JobStrategy& s = st->current[k];
        s.replicas = replicas;
        s.sharded_data_parallel = sharded;
        s.micro_batches = micro_batches;
        s.device_affinity = device_affinity;
      },
      [self, st, valid](rp_ended_atom, int j, const std::string& why) {
        if (!valid(j)) return;
        st->ended[static_cast<std::size_t>(j)] = true;
        st->reasons += (st->reasons.empty() ? "" : "; ") + why;
        // Ends that arrive before the re-plan starts are handled by it together.
        if (!st->scheduled) {
          st->scheduled = true;
          self->send(self, rp_now_atom::value);
        }
      },
      [self, st](rp_now_atom) {
        st->scheduled = false;
        const std::string reason = std::move(st->reasons);
        st->reasons.clear();
        const ReplannerConfig& c = st->config;
        ReplanDecision d;
        try {
          d = decide_replan(c, st->current, st->steps, st->ended);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "hydra: re-planning after %s failed (strategies kept): %s\n",
                       reason.c_str(), e.what());
          return;
        }
        if (c.log) c.log->replanned(d.search_seconds);
        if (!d.apply) return;
        const double now = c.trace ? c.trace->now() : 0.0;
        for (std::size_t j = 0; j < d.changed.size(); ++j) {
          if (!d.changed[j] || j >= st->jobs.size()) continue;
          if (st->rejected[j].count(d.strategies[j].describe()) > 0) continue;  // measured slower
          StrategyOrder o;
          o.strategy = d.strategies[j];
          o.trial_steps = c.trial_steps;
          o.reason = reason;
          o.decided = now;
          o.predicted_before = d.predicted_before;
          o.predicted_after = d.predicted_after;
          self->send(st->jobs[j], rp_order_atom::value, std::move(o));
          st->current[j] = d.strategies[j];
        }
      },
  };
}

}  // namespace hydra::actors
