// Re-planning during a run (RuntimeOptions::plan and replan): when a job ends, the jobs still
// training get new strategies from runtime/planner's replan and switch at a step boundary
// (actors/replanner, actors/strategy_switch).
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "actors/hydra.hpp"
#include "actors/job_actor.hpp"
#include "actors/plan.hpp"
#include "actors/replanner.hpp"
#include "actors/strategy_switch.hpp"
#include "kernels/model_zoo.hpp"
#include "kernels/optim/adamw.hpp"
#include "kernels/optim/sgd.hpp"
#include "tests/job_test_util.hpp"

using namespace hydra;

namespace {

using test::cpu_devices;
using test::max_diff;
using test::parameter_values;

// A 4-layer MLP on the teacher data (batch 32, SGD with momentum or AdamW: both keep optimizer
// state that a switch must carry over).
JobSpec job(const std::string& name, std::int64_t steps, std::size_t shards, bool adamw = false) {
  JobSpec j;
  j.name = name;
  j.make_model = [] { return make_mlp(16, {64, 64, 64}, 4); };
  if (adamw)
    j.make_optimizer = [] { return std::make_unique<AdamW>(1e-2, 0.9, 0.999, 1e-8, 0.01); };
  else
    j.make_optimizer = [] { return std::make_unique<SGD>(0.05, 0.9); };
  j.data = [] { return test::teacher_data(640, 16, 4, 11); };
  j.data_key = "teacher-16-4-640";
  j.batch_size = 32;
  j.max_steps = steps;
  j.seed = 5;
  j.shards = shards;
  return j;
}

// A plan by hand (no measuring, so the re-planner's choice is the same on every machine): each
// job one shard option of `shards` equal shards with fixed task times; 2 CPU devices.
std::shared_ptr<RunPlan> hand_plan(const std::vector<JobSpec>& jobs, std::size_t shards,
                                   int devices = 2) {
  auto rp = std::make_shared<RunPlan>();
  rp->devices = uniform_devices(devices, {1e-5, 1e10});
  rp->device_kind = "cpu";
  for (const JobSpec& spec : jobs) {
    PlanJob p;
    p.job.name = spec.name;
    p.job.steps = spec.max_steps;
    p.batch_size = spec.batch_size;
    ShardOption o;
    for (std::size_t s = 0; s < shards; ++s) {
      ShardCost c;
      c.forward = 2e-3;
      c.eval = 2e-3;
      c.backward = 4e-3;
      c.update = 2e-4;
      c.value_bytes = c.state_bytes = 20000;
      c.input_bytes = c.output_bytes = 8192;
      c.forward_flops = 1e6;
      o.shards.push_back(c);
    }
    p.options = {o};
    rp->jobs.push_back(p);
    JobStrategy st;
    st.shards = static_cast<int>(shards);
    st.replicas = static_cast<int>(spec.replicas);
    st.micro_batches = static_cast<int>(spec.micro_batches);
    st.device_affinity = spec.device_affinity;
    rp->plan.strategies.push_back(st);
  }
  return rp;
}

// Stops the job named `victim` at its first validation; every other job goes on.
class StopOne : public EarlyStopping {
 public:
  explicit StopOne(std::string victim) : victim_(std::move(victim)) {}
  void add_job(const std::string&) override {}
  void report(const std::string&, std::int64_t, std::int64_t, double, double) override {}
  StopDecision decide(const std::string& job) override {
    return job == victim_ ? StopDecision::stop : StopDecision::go_on;
  }
  void job_ended(const std::string&) override {}
  std::string reason(const std::string&) const override { return "test rule"; }

 private:
  std::string victim_;
};

struct Outcome {
  RunReport report;
  std::map<std::string, std::vector<std::vector<float>>> params;
};

// Job a (stopped at its first validation, step 4) pinned to device 0, job b (`b_steps` steps)
// pinned to device 1, as a plan with one model per device would run them.
Outcome run_pair(bool replan, std::int64_t b_steps, bool adamw) {
  std::vector<JobSpec> jobs = {job("a", 40, 1, adamw), job("b", b_steps, 1, adamw)};
  jobs[0].eval_every = 4;
  jobs[0].device_affinity = 0;
  jobs[1].device_affinity = 1;
  auto params = std::make_shared<std::map<std::string, std::vector<std::vector<float>>>>();
  for (JobSpec& j : jobs)
    j.on_finish = [params, name = j.name](Model& m) { (*params)[name] = parameter_values(m); };
  RuntimeOptions o = cpu_devices(2);
  o.plan = hand_plan(jobs, 1);
  o.replan.enabled = replan;
  o.early_stopping = std::make_shared<StopOne>("a");
  Outcome out;
  out.report = run(jobs, o);
  out.params = *params;
  return out;
}

// A program that trains like the default one and orders strategy switches before given steps.
JobSpec with_switches(JobSpec j, std::map<std::int64_t, JobStrategy> at_step) {
  j.program = [at_step](actors::JobContext& job) -> actors::Task<void> {
    DataLoader loader(job.train_data(), {.batch_size = job.spec().batch_size,
                                         .shuffle = job.spec().shuffle,
                                         .seed = job.spec().seed});
    std::int64_t epoch = 0;
    while (job.step() < job.total_steps()) {
      Batch b;
      if (!loader.next(b)) {
        loader.start_epoch(++epoch);
        continue;
      }
      if (auto it = at_step.find(job.step()); it != at_step.end()) {
        actors::StrategyOrder order;
        order.strategy = it->second;
        order.reason = "test";
        job.parts().pending_strategy = order;
      }
      co_await job.train_step(b);
    }
    co_await job.validate();
  };
  return j;
}

}  // namespace

TEST_CASE("replan: a job stopped early gives the other job replicas at its next step") {
  // b trains 120 steps pinned to device 1; a stops at step 4. Re-planned, b alone on two
  // devices takes 2 replicas (its one shard cannot be pipelined), predicted about twice as fast.
  const Outcome plain = run_pair(false, 120, false);
  const Outcome re = run_pair(true, 120, false);
  for (const Outcome* o : {&plain, &re}) {
    REQUIRE(o->report.jobs.size() == 2);
    CHECK(o->report.jobs[0].status == JobStatus::stopped);
    INFO(o->report.jobs[1].error);
    REQUIRE(o->report.jobs[1].status == JobStatus::done);
    CHECK(o->report.jobs[1].steps == 120);
  }
  CHECK(plain.report.strategy_changes.empty());
  CHECK(plain.report.replans == 0);
  std::printf("%s", format_strategy_changes(re.report.strategy_changes).c_str());
  CHECK(re.report.replans >= 1);
  // The switch is tried: after 4 steps timed with the old strategy b switches, and after 4 more
  // (one warm-up step) it switches back if its median step did not get faster (on this tiny
  // model the replicas' overhead may well outweigh the second device).
  const std::vector<StrategyChange>& changes = re.report.strategy_changes;
  REQUIRE(changes.size() >= 1);
  REQUIRE(changes.size() <= 2);
  const StrategyChange& c = changes[0];
  CHECK(c.job == "b");
  CHECK(c.from == "1 shard, device 1");
  CHECK(c.to.find("2 replicas") != std::string::npos);
  CHECK(c.reason.find("job a stopped early (test rule)") != std::string::npos);
  CHECK(c.step >= 4);
  CHECK(c.step < 120);
  CHECK(c.applied >= c.decided);
  CHECK(c.predicted_after < 0.95 * c.predicted_before);
  std::int64_t end = 120;  // the last step with replicas
  if (changes.size() == 2) {
    CHECK(changes[1].from == c.to);
    CHECK(changes[1].to == c.from);
    CHECK(changes[1].step == c.step + 5);
    CHECK(changes[1].reason.find("switched back") != std::string::npos);
    end = changes[1].step;
  }
  // In the trace: the switch, then replica 1's tasks ("b/r1") and all-reduces, none before it.
  int switches = 0, replica_tasks = 0, allreduces = 0, early = 0;
  for (const TraceEvent& e : re.report.trace) {
    if (e.kind == "strategy" && e.job == "b" && e.device == kHostLane) ++switches;
    if (e.job == "b/r1" && is_compute_kind(e.kind)) {
      ++replica_tasks;
      if (e.start < c.applied) ++early;
    }
    if (e.kind == "allreduce" && e.job == "b") ++allreduces;
  }
  CHECK(switches == static_cast<int>(changes.size()));
  CHECK(replica_tasks >= 2 * (end - c.step));  // a forward and a backward per step at least
  CHECK(allreduces == end - c.step);
  CHECK(early == 0);
  // Same training: after the switch each step's batch is split in two halves whose gradients
  // are averaged, so the sums run in another order (float rounding, ~1e-7 relative per step).
  // Over 120 SGD-momentum steps that drift stays below 1e-5 on parameters of magnitude ~0.3
  // (measured 1.8e-7: 50x margin for other BLAS builds); a lost or reset momentum state, or a
  // replica starting from other parameters, would differ by far more (~1e-2).
  const double d = max_diff(plain.params.at("b"), re.params.at("b"));
  std::printf("b: max |param difference| with and without re-planning %.3g\n", d);
  CHECK(d < 1e-5);
  const double loss_plain = plain.report.jobs[1].train_loss.back().value;
  const double loss_re = re.report.jobs[1].train_loss.back().value;
  CHECK(std::fabs(loss_plain - loss_re) < 1e-5 * std::max(1.0, std::fabs(loss_plain)));
}

TEST_CASE("replan: nothing is recorded when no strategy would be faster") {
  // One device: b alone has nothing to gain (one shard, no second device), so the re-plan after
  // a's stop runs and changes nothing.
  std::vector<JobSpec> jobs = {job("a", 40, 1), job("b", 40, 1)};
  jobs[0].eval_every = 4;
  RuntimeOptions o = cpu_devices(1);
  o.plan = hand_plan(jobs, 1, 1);
  o.early_stopping = std::make_shared<StopOne>("a");
  const RunReport r = run(jobs, o);
  REQUIRE(r.jobs.size() == 2);
  CHECK(r.jobs[0].status == JobStatus::stopped);
  CHECK(r.jobs[1].status == JobStatus::done);
  CHECK(r.replans >= 1);
  CHECK(r.strategy_changes.empty());
  for (const TraceEvent& e : r.trace)
    CHECK(e.kind != "strategy");
}

TEST_CASE("replan: decide_replan keeps shard counts and applies only a large enough gain") {
  std::vector<JobSpec> specs = {job("a", 40, 2), job("b", 40, 2)};
  const std::shared_ptr<RunPlan> rp = hand_plan(specs, 2);
  actors::ReplannerConfig c;
  c.jobs = rp->jobs;
  c.devices = rp->devices;
  c.initial = rp->plan.strategies;
  std::vector<JobStrategy> current = rp->plan.strategies;
  // a stopped after 4 steps, b has 36 left on two devices: micro-batches or replicas for b.
  const actors::ReplanDecision d = actors::decide_replan(c, current, {4, 4}, {true, false});
  CHECK(d.apply);
  CHECK_FALSE(d.changed[0]);
  REQUIRE(d.changed[1]);
  CHECK(d.strategies[1].shards == 2);
  CHECK(d.strategies[1].replicas * d.strategies[1].micro_batches > 1);
  CHECK(d.predicted_after < 0.95 * d.predicted_before);
  // The same gain is not enough when 99% are required, or more seconds than it saves.
  c.min_gain = 0.99;
  const actors::ReplanDecision none = actors::decide_replan(c, current, {4, 4}, {true, false});
  CHECK_FALSE(none.apply);
  CHECK_FALSE(none.changed[1]);
  CHECK(none.strategies[1].describe() == current[1].describe());
  c.min_gain = 0.05;
  c.min_gain_seconds = 1.01 * (d.predicted_before - d.predicted_after);
  CHECK_FALSE(actors::decide_replan(c, current, {4, 4}, {true, false}).apply);
  c.min_gain_seconds = 0.99 * (d.predicted_before - d.predicted_after);
  CHECK(actors::decide_replan(c, current, {4, 4}, {true, false}).apply);
  // Every job ended: nothing to plan.
  const actors::ReplanDecision done = actors::decide_replan(c, current, {4, 40}, {true, true});
  CHECK_FALSE(done.apply);
  // A job running with a shard count its plan does not have.
  current[1].shards = 3;
  CHECK_THROWS_WITH(actors::decide_replan(c, current, {4, 4}, {true, false}),
                    doctest::Contains("runs with 3 shards but its plan has shard options 2"));
  CHECK_THROWS_WITH(actors::decide_replan(c, current, {4}, {true, false}),
                    doctest::Contains("one strategy, step count and end flag per job"));
}

TEST_CASE("replan: a strategy switch mid-run keeps the training of the plain run") {
  // 2 shards, AdamW (two state slots per parameter): plain for 3 steps, then 2 sharded replicas
  // x 2 micro-batches (the optimizer state is scattered into slices), then 2 plain replicas (the
  // slices gathered, replica 1 copies replica 0's whole state), then 2 micro-batches on device 1
  // (replica 1 dropped), then plain again.
  JobStrategy sharded;
  sharded.replicas = 2;
  sharded.sharded_data_parallel = true;
  sharded.micro_batches = 2;
  JobStrategy replicated;
  replicated.replicas = 2;
  JobStrategy pipelined;
  pipelined.micro_batches = 2;
  pipelined.device_affinity = 1;
  JobStrategy plain_strategy;
  const JobSpec base = job("s", 15, 2, true);
  const JobSpec switching =
      with_switches(base, {{3, sharded}, {6, replicated}, {9, pipelined}, {12, plain_strategy}});
  auto params = std::make_shared<std::map<std::string, std::vector<std::vector<float>>>>();
  auto plain_job = base;
  plain_job.on_finish = [params](Model& m) { (*params)["plain"] = parameter_values(m); };
  auto switched_job = switching;
  switched_job.on_finish = [params](Model& m) { (*params)["switched"] = parameter_values(m); };
  RuntimeOptions o = cpu_devices(2);
  const RunReport plain = run({plain_job}, o);
  const RunReport switched = run({switched_job}, o);
  INFO(switched.jobs[0].error);
  REQUIRE(switched.jobs[0].status == JobStatus::done);
  REQUIRE(plain.jobs[0].status == JobStatus::done);
  std::printf("%s", format_strategy_changes(switched.strategy_changes).c_str());
  const std::vector<StrategyChange>& c = switched.strategy_changes;
  REQUIRE(c.size() == 4);
  CHECK(c[0].from == "2 shards");
  CHECK(c[0].to == "2 shards, 2 replicas (sharded), 2 micro-batches");
  CHECK(c[0].step == 3);
  CHECK(c[1].to == "2 shards, 2 replicas");
  CHECK(c[2].to == "2 shards, 2 micro-batches, device 1");
  CHECK(c[3].to == "2 shards");
  CHECK(c[3].step == 12);
  // Steps 4-6 ran replica 1 sharded (all-gathers), 7-9 plain; steps 10-12 only on device 1.
  int allgathers = 0, allreduces = 0, replica_tasks = 0;
  for (const TraceEvent& e : switched.trace) {
    if (e.kind == "allgather") ++allgathers;
    if (e.kind == "allreduce") ++allreduces;
    if (e.job == "s/r1" && is_compute_kind(e.kind)) ++replica_tasks;
    if (e.job == "s" && is_compute_kind(e.kind) && e.start > c[2].applied && e.end < c[3].applied)
      CHECK(e.device == "cpu:1");
  }
  CHECK(allgathers == 3);
  CHECK(allreduces == 6);
  // Per step of replica 1: sharded, 2 shards x 2 micro-batches x (forward, backward) + 2 updates;
  // plain, 2 x (forward, backward) + 2 updates.
  CHECK(replica_tasks == 3 * (2 * 2 * 2 + 2) + 3 * (2 * 2 + 2));
  // Equal up to float rounding: micro-batches and replicas sum the batch's gradients in another
  // order (parameters matched the plain run to 2e-5 after 13 steps in test_parallel_strategies;
  // AdamW normalises the update, so rounding differences stay of the order of lr x 1e-4). A
  // replica that started without replica 0's AdamW state would differ by ~lr = 1e-2.
  const double d = max_diff(params->at("plain"), params->at("switched"));
  std::printf("s: max |param difference| switching vs plain %.3g\n", d);
  CHECK(d < 2e-5);
  REQUIRE(plain.jobs[0].train_loss.size() == switched.jobs[0].train_loss.size());
  for (std::size_t i = 0; i < plain.jobs[0].train_loss.size(); ++i)
    CHECK(std::fabs(plain.jobs[0].train_loss[i].value - switched.jobs[0].train_loss[i].value) <
          1e-5);
}

TEST_CASE("replan: bad plans and limits are refused before the run starts") {
  std::vector<JobSpec> jobs = {job("a", 4, 1), job("b", 4, 1)};
  RuntimeOptions o = cpu_devices(2);
  o.plan = hand_plan({jobs[0]}, 1);
  CHECK_THROWS_WITH(run(jobs, o), doctest::Contains("2 jobs but the plan has 1"));
  o.plan = hand_plan({jobs[1], jobs[0]}, 1);
  CHECK_THROWS_WITH(run(jobs, o), doctest::Contains("job 0 is a but the plan's is b"));
  o.plan = hand_plan(jobs, 1, 3);
  CHECK_THROWS_WITH(run(jobs, o), doctest::Contains("planned for 3 devices, the run has 2"));
  o.plan = hand_plan(jobs, 1);
  o.replan.min_gain = 1;
  CHECK_THROWS_WITH(run(jobs, o), doctest::Contains("min_gain must lie in [0, 1)"));
  o.replan.min_gain = 0.05;
  o.replan.min_gain_seconds = -1;
  CHECK_THROWS_WITH(run(jobs, o), doctest::Contains("min_gain_seconds must be >= 0"));
  o.replan.min_gain_seconds = 0.1;
  o.replan.max_evaluations = 0;
  CHECK_THROWS_WITH(run(jobs, o), doctest::Contains("max_evaluations must be at least 1"));
  o.replan.max_evaluations = 16;
  o.replan.time_limit_seconds = 0;
  CHECK_THROWS_WITH(run(jobs, o), doctest::Contains("time_limit_seconds must be > 0"));
}
