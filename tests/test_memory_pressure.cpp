// The runtime under memory pressure: a device whose budget is partly taken by another user runs
// out of memory when it holds two shards at once; the device retries the task with the device to
// itself, every job finishes, and the scheduler counts the retries (SchedulerStats::oom_retries).
#include <doctest/doctest.h>

#include <cstddef>
#include <string>
#include <vector>

#include "actors/hydra.hpp"
#include "kernels/core/memory_pool.hpp"
#include "kernels/model_zoo.hpp"
#include "kernels/optim/sgd.hpp"
#include "runtime/data/synthetic.hpp"

using namespace hydra;

namespace {

JobSpec pressure_job(const std::string& name, std::uint64_t seed) {
  JobSpec j;
  j.name = name;
  j.make_model = [] { return make_mlp(32, {128, 128}, 4); };
  j.make_optimizer = [] { return std::make_unique<SGD>(0.05, 0.9); };
  j.data = [] {
    auto [train, val] = make_synthetic_classification(512, 32, 4, 9).split(448);
    return DataSplits{train, val};
  };
  j.data_key = "pressure-32-4";
  j.batch_size = 64;
  j.max_steps = 10;
  j.seed = seed;
  return j;
}

}  // namespace

TEST_CASE("actors: loads that run out of device memory are retried and counted") {
  const Device dev = Device::cpu(5);
  const std::size_t budget = 4u << 20;
  RuntimeOptions options;
  options.devices = {{dev, budget}};

  // One job alone: the device's peak while it holds one shard at a time.
  MemoryPool& pool = memory_pool(dev);
  pool.reset_peak();
  const RunReport alone = run({pressure_job("alone", 1)}, options);
  REQUIRE(alone.jobs[0].status == JobStatus::done);
  CHECK(alone.scheduler.oom_retries == 0);
  const std::size_t one = pool.peak();
  REQUIRE(one > 0);
  REQUIRE(one < budget / 2);

  // Two jobs on the device, with a ballast leaving room for 1.2 of that peak: the lookahead
  // shard's load (or the running task beside it) runs out of memory and is retried.
  const std::size_t ballast = budget - one * 12 / 10;
  std::vector<Tensor> held = {
      Tensor::empty({static_cast<std::int64_t>(ballast / 4)}, DType::f32, dev)};
  const RunReport pressed = run({pressure_job("a", 1), pressure_job("b", 2)}, options);
  held.clear();
  // A task that runs out of memory beside another task's state is retried with the device to
  // itself, so every job finishes.
  for (const JobResult& r : pressed.jobs) {
    INFO(r.name << ": " << r.error);
    CHECK(r.status == JobStatus::done);
    CHECK(r.steps == 10);
  }
  CHECK(pressed.scheduler.oom_retries > 0);
  CHECK(pressed.scheduler.oom_retries <= pressed.scheduler.completed);
  CHECK(pressed.scheduler.failed == 0);
}
