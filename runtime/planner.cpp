#include "runtime/planner.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>

#include "kernels/core/error.hpp"
#include "runtime/joint_lower_bound.hpp"

namespace hydra {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Bytes of shard `s` of `option` under strategy `st` on one device.
std::size_t shard_bytes(const ShardOption& option, std::size_t s, const JobStrategy& st) {
  const ShardCost& c = option.shards[s];
  const double batch = 1.0 / (std::max(1, st.replicas) * std::max(1, st.micro_batches));
  double params = 0, acts = 0;
  if (s < option.memory.size()) {
    params = static_cast<double>(option.memory[s].parameters);
    acts = static_cast<double>(option.memory[s].stash + option.memory[s].working);
  } else {
    params = 2.0 * static_cast<double>(c.value_bytes) + static_cast<double>(c.state_bytes);
    acts = static_cast<double>(c.stash_bytes + c.input_bytes + c.output_bytes + c.label_bytes);
  }
  if (st.sharded_data_parallel && st.replicas > 1)
    params -= static_cast<double>(c.state_bytes) * (st.replicas - 1) / st.replicas;
  return static_cast<std::size_t>(std::max(0.0, params) + acts * batch + 0.5);
}

// The two largest of `v` (a device holds a running and a prefetched or lookahead shard).
std::size_t two_largest(std::vector<std::size_t> v) {
  if (v.size() > 2) {
    std::nth_element(v.begin(), v.begin() + 1, v.end(), std::greater<>());
    v.resize(2);
  }
  return std::accumulate(v.begin(), v.end(), std::size_t{0});
}

// Largest shard of `job` under `s`.
std::size_t largest_shard(const PlanJob& job, const JobStrategy& s) {
  const ShardOption& opt = job.options[s.option];
  std::size_t m = 0;
  for (std::size_t k = 0; k < opt.shards.size(); ++k)
    m = std::max(m, shard_bytes(opt, k, s));
  return m;
}

// Every shard fits half a device (the other half holds the prefetched or lookahead shard, of
// this job or another), as the partitioner plans.
bool fits(const PlanJob& job, const JobStrategy& s, std::size_t device_memory) {
  return device_memory == 0 || largest_shard(job, s) <= device_memory / 2;
}

using Candidate = StrategyCandidate;

// Every strategy of the search space for one job that fits the memory budget, with its work
// and chain: shard options x replicas (powers of two, plain or sharded) x micro-batches (powers
// of two, with more than one shard).
}  // namespace

std::vector<StrategyCandidate> strategy_candidates(const PlanJob& job,
                                                   const std::vector<SimDevice>& devices,
                                                   const PlannerOptions& o) {
  check(!devices.empty(), "strategy_candidates: no devices");
  std::vector<Candidate> out;
  const int max_r = std::max(1, static_cast<int>(std::min<std::int64_t>(
                                    {static_cast<std::int64_t>(o.max_replicas),
                                     static_cast<std::int64_t>(devices.size()), job.batch_size})));
  for (std::size_t opt = 0; opt < job.options.size(); ++opt) {
    const int shards = static_cast<int>(job.options[opt].shards.size());
    for (int r = 1; r <= max_r; r *= 2)
      for (int sharded = 0; sharded <= (r > 1 ? 1 : 0); ++sharded)
        for (int m = 1; m <= o.max_micro_batches && r * m <= job.batch_size; m *= 2) {
          if (m > 1 && shards < 2) break;
          if (job.batch_size % (r * m) != 0) continue;  // the runtime needs equal parts
          JobStrategy st;
          st.option = opt;
          st.shards = shards;
          st.replicas = r;
          st.sharded_data_parallel = sharded == 1;
          st.micro_batches = m;
          if (!fits(job, st, o.device_memory)) continue;
          out.push_back({st, job_bounds(apply_strategy(job, st), devices.front(), o.sim)});
        }
  }
  return out;
}

namespace {

class Search {
 public:
  Search(const std::vector<PlanJob>& jobs, const std::vector<SimDevice>& devices,
         const PlannerOptions& o)
      : jobs_(jobs), devices_(devices), o_(o), t0_(Clock::now()) {}

  Plan run() {
    const std::size_t n = jobs_.size();
    std::vector<JobStrategy> base(n);
    for (std::size_t j = 0; j < n; ++j)
      base[j] = default_strategy(j);
    const double d = static_cast<double>(devices_.size());
    // Default work and chains (the bound).
    std::vector<JobBounds> def(n);
    double work = 0, longest = 0;
    for (std::size_t j = 0; j < n; ++j) {
      def[j] = job_bounds(apply_strategy(jobs_[j], base[j]), devices_.front(), o_.sim);
      work += def[j].work;
      longest = std::max(longest, def[j].chain);
    }
    // Every job's candidates, and the joint lower bound over them (runtime/joint_lower_bound).
    cands_.resize(n);
    std::vector<std::vector<CandidateCost>> costs(n);
    for (std::size_t j = 0; j < n; ++j) {
      cands_[j] = strategy_candidates(jobs_[j], devices_, o_);
      if (cands_[j].empty()) cands_[j].push_back({base[j], def[j]});
      for (const Candidate& k : cands_[j])
        costs[j].push_back({k.bounds.work, k.bounds.chain});
    }
    joint_ = joint_lower_bound(costs, devices_.size());
    lower_bound_ = joint_.bound;
    default_bound_ = std::max(work / d, longest);
    const double scoring_seconds = seconds_since(t0_);

    Plan best = evaluate(base);
    best.default_makespan = best.makespan;
    // Simulates `s`; keeps it when faster than the best so far. Returns its makespan
    // (infinity when out of budget).
    const auto consider_makespan = [&](const std::vector<JobStrategy>& s) {
      if (out_of_budget()) return std::numeric_limits<double>::infinity();
      Plan p = evaluate(s);
      const double m = p.makespan;
      if (p.makespan < best.makespan * (1 - 1e-6)) {
        p.default_makespan = best.default_makespan;
        best = std::move(p);
      }
      return m;
    };
    const auto consider = [&](const std::vector<JobStrategy>& s) {
      const double before = best.makespan;
      consider_makespan(s);
      return best.makespan < before;
    };

    // 1. Targets from the joint bound: every job takes its least-work candidate with a chain
    //    within T, for T = the bound's chain and 15% and 30% below it (a chain's tasks wait for
    //    devices busy with other jobs' tasks, so a shorter chain may end sooner in the
    //    simulation though the bound prefers less work); identical assignments run once.
    std::vector<std::pair<double, std::vector<JobStrategy>>> assigned;  // (makespan, plan)
    double best_target = joint_.chain;
    double best_target_makespan = std::numeric_limits<double>::infinity();
    for (double f : {1.0, 0.85, 0.7}) {
      if (out_of_budget()) break;
      const double t = f * joint_.chain;
      std::vector<JobStrategy> s(n);
      for (std::size_t j = 0; j < n; ++j)
        s[j] = pick(j, t).strategy;
      bool seen = false;
      for (const auto& a : assigned)
        seen = seen || same(a.second, s);
      if (seen) continue;
      const double m = consider_makespan(s);
      assigned.emplace_back(m, s);
      if (m < best_target_makespan) best_target_makespan = m, best_target = t;
      // The joint bound's own assignment with reserved devices (step 2's first variant) before
      // the other targets: where few critical jobs bound the makespan it is often the best, and
      // at 512 devices the time limit leaves room for only a few simulations.
      if (f == 1.0 && devices_.size() > 1) {
        std::vector<JobStrategy> r = reserve(s, t, 0.5, 1.0);
        if (!r.empty()) consider(r);
      }
    }

    // 2. Reserved devices: the jobs with a chain within theta x T (T the best target of 1.) are
    //    pinned, longest first onto the least loaded of devices k..D-1, the others (the critical
    //    jobs) stay free and find devices 0..k-1 without other jobs' tasks queued ahead of theirs;
    //    k = kf x (the critical jobs' work) / (total work / D).
    if (devices_.size() > 1) {
      std::vector<JobStrategy> s(n);
      for (std::size_t j = 0; j < n; ++j)
        s[j] = pick(j, best_target).strategy;
      for (double theta : {0.5, 0.7, 0.3})
        for (double kf : {1.0, 0.8, 1.2}) {
          if (out_of_budget()) break;
          if (theta == 0.5 && kf == 1.0 && best_target == joint_.chain) continue;  // tried in 1.
          std::vector<JobStrategy> r = reserve(s, best_target, theta, kf);
          if (!r.empty()) consider(r);
        }
    }

    // 3. One model per device (when jobs are at least as many as devices and every job fits a
    //    device whole): longest job first onto the device with the least work so far.
    if (o_.pin_jobs && n >= devices_.size() && !out_of_budget()) {
      std::vector<JobStrategy> s(n);
      bool fit = true;
      std::vector<std::size_t> order(n);
      std::iota(order.begin(), order.end(), std::size_t{0});
      std::sort(order.begin(), order.end(),
                [&](std::size_t a, std::size_t b) { return def[a].work > def[b].work; });
      std::vector<double> load(devices_.size(), 0.0);
      for (std::size_t j : order) {
        s[j] = base[j];
        std::size_t whole = 0;
        for (std::size_t k = 0; k < jobs_[j].options[s[j].option].shards.size(); ++k)
          whole += shard_bytes(jobs_[j].options[s[j].option], k, s[j]);
        if (o_.device_memory > 0 && whole > o_.device_memory) fit = false;
        const auto dev =
            static_cast<std::size_t>(std::min_element(load.begin(), load.end()) - load.begin());
        s[j].device_affinity = static_cast<int>(dev);
        load[dev] += def[j].work;
      }
      if (fit) consider(s);
    }
    // 4. Local improvement: shorten the chain of the job that ends last.
    std::vector<bool> frozen(n, false);
    while (!out_of_budget() && best.makespan > lower_bound_ * 1.001) {
      int c = -1;
      for (std::size_t j = 0; j < n; ++j)
        if (!frozen[j] && (c < 0 || best.job_end[j] > best.job_end[static_cast<std::size_t>(c)]))
          c = static_cast<int>(j);
      if (c < 0 || best.job_end[static_cast<std::size_t>(c)] < 0.97 * best.makespan) break;
      const auto cj = static_cast<std::size_t>(c);
      frozen[cj] = true;
      const double chain =
          job_bounds(best.jobs[cj], devices_.front(), o_.sim).chain;  // current chain
      std::vector<const Candidate*> moves;
      for (const Candidate& k : cands_[cj])
        if (k.bounds.chain < 0.98 * chain) moves.push_back(&k);
      std::sort(moves.begin(), moves.end(), [](const Candidate* a, const Candidate* b) {
        return a->bounds.work < b->bounds.work;
      });
      for (std::size_t m = 0; m < std::min<std::size_t>(4, moves.size()); ++m) {
        std::vector<JobStrategy> s = best.strategies;
        s[cj] = moves[m]->strategy;
        if (consider(s)) {
          frozen[cj] = false;
          break;
        }
      }
    }

    best.lower_bound = lower_bound_;
    best.default_bound = default_bound_;
    best.evaluations = evaluations_;
    best.scoring_seconds = scoring_seconds;
    best.search_seconds = seconds_since(t0_);
    return best;
  }

 private:
  // The least-work candidate of job j with a chain within `target`, else the shortest chain.
  const Candidate& pick(std::size_t j, double target) const {
    const Candidate* best = nullptr;
    const Candidate* shortest = nullptr;
    for (const Candidate& k : cands_[j]) {
      if (!shortest || k.bounds.chain < shortest->bounds.chain) shortest = &k;
      if (k.bounds.chain <= target && (!best || k.bounds.work < best->bounds.work)) best = &k;
    }
    return best ? *best : *shortest;
  }

  static bool same(const std::vector<JobStrategy>& a, const std::vector<JobStrategy>& b) {
    for (std::size_t j = 0; j < a.size(); ++j)
      if (a[j].option != b[j].option || a[j].replicas != b[j].replicas ||
          a[j].sharded_data_parallel != b[j].sharded_data_parallel ||
          a[j].micro_batches != b[j].micro_batches || a[j].device_affinity != b[j].device_affinity)
        return false;
    return a.size() == b.size();
  }

  // `s` with the jobs whose chain is within theta x target pinned (step 2), or empty when no job
  // or every job is critical.
  std::vector<JobStrategy> reserve(std::vector<JobStrategy> s, double target, double theta,
                                   double kf) const {
    const std::size_t n = s.size(), devices = devices_.size();
    std::vector<double> work(n);
    std::vector<std::size_t> pinned;
    double total = 0, critical = 0;
    for (std::size_t j = 0; j < n; ++j) {
      const JobBounds b = job_bounds(apply_strategy(jobs_[j], s[j]), devices_.front(), o_.sim);
      work[j] = b.work;
      total += b.work;
      if (b.chain > theta * target)
        critical += b.work;
      else
        pinned.push_back(j);
    }
    if (pinned.empty() || pinned.size() == n || total <= 0) return {};
    const double level = total / static_cast<double>(devices);
    const auto k = static_cast<std::size_t>(std::clamp<double>(
        std::round(kf * critical / level), 1.0, static_cast<double>(devices - 1)));
    std::sort(pinned.begin(), pinned.end(),
              [&](std::size_t a, std::size_t b) { return work[a] > work[b]; });
    std::vector<double> load(devices - k, 0.0);
    for (std::size_t j : pinned) {
      const auto d =
          static_cast<std::size_t>(std::min_element(load.begin(), load.end()) - load.begin());
      load[d] += work[j];
      s[j].device_affinity = static_cast<int>(k + d);
    }
    return s;
  }

  bool out_of_budget() const {
    return evaluations_ >= o_.max_evaluations || seconds_since(t0_) > o_.time_limit_seconds;
  }

  // The first shard option whose shards fit, with one replica and one micro-batch.
  JobStrategy default_strategy(std::size_t j) const {
    const PlanJob& job = jobs_[j];
    JobStrategy s;
    std::size_t need = 0;
    for (s.option = 0; s.option < job.options.size(); ++s.option) {
      s.shards = static_cast<int>(job.options[s.option].shards.size());
      if (fits(job, s, o_.device_memory)) return s;
      need = largest_shard(job, s);
    }
    throw Error("plan: job " + job.job.name + " has a shard of " + std::to_string(need) +
                " bytes even with " + std::to_string(s.shards) + " shards, more than half of the " +
                std::to_string(o_.device_memory) +
                " bytes of a device (the other half holds the next shard)");
  }

  Plan evaluate(const std::vector<JobStrategy>& s) {
    ++evaluations_;
    Plan p;
    p.strategies = s;
    for (std::size_t j = 0; j < jobs_.size(); ++j) {
      p.jobs.push_back(apply_strategy(jobs_[j], s[j]));
      p.job_memory.push_back(strategy_memory(jobs_[j], s[j]));
    }
    const SimResult r = simulate(p.jobs, devices_, o_.sim);
    p.makespan = r.makespan;
    p.job_end = r.job_end;
    // Per device: the two largest shards among the jobs that may run there.
    std::vector<std::size_t> anywhere;
    std::vector<std::vector<std::size_t>> pinned(devices_.size());
    for (std::size_t j = 0; j < jobs_.size(); ++j) {
      const ShardOption& opt = jobs_[j].options[s[j].option];
      std::vector<std::size_t>& into = s[j].device_affinity >= 0
                                           ? pinned[static_cast<std::size_t>(s[j].device_affinity)]
                                           : anywhere;
      for (std::size_t k = 0; k < opt.shards.size(); ++k)
        into.push_back(shard_bytes(opt, k, s[j]));
    }
    for (std::size_t d = 0; d < devices_.size(); ++d) {
      std::vector<std::size_t> v = pinned[d];
      if (!anywhere.empty()) {
        std::vector<std::size_t> top = anywhere;
        if (top.size() > 2) {
          std::nth_element(top.begin(), top.begin() + 1, top.end(), std::greater<>());
          top.resize(2);
        }
        v.insert(v.end(), top.begin(), top.end());
      }
      p.device_memory.push_back(v.empty() ? 0 : two_largest(v));
    }
    return p;
  }

  const std::vector<PlanJob>& jobs_;
  const std::vector<SimDevice>& devices_;
  PlannerOptions o_;
  Clock::time_point t0_;
  std::vector<std::vector<Candidate>> cands_;
  JointBound joint_;
  double lower_bound_ = 0, default_bound_ = 0;
  int evaluations_ = 0;
};

}  // namespace

std::string JobStrategy::describe() const {
  std::string s = std::to_string(shards) + (shards == 1 ? " shard" : " shards");
  if (replicas > 1)
    s +=
        ", " + std::to_string(replicas) + " replicas" + (sharded_data_parallel ? " (sharded)" : "");
  if (micro_batches > 1) s += ", " + std::to_string(micro_batches) + " micro-batches";
  if (device_affinity >= 0) s += ", device " + std::to_string(device_affinity);
  return s;
}

std::size_t strategy_memory(const PlanJob& job, const JobStrategy& s) {
  check(s.option < job.options.size(),
        "strategy_memory: job " + job.job.name + " has no option " + std::to_string(s.option));
  const ShardOption& opt = job.options[s.option];
  std::vector<std::size_t> v;
  for (std::size_t k = 0; k < opt.shards.size(); ++k)
    v.push_back(shard_bytes(opt, k, s));
  return two_largest(v);
}

SimJob apply_strategy(const PlanJob& job, const JobStrategy& s) {
  check(s.option < job.options.size(),
        "apply_strategy: job " + job.job.name + " has no option " + std::to_string(s.option));
  SimJob j = job.job;
  j.shards = job.options[s.option].shards;
  j.replicas = s.replicas;
  j.sharded_data_parallel = s.sharded_data_parallel;
  j.micro_batches = s.micro_batches;
  j.device_affinity = s.device_affinity;
  return j;
}

Plan plan(const std::vector<PlanJob>& jobs, const std::vector<SimDevice>& devices,
          const PlannerOptions& options) {
  check(!devices.empty(), "plan: no devices");
  for (const PlanJob& j : jobs) {
    check(!j.options.empty(), "plan: job " + j.job.name + " has no shard option");
    for (const ShardOption& o : j.options)
      check(!o.shards.empty(), "plan: job " + j.job.name + " has a shard option without shards");
    check(j.batch_size >= 1, "plan: job " + j.job.name + " has batch_size " +
                                 std::to_string(j.batch_size) + " (at least 1)");
  }
  if (jobs.empty()) {
    Plan p;
    p.device_memory.assign(devices.size(), 0);
    return p;
  }
  return Search(jobs, devices, options).run();
}

Plan replan(const std::vector<PlanJob>& jobs, const std::vector<std::int64_t>& steps_done,
            const std::vector<bool>& finished, const std::vector<SimDevice>& devices,
            const PlannerOptions& options) {
  check(steps_done.size() == jobs.size() && finished.size() == jobs.size(),
        "replan: steps_done and finished need one entry per job (" + std::to_string(jobs.size()) +
            ")");
  std::vector<PlanJob> left;
  std::vector<std::size_t> index;
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    check(steps_done[j] >= 0, "replan: job " + jobs[j].job.name + " has steps_done " +
                                  std::to_string(steps_done[j]) + " (at least 0)");
    const std::int64_t rest = jobs[j].job.steps - steps_done[j];
    if (finished[j] || rest <= 0) continue;
    PlanJob p = jobs[j];
    p.job.steps = rest;  // evaluation points then count from now (an approximation)
    left.push_back(std::move(p));
    index.push_back(j);
  }
  const Plan sub = plan(left, devices, options);
  Plan out;
  out.strategies.resize(jobs.size());
  out.jobs.resize(jobs.size());
  out.job_end.assign(jobs.size(), 0.0);
  out.job_memory.assign(jobs.size(), 0);
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    out.strategies[j].shards = static_cast<int>(jobs[j].options[0].shards.size());
    out.jobs[j] = apply_strategy(jobs[j], out.strategies[j]);
    out.jobs[j].steps = 0;
  }
  for (std::size_t k = 0; k < index.size(); ++k) {
    out.strategies[index[k]] = sub.strategies[k];
    out.jobs[index[k]] = sub.jobs[k];
    out.job_end[index[k]] = sub.job_end[k];
    out.job_memory[index[k]] = sub.job_memory[k];
  }
  out.makespan = sub.makespan;
  out.device_memory = sub.device_memory;
  out.lower_bound = sub.lower_bound;
  out.default_bound = sub.default_bound;
  out.default_makespan = sub.default_makespan;
  out.evaluations = sub.evaluations;
  out.search_seconds = sub.search_seconds;
  return out;
}

}  // namespace hydra
