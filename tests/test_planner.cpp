#include <doctest/doctest.h>

#include <algorithm>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "actors/plan.hpp"
#include "actors/simulate.hpp"
#include "kernels/random.hpp"
#include "runtime/joint_lower_bound.hpp"
#include "runtime/planner.hpp"
#include "runtime/simulator.hpp"
#include "tests/sim_test_util.hpp"

using namespace hydra;
using test::fixed_cost;
using test::fixed_job;
using test::numbered;

namespace {

std::map<std::string, int> kinds_of(const SimResult& r) {
  std::map<std::string, int> k;
  for (const TraceEvent& e : r.trace)
    ++k[e.kind];
  return k;
}

}  // namespace

// --- simulator: strategies ------------------------------------------------------------------

TEST_CASE("simulator: two replicas on two devices halve a lone job's compute") {
  SimJob j = fixed_job("a", 1, 1.0, 2.0, 3, 0.2);
  SimOptions o;
  o.trace = true;
  const SimResult plain = simulate({j}, uniform_devices(2), o);
  // Default: the update is fused into the backward: 3 x (1 + 2 + 0.2).
  CHECK(plain.makespan == doctest::Approx(9.6));
  j.replicas = 2;
  const SimResult dp = simulate({j}, uniform_devices(2), o);
  // Per step: both replicas' forward (0.5) and backward (1) side by side, then both apply the
  // full update (0.2) side by side: 3 x 1.7.
  CHECK(dp.makespan == doctest::Approx(5.1));
  const auto k = kinds_of(dp);
  CHECK(k.at("forward") == 6);
  CHECK(k.at("backward") == 6);
  CHECK(k.at("update") == 6);
  REQUIRE(dp.utilisation.size() == 2);
  CHECK(dp.utilisation[0].second == doctest::Approx(1.0));
  CHECK(dp.utilisation[1].second == doctest::Approx(1.0));
  // Sharded data parallelism: each replica updates half the parameters: 3 x (1.5 + 0.1).
  j.sharded_data_parallel = true;
  CHECK(simulate({j}, uniform_devices(2), o).makespan == doctest::Approx(4.8));
  CHECK(job_bounds(j, uniform_devices(1).front()).chain == doctest::Approx(4.8));
  CHECK(job_bounds(j, uniform_devices(1).front()).work == doctest::Approx(9.6));
}

TEST_CASE("simulator: replicas all-reduce gradients over the link before the update") {
  SimJob j = fixed_job("a", 1, 1.0, 2.0, 1);
  j.shards[0].value_bytes = 1000;
  j.replicas = 2;
  const LinkCost link{0.25, 1000};  // 1000 bytes: 1.25 s a copy
  const SimResult r = simulate({j}, uniform_devices(2, link));
  // Each replica: load values 1.25, forward 0.5; load values 1.25, backward 1, store grads 1.25;
  // all-reduce on the host: 0.25 + 2 x 2 replicas x 1 s; update: load values and grads 2.5,
  // store values 1.25.
  const double expected = 1.25 + 0.5 + 1.25 + 1.0 + 1.25 + 4.25 + 2.5 + 1.25;
  CHECK(r.makespan == doctest::Approx(expected));
  CHECK(job_bounds(j, uniform_devices(1, link).front()).chain == doctest::Approx(expected));
}

TEST_CASE("simulator: GPipe micro-batches over S shards on S devices take (m + S - 1) / m") {
  for (int m : {1, 2, 4, 8}) {
    SimJob j = fixed_job("pipe", 4, 1.0, 2.0, 2);
    j.micro_batches = m;
    SimOptions o;
    o.trace = true;
    const SimResult r = simulate({j}, uniform_devices(4), o);
    INFO("micro-batches " << m);
    // Forward and backward each fill a pipeline of m + S - 1 stages of 1/m of a shard task.
    const double step = (m + 4 - 1) * (1.0 + 2.0) / m;
    CHECK(r.makespan == doctest::Approx(2 * step));
    CHECK(job_bounds(j, uniform_devices(1).front()).chain == doctest::Approx(2 * step));
    const auto k = kinds_of(r);
    CHECK(k.at("forward") == 2 * 4 * m);
    CHECK(k.at("backward") == 2 * 4 * m);
    if (m > 1) CHECK(k.at("update") == 2 * 4);  // one per shard and step, after accumulation
  }
}

TEST_CASE("simulator: a job pinned to a device runs all its tasks there") {
  std::vector<SimJob> jobs = {fixed_job("a", 2, 1.0, 2.0, 2), fixed_job("b", 2, 1.0, 2.0, 2)};
  jobs[0].device_affinity = 1;
  jobs[1].device_affinity = 1;
  SimOptions o;
  o.trace = true;
  const SimResult r = simulate(jobs, uniform_devices(3), o);
  for (const TraceEvent& e : r.trace)
    CHECK(e.device == "cpu:1");
  CHECK(r.makespan == doctest::Approx(2 * 2 * 6.0));  // both chains one after another
  CHECK(r.stolen == 0);
  jobs[1].device_affinity = 3;
  CHECK_THROWS_WITH(simulate(jobs, uniform_devices(3)),
                    doctest::Contains("device_affinity 3 but there are only 3 devices"));
  jobs[1].device_affinity = -1;
  jobs[1].replicas = 0;
  CHECK_THROWS_WITH(simulate(jobs, uniform_devices(3)), doctest::Contains("replicas 0"));
}

TEST_CASE("simulator: the sequential baseline runs one job after another on all devices") {
  std::vector<SimJob> jobs = {fixed_job("a", 2, 1.0, 2.0, 2), fixed_job("b", 1, 1.0, 1.0, 3)};
  const SimResult r = simulate_sequential(jobs, uniform_devices(2));
  CHECK(r.job_end[0] == doctest::Approx(12.0));
  CHECK(r.job_end[1] == doctest::Approx(18.0));
  CHECK(r.makespan == doctest::Approx(18.0));
  CHECK(simulate(jobs, uniform_devices(2)).makespan < r.makespan);
}

// --- planner ----------------------------------------------------------------------------------

namespace {

// A job with one shard option of `shards` equal shards of `bytes` parameter values each.
PlanJob plan_job(const std::string& name, int shards, double forward, std::int64_t steps,
                 std::size_t bytes = 1 << 20) {
  PlanJob p;
  p.job = fixed_job(name, shards, forward, 2 * forward, steps, 0.1 * forward);
  ShardOption o;
  for (ShardCost c : p.job.shards) {
    c.value_bytes = bytes;
    c.state_bytes = bytes;
    c.stash_bytes = bytes / 4;
    c.input_bytes = c.output_bytes = bytes / 8;
    o.shards.push_back(c);
  }
  p.options.push_back(o);
  p.batch_size = 64;
  return p;
}

std::vector<SimJob> default_jobs(const std::vector<PlanJob>& jobs) {
  std::vector<SimJob> out;
  for (const PlanJob& p : jobs)
    out.push_back(apply_strategy(p, JobStrategy{0, static_cast<int>(p.options[0].shards.size())}));
  return out;
}

}  // namespace

TEST_CASE("planner: never slower than Sharded-LRTF with the default strategies") {
  const LinkCost link{1e-5, 1e10};
  for (int devices : {2, 8, 32}) {
    for (int n : {1, 5, 40}) {
      std::vector<PlanJob> jobs;
      for (int i = 0; i < n; ++i)
        jobs.push_back(
            plan_job(numbered("j", i), 1 + i % 4, 0.01 * (1 + (i * 7) % 5), 5 + (i * 13) % 30));
      PlannerOptions o;
      o.sim.submit_latency = 1e-4;
      o.time_limit_seconds = 5;
      const Plan p = plan(jobs, uniform_devices(devices, link), o);
      const double plain =
          simulate(default_jobs(jobs), uniform_devices(devices, link), o.sim).makespan;
      INFO(devices << " devices, " << n << " jobs");
      CHECK(p.default_makespan == doctest::Approx(plain));
      CHECK(p.makespan <= plain * (1 + 1e-9));
      CHECK(p.makespan >= p.lower_bound * (1 - 1e-9));
      // The plan's prediction is a simulation of its jobs.
      CHECK(simulate(p.jobs, uniform_devices(devices, link), o.sim).makespan ==
            doctest::Approx(p.makespan));
      REQUIRE(p.strategies.size() == jobs.size());
      REQUIRE(p.job_end.size() == jobs.size());
      CHECK(p.device_memory.size() == static_cast<std::size_t>(devices));
    }
  }
}

TEST_CASE("planner: uses replicas when there are more devices than jobs") {
  std::vector<PlanJob> jobs = {plan_job("big", 2, 0.05, 40), plan_job("small", 1, 0.01, 10)};
  const Plan p = plan(jobs, uniform_devices(8, {1e-5, 1e10}));
  std::printf("  2 jobs on 8 devices: default %.3f s, planned %.3f s (%s), lower bound %.3f s\n",
              p.default_makespan, p.makespan, p.strategies[0].describe().c_str(), p.lower_bound);
  CHECK(p.strategies[0].replicas > 1);
  CHECK(p.makespan < 0.6 * p.default_makespan);
  CHECK(p.job_end[0] <= p.makespan);
}

TEST_CASE("planner: a model too big for one device gets at least two shards") {
  // One shard: 3 MiB of values, as much gradient and state, 1.5 MiB of activations: 10.5 MiB;
  // two shards: 6 MiB each.
  PlanJob big = plan_job("big", 1, 0.05, 10, 3u << 20);
  ShardOption two;
  for (int s = 0; s < 2; ++s) {
    ShardCost c = big.options[0].shards[0];
    c.value_bytes /= 2;
    c.state_bytes /= 2;
    c.forward /= 2;
    c.backward /= 2;
    two.shards.push_back(c);
  }
  big.options.push_back(two);
  PlannerOptions o;
  o.device_memory = 14u << 20;  // half: 7 MiB per shard
  const Plan p = plan({big, plan_job("small", 1, 0.01, 10)}, uniform_devices(2), o);
  CHECK(p.strategies[0].shards >= 2);
  CHECK(p.strategies[0].option == 1);
  for (std::size_t m : p.device_memory)
    CHECK(m <= o.device_memory);
  CHECK(strategy_memory(big, p.strategies[0]) == p.job_memory[0]);
  o.device_memory = 10u << 20;  // even the two-shard cut does not fit
  CHECK_THROWS_WITH(plan({big}, uniform_devices(2), o), doctest::Contains("more than half"));
}

TEST_CASE("planner: re-plans the remaining work when a job stops early") {
  std::vector<PlanJob> jobs;
  for (int i = 0; i < 4; ++i)
    jobs.push_back(plan_job(numbered("j", i), 2, 0.02, 30));
  const std::vector<SimDevice> devices = uniform_devices(4, {1e-5, 1e10});
  const Plan before = plan(jobs, devices);
  // Job 0 stopped, the others are half done: replicas for them now.
  const Plan after = replan(jobs, {10, 15, 15, 15}, {true, false, false, false}, devices);
  CHECK(after.job_end[0] == 0.0);
  CHECK(after.jobs[0].steps == 0);
  CHECK(after.jobs[1].steps == 15);
  CHECK(after.makespan < 0.6 * before.makespan);
  int parallel = 0;  // 3 jobs on 4 devices: some get replicas or micro-batches
  for (std::size_t j = 1; j < 4; ++j)
    parallel += after.strategies[j].replicas * after.strategies[j].micro_batches > 1 ? 1 : 0;
  CHECK(parallel > 0);
  CHECK_THROWS_WITH(replan(jobs, {1}, {false}, devices), doctest::Contains("one entry per job"));
}

TEST_CASE("explain: plans JobSpecs for the run's devices and prints each job's strategy") {
  std::vector<JobSpec> jobs;
  for (int i = 0; i < 3; ++i)
    jobs.push_back(synthetic_mlp_job(numbered("mlp", i), 512, 3, 4 + 4 * i, 0, i == 2));
  RuntimeOptions o;
  o.devices = {{Device::cpu(0), 16u << 20}, {Device::cpu(1), 16u << 20}};
  CostModel costs;
  const RunPlan p = plan_run(jobs, o, costs);
  const std::string text = explain(p);
  std::printf("%s", text.c_str());
  REQUIRE(p.plan.strategies.size() == 3);
  // 0.6 M parameters with AdamW state (9.6 MB) do not fit 8 MiB per shard: two shards or more.
  CHECK(p.plan.strategies[2].shards >= 2);
  for (std::size_t m : p.plan.device_memory)
    CHECK(m <= (16u << 20));
  for (const JobSpec& j : jobs)
    CHECK(text.find(j.name) != std::string::npos);
  CHECK(text.find("predicted makespan") != std::string::npos);
  CHECK(text.find("at layers") != std::string::npos);
  CHECK(p.plan.makespan <= p.plan.default_makespan);
  const std::vector<JobSpec> applied = apply_plan(jobs, p);
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    CHECK(applied[j].shards == static_cast<std::size_t>(p.plan.strategies[j].shards));
    CHECK(applied[j].replicas == static_cast<std::size_t>(p.plan.strategies[j].replicas));
    CHECK(applied[j].micro_batches == p.plan.strategies[j].micro_batches);
  }
  CHECK_THROWS_WITH(apply_plan({jobs[0]}, p), doctest::Contains("the plan has 3"));
}

// --- joint lower bound ------------------------------------------------------------------------

namespace {

// max(longest chain, total work / devices) of one assignment, by brute force over all of them.
double brute_force_bound(const std::vector<std::vector<CandidateCost>>& c, std::size_t devices) {
  std::vector<std::size_t> at(c.size(), 0);
  double best = std::numeric_limits<double>::infinity();
  for (;;) {
    std::vector<CandidateCost> a;
    for (std::size_t j = 0; j < c.size(); ++j)
      a.push_back(c[j][at[j]]);
    best = std::min(best, assignment_bound(a, devices));
    std::size_t j = 0;
    while (j < c.size() && ++at[j] == c[j].size())
      at[j++] = 0;
    if (j == c.size()) return best;
  }
}

}  // namespace

TEST_CASE("joint lower bound: equals the least bound over all assignments (brute force)") {
  // By hand: job a (work 4 chain 4 | work 6 chain 2), job b (work 2 chain 3 | work 5 chain 1),
  // 2 devices. Assignments: (4,4)+(2,3): max(4, 3) = 4; (6,2)+(2,3): max(3, 4) = 4;
  // (4,4)+(5,1): max(4, 4.5) = 4.5; (6,2)+(5,1): max(2, 5.5) = 5.5. The least is 4, the
  // independent bound max(least work 6 / 2, max of the shortest chains 2) only 3.
  const std::vector<std::vector<CandidateCost>> hand = {{{4, 4}, {6, 2}}, {{2, 3}, {5, 1}}};
  const JointBound h = joint_lower_bound(hand, 2);
  CHECK(h.bound == doctest::Approx(4.0));
  CHECK(brute_force_bound(hand, 2) == doctest::Approx(4.0));
  REQUIRE(h.choice.size() == 2);
  CHECK(assignment_bound({hand[0][h.choice[0]], hand[1][h.choice[1]]}, 2) ==
        doctest::Approx(h.bound));
  std::uint64_t seed = 7;
  const auto next = [&] { return static_cast<double>((seed = splitmix64(seed)) % 1000) / 100; };
  for (int trial = 0; trial < 300; ++trial) {
    const std::size_t jobs = 1 + static_cast<std::size_t>(next()) % 5;
    const std::size_t devices = 1 + static_cast<std::size_t>(next()) % 4;
    std::vector<std::vector<CandidateCost>> c(jobs);
    for (auto& job : c) {
      const std::size_t k = 1 + static_cast<std::size_t>(next()) % 4;
      for (std::size_t i = 0; i < k; ++i)
        job.push_back({next() + 0.01, next() + 0.01});
    }
    const JointBound b = joint_lower_bound(c, devices);
    INFO("trial " << trial);
    // Not above the brute-force least (still a lower bound) and not below it (as tight).
    CHECK(b.bound == doctest::Approx(brute_force_bound(c, devices)).epsilon(1e-12));
    REQUIRE(b.choice.size() == jobs);
    std::vector<CandidateCost> a;
    for (std::size_t j = 0; j < jobs; ++j)
      a.push_back(c[j].at(b.choice[j]));
    CHECK(assignment_bound(a, devices) == doctest::Approx(b.bound).epsilon(1e-12));
  }
  CHECK_THROWS_WITH(joint_lower_bound({{}}, 2), doctest::Contains("job 0 has no candidate"));
  CHECK_THROWS_WITH(joint_lower_bound(hand, 0), doctest::Contains("no devices"));
  CHECK(joint_lower_bound({}, 3).bound == 0.0);
}

TEST_CASE("joint lower bound: a job's chain is its simulated makespan alone (state loads too)") {
  // Bytes make loads and stores count: the optimizer state is loaded from the second step on.
  PlanJob p = plan_job("a", 3, 0.01, 4, 4u << 20);
  p.job.eval_batches = 2;
  p.job.eval_every = 3;
  const std::vector<SimDevice> devices = uniform_devices(64, {1e-4, 1e9});  // none waits
  SimOptions o;
  o.submit_latency = 1e-4;
  PlannerOptions po;
  po.sim = o;
  const std::vector<StrategyCandidate> cands = strategy_candidates(p, devices, po);
  REQUIRE(cands.size() > 4);
  for (const StrategyCandidate& c : cands) {
    INFO(c.strategy.describe());
    const SimResult r = simulate({apply_strategy(p, c.strategy)}, devices, o);
    CHECK(c.bounds.chain == doctest::Approx(r.makespan));
    double busy = 0;
    for (double b : r.busy_seconds)
      busy += b;
    CHECK(c.bounds.work >= busy);  // compute, plus the stores the devices hold their slot for
  }
}

TEST_CASE("joint lower bound: no assignment of candidates simulates below it") {
  std::vector<PlanJob> jobs = {plan_job("a", 3, 0.02, 6, 2u << 20), plan_job("b", 2, 0.01, 8),
                               plan_job("c", 1, 0.01, 5)};
  const std::vector<SimDevice> devices = uniform_devices(3, {1e-4, 1e9});
  PlannerOptions po;
  po.sim.submit_latency = 1e-4;
  std::vector<std::vector<StrategyCandidate>> cands;
  std::vector<std::vector<CandidateCost>> costs;
  for (const PlanJob& j : jobs) {
    cands.push_back(strategy_candidates(j, devices, po));
    costs.emplace_back();
    for (const StrategyCandidate& c : cands.back())
      costs.back().push_back({c.bounds.work, c.bounds.chain});
  }
  const JointBound b = joint_lower_bound(costs, devices.size());
  std::size_t combos = 0;
  double least = std::numeric_limits<double>::infinity();
  for (const auto& x : cands[0])
    for (const auto& y : cands[1])
      for (const auto& z : cands[2]) {
        const std::vector<SimJob> sj = {apply_strategy(jobs[0], x.strategy),
                                        apply_strategy(jobs[1], y.strategy),
                                        apply_strategy(jobs[2], z.strategy)};
        const double m = simulate(sj, devices, po.sim).makespan;
        CHECK(m >= assignment_bound({{x.bounds.work, x.bounds.chain},
                                     {y.bounds.work, y.bounds.chain},
                                     {z.bounds.work, z.bounds.chain}},
                                    devices.size()) *
                       (1 - 1e-9));
        least = std::min(least, m);
        ++combos;
      }
  CHECK(combos > 20);
  CHECK(least >= b.bound * (1 - 1e-9));
  const Plan p = plan(jobs, devices, po);
  CHECK(p.lower_bound == doctest::Approx(b.bound));
  CHECK(p.makespan >= p.lower_bound * (1 - 1e-9));
  std::printf(
      "  3 jobs on 3 devices: %zu assignments simulated, least %.4f s, joint bound %.4f s, "
      "planner %.4f s\n",
      combos, least, b.bound, p.makespan);
}
