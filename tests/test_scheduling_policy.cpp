// Scheduling policies (Sharded-LRTF, FIFO, random) and the task-time estimator.
#include <doctest/doctest.h>

#include <map>

#include "kernels/core/error.hpp"
#include "runtime/scheduling_policy.hpp"
#include "runtime/task_estimator.hpp"

using namespace hydra;

namespace {

// Remaining time per job, set by the test.
class FixedEstimates : public TaskEstimates {
 public:
  explicit FixedEstimates(std::map<int, double> remaining) : remaining_(std::move(remaining)) {}
  double task_seconds(int, int, TaskKind) const override { return 1.0; }
  double remaining_seconds(int job) const override { return remaining_.at(job); }

 private:
  std::map<int, double> remaining_;
};

ReadyTask task(std::uint64_t id, int job, std::uint64_t seq, int last_device = -1,
               TaskKind kind = TaskKind::forward) {
  ReadyTask t;
  t.id = id;
  t.job = job;
  t.shard = 0;
  t.kind = kind;
  t.ready_seq = seq;
  t.last_device = last_device;
  return t;
}

}  // namespace

TEST_CASE("task kinds and policies have names") {
  CHECK(std::string(task_kind_name(TaskKind::forward)) == "forward");
  CHECK(std::string(task_kind_name(TaskKind::backward)) == "backward");
  CHECK(std::string(task_kind_name(TaskKind::update)) == "update");
  CHECK(make_policy("lrtf")->name() == "lrtf");
  CHECK(make_policy("fifo")->name() == "fifo");
  CHECK(make_policy("random", 3)->name() == "random");
  CHECK(make_policy("LRTF")->name() == "lrtf");
  CHECK_THROWS_WITH_AS(make_policy("sjf"),
                       doctest::Contains("unknown scheduling policy 'sjf' (allowed: lrtf"), Error);
  CHECK_THROWS_AS(make_policy(""), Error);
  const FixedEstimates est({});
  for (const char* name : {"lrtf", "fifo", "random"})
    CHECK_THROWS_WITH_AS(make_policy(name)->pick({}, 0, est), doctest::Contains("ready task"),
                         Error);
}

TEST_CASE("LRTF picks the task of the job with the longest remaining time") {
  auto lrtf = make_policy("lrtf");
  const FixedEstimates est({{0, 5.0}, {1, 9.0}, {2, 7.0}});
  const std::vector<ReadyTask> ready{task(10, 0, 1), task(11, 1, 5), task(12, 2, 2)};
  CHECK(lrtf->pick(ready, 0, est) == 1);
  // Ties: the task that became ready first.
  const FixedEstimates tie({{0, 9.0}, {1, 9.0}, {2, 9.0}});
  CHECK(lrtf->pick(ready, 0, tie) == 0);
  const std::vector<ReadyTask> later{task(10, 0, 7), task(11, 1, 5), task(12, 2, 6)};
  CHECK(lrtf->pick(later, 0, tie) == 1);
}

TEST_CASE(
    "LRTF prefers shard state on the asking device when remaining times tie within 1 percent") {
  auto lrtf = make_policy("lrtf");
  const std::vector<ReadyTask> ready{task(1, 0, 1, /*last_device=*/2), task(2, 1, 2, 3)};
  // Job 1 is longest; job 0 is within 1% of it and its shard state last lived on device 2.
  const FixedEstimates close({{0, 99.5}, {1, 100.0}});
  CHECK(lrtf->pick(ready, 2, close) == 0);  // device 2 holds job 0's shard: no transfer
  CHECK(lrtf->pick(ready, 3, close) == 1);  // device 3 holds job 1's shard anyway
  CHECK(lrtf->pick(ready, 5, close) == 1);  // no locality: longest remaining
  const FixedEstimates apart({{0, 98.0}, {1, 100.0}});
  CHECK(lrtf->pick(ready, 2, apart) == 1);  // 2% shorter: the longest job wins
  // Among several local candidates within the tolerance, the longest one.
  const std::vector<ReadyTask> three{task(1, 0, 1, 2), task(2, 1, 2, 2), task(3, 2, 3, 4)};
  const FixedEstimates near({{0, 99.2}, {1, 99.6}, {2, 100.0}});
  CHECK(lrtf->pick(three, 2, near) == 1);
}

TEST_CASE("FIFO picks the oldest ready task") {
  auto fifo = make_policy("fifo");
  const FixedEstimates est({{0, 1.0}, {1, 100.0}, {2, 50.0}});
  CHECK(fifo->pick({task(1, 0, 9), task(2, 1, 4), task(3, 2, 6)}, 0, est) == 1);
  CHECK(fifo->pick({task(1, 0, 3), task(2, 1, 4), task(3, 2, 6)}, 0, est) == 0);
  CHECK(fifo->pick({task(1, 1, 8), task(2, 1, 7), task(3, 2, 2)}, 1, est) == 2);
}

TEST_CASE("random policy is deterministic per seed and covers every task") {
  const FixedEstimates est({{0, 1.0}});
  std::vector<ReadyTask> ready;
  for (int i = 0; i < 5; ++i)
    ready.push_back(task(static_cast<std::uint64_t>(i), 0, static_cast<std::uint64_t>(i)));
  const auto picks = [&](std::uint64_t seed) {
    auto p = make_policy("random", seed);
    std::vector<std::size_t> out;
    for (int i = 0; i < 200; ++i)
      out.push_back(p->pick(ready, 0, est));
    return out;
  };
  const auto a = picks(7), b = picks(7), c = picks(8);
  CHECK(a == b);
  CHECK(a != c);
  std::map<std::size_t, int> counts;
  for (const std::size_t i : a) {
    REQUIRE(i < ready.size());
    ++counts[i];
  }
  CHECK(counts.size() == ready.size());
  for (const auto& [i, n] : counts)
    CHECK(n > 15);  // 40 expected each
  auto one = make_policy("random", 1);
  CHECK(one->pick({task(1, 0, 0)}, 0, est) == 0);
}

TEST_CASE("task estimator starts from FLOPs and the assumed speed") {
  // Job 0: two shards of 1 and 3 GFLOP; job 1: one shard of 2 GFLOP. 1 GFLOP/s.
  TaskEstimator e({{1e9, 3e9}, {2e9}}, {10, 4}, 1e9);
  CHECK(e.jobs() == 2);
  CHECK(e.shards(0) == 2);
  CHECK(e.task_seconds(0, 1, TaskKind::forward) == doctest::Approx(3.0));
  CHECK(e.task_seconds(0, 1, TaskKind::backward) == doctest::Approx(6.0));
  const double update = e.task_seconds(0, 0, TaskKind::update);
  CHECK(update > 0);
  CHECK(update < 0.01);
  CHECK(e.step_seconds(0) == doctest::Approx(12.0 + 2 * update));
  CHECK(e.remaining_seconds(0) == doctest::Approx(10 * (12.0 + 2 * update)));
  CHECK(e.remaining_seconds(1) == doctest::Approx(4 * (6.0 + update)));
  CHECK_FALSE(e.measured(0, 0, TaskKind::forward));
  CHECK_THROWS_WITH_AS(e.task_seconds(2, 0, TaskKind::forward), doctest::Contains("job 2"), Error);
  CHECK_THROWS_WITH_AS(e.task_seconds(0, 2, TaskKind::forward), doctest::Contains("shard 2"),
                       Error);
  CHECK_THROWS_AS(e.record(0, 0, TaskKind::forward, -1.0), Error);
  CHECK_THROWS_AS(TaskEstimator({{1.0}}, {1, 2}, 1e9), Error);
  CHECK_THROWS_AS(TaskEstimator({{1.0}}, {1}, 0.0), Error);
}

TEST_CASE("task estimator refinement converges to measured durations") {
  TaskEstimator e({{1e9, 1e9}}, {100}, 1e9);
  // The first measurement replaces the guess; an unmeasured backward follows the forward.
  e.record(0, 0, TaskKind::forward, 0.25);
  CHECK(e.task_seconds(0, 0, TaskKind::forward) == doctest::Approx(0.25));
  CHECK(e.task_seconds(0, 0, TaskKind::backward) == doctest::Approx(0.5));
  CHECK(e.task_seconds(0, 1, TaskKind::forward) == doctest::Approx(1.0));  // not measured yet
  // A moving average: one outlier moves the estimate only part of the way.
  e.record(0, 0, TaskKind::forward, 1.25);
  const double after_outlier = e.task_seconds(0, 0, TaskKind::forward);
  CHECK(after_outlier > 0.25);
  CHECK(after_outlier < 1.0);
  for (int i = 0; i < 40; ++i) {
    e.record(0, 0, TaskKind::forward, 0.4);
    e.record(0, 0, TaskKind::backward, 0.9);
    e.record(0, 1, TaskKind::update, 0.05);
  }
  CHECK(e.task_seconds(0, 0, TaskKind::forward) == doctest::Approx(0.4).epsilon(1e-3));
  CHECK(e.task_seconds(0, 0, TaskKind::backward) == doctest::Approx(0.9).epsilon(1e-3));
  CHECK(e.task_seconds(0, 1, TaskKind::update) == doctest::Approx(0.05).epsilon(1e-3));
  CHECK(e.measured(0, 0, TaskKind::backward));
  CHECK_FALSE(e.measured(0, 1, TaskKind::forward));
}

TEST_CASE("task estimator remaining time counts steps and progress within the step") {
  TaskEstimator e({{2e9, 2e9}, {1e9}}, {3, 3}, 1e9, TaskEstimator::Options{0.5, 0.0});
  const double step = e.step_seconds(0);  // 2 + 4 + 0 per shard
  CHECK(step == doctest::Approx(12.0));
  CHECK(e.remaining_seconds(0) == doctest::Approx(36.0));
  e.record(0, 0, TaskKind::forward, 2.0);
  CHECK(e.remaining_seconds(0) == doctest::Approx(34.0));
  e.record(0, 1, TaskKind::forward, 2.0);
  e.record(0, 1, TaskKind::backward, 4.0);
  CHECK(e.remaining_seconds(0) == doctest::Approx(28.0));
  e.record(0, 0, TaskKind::backward, 4.0);
  e.step_done(0);
  CHECK(e.steps_left(0) == 2);
  CHECK(e.remaining_seconds(0) == doctest::Approx(24.0));
  e.set_steps_left(0, 10);
  CHECK(e.remaining_seconds(0) == doctest::Approx(120.0));
  e.job_finished(0);
  CHECK(e.remaining_seconds(0) == 0.0);
  CHECK(e.remaining_seconds(1) == doctest::Approx(9.0));
  CHECK_THROWS_AS(e.set_steps_left(1, -1), Error);
}

TEST_CASE("LRTF with the task estimator runs the longest job first until it finishes") {
  // Job 0: 2 steps of a 1 GFLOP shard; job 1: 5 steps of the same.
  TaskEstimator e({{1e9}, {1e9}}, {2, 5}, 1e9);
  auto lrtf = make_policy("lrtf");
  const std::vector<ReadyTask> ready{task(1, 0, 0), task(2, 1, 1)};
  CHECK(lrtf->pick(ready, 0, e) == 1);
  // Job 1 turns out much faster: after measuring, job 0 has more work left.
  e.record(1, 0, TaskKind::forward, 0.01);
  e.record(1, 0, TaskKind::backward, 0.02);
  e.record(1, 0, TaskKind::update, 0.001);
  CHECK(e.remaining_seconds(1) < e.remaining_seconds(0));
  CHECK(lrtf->pick(ready, 0, e) == 0);
  e.job_finished(0);
  CHECK(lrtf->pick(ready, 0, e) == 1);
}

TEST_CASE("task estimator adds jobs one at a time in any order") {
  TaskEstimator e(1e9);
  CHECK(e.jobs() == 0);
  CHECK_FALSE(e.has_job(0));
  // Job 2 partitions first: jobs 0 and 1 stay unknown until they are added.
  e.add_job(2, {2e9, 4e9}, 5);
  CHECK(e.jobs() == 3);
  CHECK(e.has_job(2));
  CHECK_FALSE(e.has_job(0));
  CHECK_FALSE(e.has_job(1));
  CHECK(e.shards(2) == 2);
  CHECK(e.steps_left(2) == 5);
  CHECK(e.task_seconds(2, 1, TaskKind::forward) == doctest::Approx(4.0));
  CHECK(e.task_seconds(2, 1, TaskKind::backward) == doctest::Approx(8.0));
  const double update = e.task_seconds(2, 0, TaskKind::update);
  CHECK(e.remaining_seconds(2) == doctest::Approx(5 * (18.0 + 2 * update)));
  CHECK_THROWS_WITH_AS(e.task_seconds(0, 0, TaskKind::forward), doctest::Contains("job 0"), Error);
  CHECK_THROWS_WITH_AS(e.remaining_seconds(1), doctest::Contains("job 1"), Error);
  e.add_job(0, {1e9}, 3);
  CHECK(e.has_job(0));
  CHECK(e.jobs() == 3);
  CHECK(e.remaining_seconds(0) == doctest::Approx(3 * (3.0 + update)));
  // Progress of one job leaves the others alone.
  e.record(2, 0, TaskKind::forward, 1.0);
  e.step_done(2);
  CHECK(e.steps_left(2) == 4);
  CHECK(e.steps_left(0) == 3);
  // Errors: a job added twice or with bad values (nothing changes then).
  CHECK_THROWS_WITH_AS(e.add_job(2, {1e9}, 1), doctest::Contains("already"), Error);
  CHECK_THROWS_AS(e.add_job(-1, {1e9}, 1), Error);
  CHECK_THROWS_AS(e.add_job(1, {-1.0}, 1), Error);
  CHECK_THROWS_AS(e.add_job(1, {1e9}, -1), Error);
  CHECK_FALSE(e.has_job(1));
  CHECK_THROWS_AS(TaskEstimator(0.0), Error);
}

TEST_CASE("task estimator learns the device speed from measured tasks when asked") {
  TaskEstimator::Options o;
  o.learn_speed = true;
  TaskEstimator learning(1e9, o);
  TaskEstimator fixed(1e9);
  for (TaskEstimator* e : {&learning, &fixed}) {
    e->add_job(0, {2e9, 2e9}, 10);
    e->add_job(1, {6e9}, 10);
  }
  CHECK(learning.flops_per_second() == doctest::Approx(1e9));
  CHECK(learning.task_seconds(1, 0, TaskKind::forward) == doctest::Approx(6.0));
  // The device runs 4 GFLOP/s: shard 0's forward (2 GFLOP) in 0.5 s, its backward in 1 s.
  for (TaskEstimator* e : {&learning, &fixed}) {
    e->record(0, 0, TaskKind::forward, 0.5);
    e->record(0, 0, TaskKind::backward, 1.0);
    e->record(0, 0, TaskKind::update, 7.0);  // updates do not count towards the speed
  }
  CHECK(learning.flops_per_second() == doctest::Approx(4e9));
  CHECK(fixed.flops_per_second() == doctest::Approx(1e9));
  // Unmeasured tasks follow the learnt speed; measured ones keep their measurements.
  CHECK(learning.task_seconds(1, 0, TaskKind::forward) == doctest::Approx(1.5));
  CHECK(learning.task_seconds(1, 0, TaskKind::backward) == doctest::Approx(3.0));
  CHECK(learning.task_seconds(0, 1, TaskKind::forward) == doctest::Approx(0.5));
  CHECK(learning.task_seconds(0, 0, TaskKind::forward) == doctest::Approx(0.5));
  CHECK(fixed.task_seconds(1, 0, TaskKind::forward) == doctest::Approx(6.0));
  CHECK(learning.remaining_seconds(1) < fixed.remaining_seconds(1));
}
