// Early stopping across the jobs of a run (RuntimeOptions::early_stopping, one actor owning the
// rule: actors/early_stopping_actor.hpp), with small rules scripted here.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "actors/hydra.hpp"
#include "kernels/model_zoo.hpp"
#include "kernels/optim/adamw.hpp"
#include "kernels/optim/sgd.hpp"
#include "runtime/data/synthetic.hpp"
#include "tests/job_test_util.hpp"

using namespace hydra;

namespace {

// Identity layer that counts the live models of a job (constructed in make_model, destroyed
// with the model), and can fail every forward once `fail` is set.
class Sentinel : public test::IdentityLayer {
 public:
  Sentinel(std::shared_ptr<std::atomic<int>> live, std::shared_ptr<std::atomic<bool>> fail)
      : live_(std::move(live)), fail_(std::move(fail)) {
    ++*live_;
  }
  ~Sentinel() override { --*live_; }
  std::string name() const override { return "Sentinel"; }
  Tensor forward(ExecContext&, const Tensor& x, Stash&, bool) override {
    if (fail_ && *fail_) throw Error("sentinel told to fail");
    return x;
  }

 private:
  std::shared_ptr<std::atomic<int>> live_;
  std::shared_ptr<std::atomic<bool>> fail_;
};

DataSplits sign_data() {
  Dataset all = make_synthetic_classification(320, 16, 2, 9);  // label: sign of feature 0
  auto [train, val] = all.split(256);
  return {train, val};
}

JobSpec small_job(const std::string& name, double lr, std::int64_t steps,
                  std::shared_ptr<std::atomic<int>> live,
                  std::shared_ptr<std::atomic<bool>> fail = nullptr) {
  JobSpec j;
  j.name = name;
  j.make_model = [live, fail] {
    Model m = make_mlp(16, {16}, 2);
    m.emplace<Sentinel>(live, fail);
    return m;
  };
  if (lr > 0)
    j.make_optimizer = [lr] { return std::make_unique<AdamW>(lr); };
  else
    j.make_optimizer = [] { return std::make_unique<SGD>(0.0); };
  j.data = sign_data;
  j.data_key = "early-stopping-sign";
  j.batch_size = 32;
  j.max_steps = steps;
  j.eval_every = 4;
  j.seed = 3;
  return j;
}

RuntimeOptions two_cpus(std::shared_ptr<EarlyStopping> rule) {
  RuntimeOptions o;
  o.devices = {{Device::cpu(0), 0}, {Device::cpu(1), 0}};
  o.policy = "fifo";  // every job advances, so stopped jobs end while others still train
  o.early_stopping = std::move(rule);
  return o;
}

// Stops a job whose first validation accuracy is below `threshold`. At every report it also
// looks at the jobs that already ended stopped: how many of their models are still alive.
class ThresholdRule : public EarlyStopping {
 public:
  ThresholdRule(double threshold, std::map<std::string, std::shared_ptr<std::atomic<int>>> live)
      : threshold_(threshold), live_(std::move(live)) {}
  void add_job(const std::string& job) override { added.insert(job); }
  void report(const std::string& job, std::int64_t step, std::int64_t, double,
              double acc) override {
    if (!first_acc.count(job)) first_acc[job] = acc;
    last_step_[job] = step;
    for (const std::string& gone : stopped_ended)
      live_after_stop.push_back(live_.at(gone)->load());
  }
  StopDecision decide(const std::string& job) override {
    const bool first = last_step_.at(job) == 4;
    return first && first_acc.at(job) < threshold_ ? StopDecision::stop : StopDecision::go_on;
  }
  void job_ended(const std::string& job) override {
    if (first_acc.count(job) && first_acc.at(job) < threshold_) stopped_ended.insert(job);
    ended.insert(job);
  }
  std::string reason(const std::string& job) const override {
    char buf[96];
    std::snprintf(buf, sizeof buf, "val accuracy %.3f below %.3f at step 4", first_acc.at(job),
                  threshold_);
    return buf;
  }

  std::set<std::string> added, ended, stopped_ended;
  std::map<std::string, double> first_acc;
  std::vector<int> live_after_stop;

 private:
  double threshold_;
  std::map<std::string, std::shared_ptr<std::atomic<int>>> live_;
  std::map<std::string, std::int64_t> last_step_;
};

// Synchronous rungs: a job's k-th report waits until every live job has reported k times. Logs
// its calls; `reported` counts reports (the failing job's model fails once it reaches 2).
class SyncRule : public EarlyStopping {
 public:
  void add_job(const std::string& job) override { live.insert(job); }
  void report(const std::string& job, std::int64_t step, std::int64_t, double, double) override {
    ++reports[job];
    log.push_back("report " + job + " " + std::to_string(step));
    if (++reported == 2 && fail_at_two) *fail_at_two = true;
  }
  StopDecision decide(const std::string& job) override {
    for (const std::string& other : live)
      if (reports[other] < reports[job]) {
        log.push_back("wait " + job);
        return StopDecision::wait;
      }
    log.push_back("go_on " + job);
    return StopDecision::go_on;
  }
  void job_ended(const std::string& job) override {
    live.erase(job);
    log.push_back("ended " + job);
  }
  std::string reason(const std::string&) const override { return "never stops"; }

  std::set<std::string> live;
  std::map<std::string, int> reports;
  std::vector<std::string> log;
  int reported = 0;
  std::shared_ptr<std::atomic<bool>> fail_at_two;
};

}  // namespace

TEST_CASE("early stopping: jobs below a threshold stop at their first validation") {
  std::map<std::string, std::shared_ptr<std::atomic<int>>> live;
  std::vector<JobSpec> jobs;
  for (const auto& [name, lr] : std::vector<std::pair<std::string, double>>{
           {"learns-0", 0.05}, {"frozen-0", 0.0}, {"learns-1", 0.04}, {"frozen-1", 0.0}}) {
    live[name] = std::make_shared<std::atomic<int>>(0);
    jobs.push_back(small_job(name, lr, 16, live[name]));
  }
  auto rule = std::make_shared<ThresholdRule>(0.5, live);
  const RunReport report = run(jobs, two_cpus(rule));
  for (const auto& [name, acc] : rule->first_acc)
    std::printf("%s: first validation accuracy %.3f\n", name.c_str(), acc);
  CHECK(rule->added == std::set<std::string>{"learns-0", "frozen-0", "learns-1", "frozen-1"});
  CHECK(rule->ended == rule->added);
  for (const JobResult& r : report.jobs) {
    INFO(r.name, " ", r.error);
    const bool frozen = r.name.rfind("frozen", 0) == 0;
    REQUIRE(rule->first_acc.count(r.name));
    // The partition the test is built on: the frozen jobs stay near chance, the others learn.
    CHECK((rule->first_acc.at(r.name) < 0.5) == frozen);
    if (frozen) {
      CHECK(r.status == JobStatus::stopped);
      CHECK(r.steps == 4);
      CHECK(r.val_loss.size() == 1);
      CHECK(r.stop_reason.find("below 0.500 at step 4") != std::string::npos);
      CHECK(r.error.empty());
    } else {
      CHECK(r.status == JobStatus::done);
      CHECK(r.steps == 16);
      CHECK(r.val_loss.size() == 4);
      CHECK(r.stop_reason.empty());
    }
    CHECK(live.at(r.name)->load() == 0);
  }
  // Reports of the learning jobs after a frozen job ended: its model was already released.
  REQUIRE_FALSE(rule->live_after_stop.empty());
  for (int n : rule->live_after_stop)
    CHECK(n == 0);
}

TEST_CASE("early stopping: a synchronous rule parks jobs until a job that never reports fails") {
  auto rule = std::make_shared<SyncRule>();
  auto fail = std::make_shared<std::atomic<bool>>(false);
  rule->fail_at_two = fail;
  auto live = std::make_shared<std::atomic<int>>(0);
  std::vector<JobSpec> jobs = {small_job("a", 0.02, 8, live), small_job("b", 0.02, 8, live),
                               small_job("f", 0.02, 100000, live, fail)};
  jobs[2].eval_every = 0;  // never reports before its end: it fails once a and b are parked
  const RunReport report = run(jobs, two_cpus(rule));
  for (const std::string& l : rule->log)
    std::printf("%s\n", l.c_str());
  REQUIRE(report.jobs.size() == 3);
  CHECK(report.jobs[0].status == JobStatus::done);
  CHECK(report.jobs[0].steps == 8);
  CHECK(report.jobs[1].status == JobStatus::done);
  CHECK(report.jobs[1].steps == 8);
  CHECK(report.jobs[2].status == JobStatus::failed);
  CHECK(report.jobs[2].error.find("sentinel told to fail") != std::string::npos);
  // Both first reports were parked (f had not reported), and released only after f ended.
  const auto& log = rule->log;
  auto at = [&](const std::string& s) {
    for (std::size_t i = 0; i < log.size(); ++i)
      if (log[i] == s) return static_cast<long>(i);
    return -1L;
  };
  REQUIRE(at("ended f") >= 0);
  CHECK(at("wait a") >= 0);
  CHECK(at("wait b") >= 0);
  CHECK(at("wait a") < at("ended f"));
  CHECK(at("wait b") < at("ended f"));
  CHECK(at("go_on a") > at("ended f"));
  CHECK(at("go_on b") > at("ended f"));
  CHECK(at("report a 8") > at("ended f"));
  CHECK(live->load() == 0);
}

TEST_CASE("early stopping: duplicate job names are refused") {
  auto live = std::make_shared<std::atomic<int>>(0);
  std::vector<JobSpec> jobs = {small_job("same", 0.02, 4, live), small_job("same", 0.02, 4, live)};
  CHECK_THROWS_WITH_AS(run(jobs, two_cpus(std::make_shared<SyncRule>())),
                       doctest::Contains("job name 'same' is used twice"), Error);
}

namespace {

// Throws from decide() for one job: that job fails with the rule's error, the others go on.
class ThrowingRule : public EarlyStopping {
 public:
  void add_job(const std::string&) override {}
  void report(const std::string&, std::int64_t, std::int64_t, double, double) override {}
  StopDecision decide(const std::string& job) override {
    if (job == "unlucky") throw Error("no decision for " + job);
    return StopDecision::go_on;
  }
  void job_ended(const std::string& job) override { ended.push_back(job); }
  std::string reason(const std::string&) const override { return ""; }
  std::vector<std::string> ended;
};

}  // namespace

TEST_CASE("early stopping: a rule that throws fails only the job it was deciding") {
  auto live = std::make_shared<std::atomic<int>>(0);
  auto rule = std::make_shared<ThrowingRule>();
  const RunReport report =
      run({small_job("unlucky", 0.02, 8, live), small_job("fine", 0.02, 8, live)}, two_cpus(rule));
  CHECK(report.jobs[0].status == JobStatus::failed);
  CHECK(report.jobs[0].steps == 4);
  CHECK(report.jobs[0].error.find("early stopping rule: no decision for unlucky") !=
        std::string::npos);
  CHECK(report.jobs[1].status == JobStatus::done);
  CHECK(report.jobs[1].steps == 8);
  CHECK(rule->ended.size() == 2);
}
