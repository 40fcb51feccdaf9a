// Per-job parallel strategies in the actor runtime: device affinity, GPipe micro-batches,
// data-parallel replicas and sharded data parallelism (JobSpec's strategy fields).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "actors/hydra.hpp"
#include "actors/job_actor.hpp"
#include "actors/replica_set.hpp"
#include "actors/scheduler_actor.hpp"
#include "kernels/layers/all.hpp"
#include "kernels/model_zoo.hpp"
#include "kernels/optim/adamw.hpp"
#include "kernels/optim/sgd.hpp"
#include "kernels/random.hpp"
#include "tests/job_test_util.hpp"

using namespace hydra;

namespace {

using test::cpu_devices;
using test::max_diff;
using test::parameter_values;

// A 4-layer MLP job on the teacher data; `shards` > 0 forces the cut.
JobSpec job(const std::string& name, std::size_t shards, bool adamw = false,
            std::int64_t width = 48) {
  JobSpec j;
  j.name = name;
  j.make_model = [width] { return make_mlp(16, {width, width, width}, 4); };
  if (adamw)
    j.make_optimizer = [] { return std::make_unique<AdamW>(1e-2, 0.9, 0.999, 1e-8, 0.01); };
  else
    j.make_optimizer = [] { return std::make_unique<SGD>(0.05, 0.9); };
  j.data = [] { return test::teacher_data(400, 16, 4, 11); };
  j.data_key = "teacher-16-4";
  j.batch_size = 24;
  j.max_steps = 8;
  j.seed = 5;
  j.shards = shards;
  return j;
}

bool is_task(const TraceEvent& e) {
  return e.kind == "forward" || e.kind == "backward" || e.kind == "update" || e.kind == "eval";
}

// Whether two compute events of `job` that satisfy `differ` overlap in time on two devices.
template <class Differ>
bool overlapping(const std::vector<TraceEvent>& trace, const std::string& job, Differ differ) {
  for (const TraceEvent& a : trace)
    for (const TraceEvent& b : trace)
      if (a.job == job && b.job == job && is_task(a) && is_task(b) && a.device != b.device &&
          differ(a, b) && a.start < b.end && b.start < a.end)
        return true;
  return false;
}

// Runs `j` alone on two CPU devices and returns its result, trace and final parameters.
struct Outcome {
  JobResult result;
  std::vector<TraceEvent> trace;
  std::vector<std::vector<float>> params;
};
Outcome run_alone(JobSpec j) {
  auto params = std::make_shared<std::vector<std::vector<float>>>();
  j.on_finish = [params](Model& m) { *params = parameter_values(m); };
  RunReport r = run({j}, cpu_devices(2));
  REQUIRE(r.jobs.size() == 1);
  INFO(r.jobs[0].error);
  REQUIRE(r.jobs[0].status == JobStatus::done);
  return {r.jobs[0], r.trace, *params};
}

// What a data-parallel job's replicas look like after training (checked by its program).
struct ReplicaProbe {
  bool identical = false;
  std::vector<std::size_t> state_bytes;  // optimizer state per replica
};
actors::Task<void> probed_program(actors::JobContext& job, std::shared_ptr<ReplicaProbe> probe) {
  co_await actors::default_training_program(job);
  probe->identical = actors::replicas_identical(job.parts());
  for (int r = 0; r < static_cast<int>(job.parts().replicas.size()); ++r)
    probe->state_bytes.push_back(actors::optimizer_state_bytes(job.parts(), r));
}
std::shared_ptr<ReplicaProbe> probe(JobSpec& j) {
  auto p = std::make_shared<ReplicaProbe>();
  j.program = [p](actors::JobContext& job) { return probed_program(job, p); };
  return p;
}

// Identity that throws in its `fail_at`-th training forward (counted over all its copies).
class FailingLayer : public test::IdentityLayer {
 public:
  FailingLayer(std::shared_ptr<std::atomic<int>> calls, int fail_at)
      : calls_(std::move(calls)), fail_at_(fail_at) {}
  std::string name() const override { return "FailingLayer"; }
  Tensor forward(ExecContext&, const Tensor& x, Stash&, bool training) override {
    if (training && ++*calls_ == fail_at_) throw Error("injected failure");
    return x;
  }

 private:
  std::shared_ptr<std::atomic<int>> calls_;
  int fail_at_;
};

}  // namespace

TEST_CASE("actors: device affinity runs every task of a job on its device") {
  JobSpec a = job("pinned-1", 2), b = job("pinned-0", 2), free = job("free", 2);
  a.device_affinity = 1;
  b.device_affinity = 0;
  b.seed = 6;
  free.seed = 7;
  RunReport r = run({a, b, free}, cpu_devices(3));
  for (const JobResult& j : r.jobs) {
    INFO(j.name << ": " << j.error);
    CHECK(j.status == JobStatus::done);
    CHECK(j.steps == 8);
  }
  std::map<std::string, std::set<std::string>> devices;
  for (const TraceEvent& e : r.trace)
    if (is_task(e)) devices[e.job].insert(e.device);
  CHECK(devices["pinned-1"] == std::set<std::string>{"cpu:1"});
  CHECK(devices["pinned-0"] == std::set<std::string>{"cpu:0"});
  CHECK(r.scheduler.idle_while_ready == 0);
}

TEST_CASE("actors: a device affinity outside the run's devices fails only that job") {
  JobSpec bad = job("bad-affinity", 1), good = job("good", 1);
  bad.device_affinity = 2;
  std::vector<JobResult> r = train({bad, good}, cpu_devices(2));
  CHECK(r[0].status == JobStatus::failed);
  CHECK(r[0].error.find("device_affinity 2") != std::string::npos);
  CHECK(r[0].error.find("devices 0..1") != std::string::npos);
  CHECK(r[1].status == JobStatus::done);
}

TEST_CASE("actors: GPipe micro-batches train like one batch and overlap shards on 2 devices") {
  // 13 steps: the 13th is the epoch's last batch of 12 samples (300 training samples, batch 24),
  // which 8 micro-batches split unevenly (2,2,2,2,1,1,1,1).
  for (std::int64_t m : {4, 8}) {
    JobSpec base = job("pipe", 2, false, 128);
    base.max_steps = 13;
    JobSpec piped = base;
    piped.micro_batches = m;
    const Outcome a = run_alone(base), b = run_alone(piped);
    INFO("micro_batches " << m);
    CHECK(max_diff(a.params, b.params) < 2e-5);
    REQUIRE(a.result.train_loss.size() == b.result.train_loss.size());
    for (std::size_t i = 0; i < a.result.train_loss.size(); ++i)
      CHECK(std::fabs(a.result.train_loss[i].value - b.result.train_loss[i].value) < 1e-5);
    // Every shard runs m forwards and m backwards per step, one update per shard and step.
    std::map<std::string, int> count;
    for (const TraceEvent& e : b.trace)
      if (is_task(e)) ++count[e.kind + std::to_string(e.shard)];
    CHECK(count["update0"] == 13);
    CHECK(count["update1"] == 13);
    CHECK(count["forward1"] == 13 * m);
    CHECK(overlapping(b.trace, "pipe", [](const TraceEvent& x, const TraceEvent& y) {
      return x.shard != y.shard && x.kind != "eval" && y.kind != "eval";
    }));
  }
}

TEST_CASE("actors: a batch size not divisible by micro_batches fails with both numbers") {
  JobSpec m = job("bad-micro", 1), zero = job("zero-micro", 1);
  m.micro_batches = 5;
  zero.micro_batches = 0;
  std::vector<JobResult> out = train({m, zero}, cpu_devices(2));
  CHECK(out[0].status == JobStatus::failed);
  CHECK(out[0].error.find("batch_size 24 is not divisible by micro_batches 5") !=
        std::string::npos);
  CHECK(out[1].status == JobStatus::failed);
  CHECK(out[1].error.find("micro_batches must be at least 1 (got 0)") != std::string::npos);
}

TEST_CASE("actors: a batch size not divisible by replicas fails with both numbers") {
  JobSpec r = job("bad-replicas", 1), both = job("bad-both", 1);
  r.replicas = 5;
  both.replicas = 4;
  both.micro_batches = 4;
  std::vector<JobResult> out = train({r, both}, cpu_devices(2));
  CHECK(out[0].status == JobStatus::failed);
  CHECK(out[0].error.find("batch_size 24 is not divisible by replicas 5") != std::string::npos);
  CHECK(out[1].status == JobStatus::failed);
  CHECK(out[1].error.find("batch_size 24 is not divisible by replicas * micro_batches 16") !=
        std::string::npos);
}

TEST_CASE("actors: data-parallel replicas train like one model and stay bitwise identical") {
  for (bool adamw : {false, true}) {
    JobSpec base = job("dp", 2, adamw, 128);
    base.max_steps = 13;  // the last step is a partial batch of 12
    JobSpec dp = base;
    dp.replicas = 2;
    auto p = probe(dp);
    const Outcome a = run_alone(base), b = run_alone(dp);
    INFO("adamw " << adamw);
    CHECK(max_diff(a.params, b.params) < 2e-5);
    CHECK(p->identical);
    REQUIRE(p->state_bytes.size() == 2);
    CHECK(p->state_bytes[0] == p->state_bytes[1]);
    int allreduce = 0;
    for (const TraceEvent& e : b.trace)
      if (e.kind == "allreduce" && e.job == "dp" && e.bytes > 0 && e.end >= e.start) ++allreduce;
    CHECK(allreduce == 13);
    bool replicas_overlap = false;
    for (const TraceEvent& x : b.trace)
      for (const TraceEvent& y : b.trace)
        if (x.job == "dp" && y.job == "dp/r1" && is_task(x) && is_task(y) && x.device != y.device &&
            x.start < y.end && y.start < x.end)
          replicas_overlap = true;
    CHECK(replicas_overlap);
  }
}

TEST_CASE("actors: replicas combine with micro-batches and gradient clipping") {
  JobSpec base = job("dp-pipe", 2, true, 64);
  base.clip_grad_norm = 0.5;
  JobSpec both = base;
  both.replicas = 2;
  both.micro_batches = 3;
  const Outcome a = run_alone(base), b = run_alone(both);
  CHECK(max_diff(a.params, b.params) < 2e-5);
}

TEST_CASE("actors: sharded data parallelism matches plain replicas with 1/R optimizer state") {
  JobSpec plain = job("dp", 2, true, 128);
  plain.replicas = 2;
  JobSpec sharded = plain;
  sharded.sharded_data_parallel = true;
  auto pp = probe(plain), ps = probe(sharded);
  const Outcome a = run_alone(plain), b = run_alone(sharded);
  CHECK(max_diff(a.params, b.params) < 1e-6);
  CHECK(pp->identical);
  CHECK(ps->identical);
  REQUIRE(ps->state_bytes.size() == 2);
  // Each replica holds the AdamW state (2 slots) of half of every parameter tensor.
  const std::size_t full = pp->state_bytes[0];
  CHECK(full > 0);
  CHECK(ps->state_bytes[0] + ps->state_bytes[1] == full);
  CHECK(ps->state_bytes[0] <= full / 2 + 64);
  CHECK(ps->state_bytes[1] <= full / 2 + 64);
  int allgather = 0;
  for (const TraceEvent& e : b.trace)
    if (e.kind == "allgather" && e.bytes > 0) ++allgather;
  CHECK(allgather == 8);
}

TEST_CASE("actors: sharded data parallelism without replicas fails with a clear error") {
  JobSpec s = job("bad-sharded", 1);
  s.sharded_data_parallel = true;
  std::vector<JobResult> out = train({s}, cpu_devices(2));
  CHECK(out[0].status == JobStatus::failed);
  CHECK(out[0].error.find("sharded_data_parallel needs replicas > 1 (got 1)") != std::string::npos);
}

TEST_CASE("actors: a task failing inside a pipelined or replicated step fails only its job") {
  // A training forward of the middle layer fails inside step 2's pipeline (4 micro-batches; the
  // 2nd micro-batch of step 2 in replica order) while other tasks of the step are in flight; the
  // job ends with the task's error instead of waiting for tasks that can no longer start.
  for (std::size_t replicas : {1, 2}) {
    auto calls = std::make_shared<std::atomic<int>>(0);
    JobSpec bad = job("failing", 2);
    const int fail_at = replicas == 1 ? 6 : 10;  // step 1 has 4 (8 with 2 replicas) forwards
    bad.make_model = [calls, fail_at] {
      Model out;
      out.emplace<Linear>(16, 48);
      out.emplace<FailingLayer>(calls, fail_at);
      out.emplace<ReLU>();
      out.emplace<Linear>(48, 4);
      return out;
    };
    bad.micro_batches = 4;
    bad.replicas = replicas;
    JobSpec good = job("healthy", 2);
    good.micro_batches = 2;
    std::vector<JobResult> r = train({bad, good}, cpu_devices(2));
    INFO("replicas " << replicas);
    CHECK(r[0].status == JobStatus::failed);
    CHECK(r[0].error.find("injected failure") != std::string::npos);
    CHECK(r[0].error.find("forward at step 2") != std::string::npos);
    CHECK(r[1].status == JobStatus::done);
    CHECK(r[1].steps == 8);
  }
}

TEST_CASE("actors: a task pinned to a device that terminated fails instead of waiting") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto sched = sys.spawn(actors::scheduler_actor,
                         actors::SchedulerConfig{"fifo", 0, std::make_shared<Trace>()});
  // Stand-ins for two device actors: each asks for one task and never finishes one.
  auto device = [](caf::event_based_actor* self, caf::actor scheduler, int index) -> caf::behavior {
    self->send(scheduler, actors::pull_atom::value, index, 1);
    return {[](actors::run_atom, actors::TaskPtr&) {}};
  };
  auto d0 = sys.spawn(device, sched, 0);
  auto d1 = sys.spawn(device, sched, 1);
  caf::anon_send_exit(d1, caf::exit_reason::user_shutdown);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the scheduler sees it go down
  auto state = std::make_shared<actors::ShardState>();
  state->job_name = "pinned";
  state->device_affinity = 1;
  auto task = std::make_shared<actors::ShardTask>();
  task->state = state;
  caf::scoped_actor self{sys};
  bool answered = false;
  self->request(sched, std::chrono::seconds(10), actors::submit_atom::value, task)
      .receive(
          [&](actors::TaskPtr& done) {
            answered = true;
            CHECK(done->error.find("device 1 of its device_affinity terminated") !=
                  std::string::npos);
          },
          [&](caf::error&) {});
  CHECK(answered);
  caf::anon_send_exit(d0, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(sched, caf::exit_reason::user_shutdown);
}

TEST_CASE(
    "actors: a sharded data-parallel job resumes from its state file like an uninterrupted run") {
  // The optimizer state lives in the replicas' owned slices: the state file must hold all of it
  // (AdamW moments), and resume must hand each replica its part again.
  const std::string dir =
      (std::filesystem::temp_directory_path() / "hydra-test-sharded-resume").string();
  std::filesystem::remove_all(dir);
  JobSpec whole = job("sdp", 2, true, 64);
  whole.replicas = 2;
  whole.sharded_data_parallel = true;
  whole.max_steps = 12;
  JobSpec first = whole;
  first.max_steps = 6;  // its final validation writes the state file after step 6
  RuntimeOptions o = cpu_devices(2);
  o.out_dir = dir;
  RunReport r = run({first}, o);
  REQUIRE(r.jobs.at(0).status == JobStatus::done);
  const std::string state = dir + "/state/sdp.state";
  REQUIRE(std::filesystem::exists(state));
  JobSpec rest = whole;
  rest.resume_from = state;
  auto p = probe(rest), pa = probe(whole);
  const Outcome a = run_alone(whole), c = run_alone(rest);
  CHECK(c.result.train_loss.size() == 12);
  CHECK(max_diff(a.params, c.params) == 0.0);
  CHECK(p->identical);
  // Back to 1/R per replica after the resume: as much state as the uninterrupted run's replicas.
  CHECK(p->state_bytes.size() == 2);
  CHECK(p->state_bytes == pa->state_bytes);
  std::filesystem::remove_all(dir);
}
