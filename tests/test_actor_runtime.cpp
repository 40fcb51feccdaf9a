#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <set>

#include "actors/hydra.hpp"
#include "kernels/backend.hpp"
#include "kernels/core/cuda_api.hpp"
#include "kernels/core/memory_pool.hpp"
#include "kernels/loss.hpp"
#include "kernels/model_zoo.hpp"
#include "kernels/optim/adamw.hpp"
#include "kernels/optim/grad_clip.hpp"
#include "kernels/optim/sgd.hpp"
#include "kernels/random.hpp"
#include "runtime/data/fashion_mnist.hpp"
#include "tests/job_test_util.hpp"

using namespace hydra;

namespace {

Model deep_mlp(std::int64_t in, std::int64_t width, int hidden_layers, std::int64_t classes) {
  return make_mlp(in, std::vector<std::int64_t>(static_cast<std::size_t>(hidden_layers), width),
                  classes);
}

JobSpec mlp_job(const std::string& name, double lr, std::uint64_t seed) {
  JobSpec j;
  j.name = name;
  j.config = {{"lr", std::to_string(lr)}};
  j.make_model = [] { return make_mlp(16, {32, 32}, 4); };
  j.make_optimizer = [lr] { return std::make_unique<SGD>(lr, 0.9); };
  j.data = [] { return test::teacher_data(256, 16, 4, 7); };
  j.data_key = "synthetic-16-4";
  j.batch_size = 32;
  j.max_steps = 12;
  j.seed = seed;
  return j;
}

RuntimeOptions cpu_devices(int n, std::size_t bytes) {
  RuntimeOptions o;
  for (int i = 0; i < n; ++i)
    o.devices.push_back({Device::cpu(i), bytes});
  return o;
}

std::vector<std::vector<float>> parameter_values(Model& m) {
  std::vector<std::vector<float>> out;
  for (Parameter* p : m.parameters())
    out.push_back(p->value.to_floats());
  return out;
}

void print_utilisation(const char* what, const RunReport& r) {
  std::printf("%s: %.2f s, utilisation", what, r.seconds);
  for (const auto& [dev, u] : r.utilisation)
    std::printf("  %s %.1f%%", dev.c_str(), 100.0 * u);
  std::printf(
      "  (to idle %llu, lookahead %llu, prefetched %llu, hints %llu hit %llu dropped %llu, "
      "stolen %llu of %llu, idle-while-ready %llu)\n",
      static_cast<unsigned long long>(r.scheduler.dispatched_to_idle),
      static_cast<unsigned long long>(r.scheduler.dispatched_lookahead),
      static_cast<unsigned long long>(r.scheduler.prefetched),
      static_cast<unsigned long long>(r.scheduler.prefetch_hints),
      static_cast<unsigned long long>(r.scheduler.prefetch_hits),
      static_cast<unsigned long long>(r.scheduler.prefetch_dropped),
      static_cast<unsigned long long>(r.scheduler.stolen),
      static_cast<unsigned long long>(r.scheduler.steal_attempts),
      static_cast<unsigned long long>(r.scheduler.idle_while_ready));
}

// Parameters after `steps` SGD steps of the unsharded model on one device, with the data order
// (seeded shuffle, epochs restarting) of the runtime's default training program.
std::vector<std::vector<float>> unsharded_reference(
    const std::function<Model()>& make, const std::function<std::unique_ptr<Optimizer>()>& make_opt,
    const DataSplits& data, std::int64_t batch, std::uint64_t seed, std::int64_t steps) {
  Model ref = make();
  ref.init(seed);
  auto ref_opt = make_opt();
  ExecContext ctx = ExecContext::on(Device::host());
  DataLoader loader(data.train, {.batch_size = batch, .shuffle = true, .seed = seed});
  std::int64_t epoch = 0;
  for (std::int64_t s = 0; s < steps;) {
    Batch b;
    if (!loader.next(b)) {
      loader.start_epoch(++epoch);
      continue;
    }
    std::vector<Stash> stashes;
    Tensor y = ref.forward(ctx, b.inputs, stashes, true);
    LossResult lr = softmax_cross_entropy(ctx, y, b.labels);
    ref.backward(ctx, lr.dlogits, stashes);
    ref_opt->step(ref.parameters(), ctx);
    ref.zero_grad(ctx);
    ++s;
  }
  return parameter_values(ref);
}

// Identity that allocates a buffer of `bytes` on the device in every forward but reports
// nothing to the memory model: its real activation memory only shows at run time.
class Hog : public test::IdentityLayer {
 public:
  explicit Hog(std::size_t bytes) : bytes_(bytes) {}
  std::string name() const override { return "Hog"; }
  Tensor forward(ExecContext& ctx, const Tensor& x, Stash&, bool) override {
    Tensor big = Tensor::empty({static_cast<std::int64_t>(bytes_ / 4)}, DType::f32, ctx.device);
    return x;
  }

 private:
  std::size_t bytes_;
};

}  // namespace

TEST_CASE("actors: sharded training across 3 devices with spilling is bitwise equal to unsharded") {
  const std::uint64_t seed = 42;
  const std::int64_t steps = 14;  // more than one epoch of 6 batches
  auto make = [] { return deep_mlp(16, 24, 3, 4); };
  auto make_opt = [] { return std::make_unique<SGD>(0.05, 0.9, 1e-4); };
  const DataSplits data = test::teacher_data(256, 16, 4, 11);

  std::vector<std::vector<float>> sharded;
  JobSpec job;
  job.name = "sharded";
  job.make_model = make;
  job.make_optimizer = make_opt;
  job.data = [&] { return data; };
  job.batch_size = 32;
  job.max_steps = steps;
  job.seed = seed;
  job.eval_every = 5;
  job.on_finish = [&](Model& m) { sharded = parameter_values(m); };
  RuntimeOptions opt = cpu_devices(3, 96 * 1024);
  opt.shards = 3;
  const std::size_t capacity_before = memory_pool(Device::cpu(1)).capacity();
  RunReport r = run({job}, opt);
  CHECK(memory_pool(Device::cpu(1)).capacity() == capacity_before);  // budgets are per run
  REQUIRE(r.jobs.size() == 1);
  INFO(r.jobs[0].error);
  REQUIRE(r.jobs[0].status == JobStatus::done);
  CHECK(r.jobs[0].steps == steps);
  // It really ran as 3 shards, on more than one device, spilling state between tasks.
  std::set<int> shards;
  std::set<std::string> devices;
  std::size_t loaded = 0, stored = 0;
  for (const TraceEvent& e : r.trace) {
    if (e.kind == "forward") shards.insert(e.shard), devices.insert(e.device);
    if (e.kind == "load") loaded += e.bytes;
    if (e.kind == "store") stored += e.bytes;
  }
  CHECK(shards.size() == 3);
  CHECK(devices.size() >= 2);
  CHECK(loaded > 0);
  CHECK(stored > 0);

  // The same model trained unsharded on one device, same seed, data order and optimizer.
  const auto expected = unsharded_reference(make, make_opt, data, 32, seed, steps);
  REQUIRE(sharded.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    REQUIRE(sharded[i].size() == expected[i].size());
    CHECK(std::memcmp(sharded[i].data(), expected[i].data(), expected[i].size() * 4) == 0);
  }
}

TEST_CASE("actors: 8 models on 2 devices all finish and every shard task runs once per step") {
  std::vector<JobSpec> jobs;
  for (int i = 0; i < 8; ++i) {
    JobSpec j = mlp_job("m" + std::to_string(i), 0.02 * (i + 1), static_cast<std::uint64_t>(i));
    j.shards = static_cast<std::size_t>(1 + i % 3);
    j.max_steps = 6 + i;
    j.eval_every = 4;
    jobs.push_back(j);
  }
  auto loads = std::make_shared<std::atomic<int>>(0);
  for (JobSpec& j : jobs)
    j.data = [loads] {
      ++*loads;
      return test::teacher_data(256, 16, 4, 7);
    };
  RuntimeOptions opt = cpu_devices(2, 0);
  const std::string out = std::filesystem::temp_directory_path() / "hydra_actor_test_b";
  std::filesystem::remove_all(out);
  opt.out_dir = out;
  RunReport r = run(jobs, opt);
  print_utilisation("8 models on 2 CPU devices", r);
  REQUIRE(r.jobs.size() == 8);
  CHECK(*loads == 1);  // one data key: loaded once, shared by all jobs
  std::map<std::tuple<std::string, int, std::string>, int> count;
  for (const TraceEvent& e : r.trace)
    ++count[{e.job, e.shard, e.kind}];
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const JobResult& j = r.jobs[i];
    INFO(j.name << ": " << j.error);
    CHECK(j.status == JobStatus::done);
    CHECK(j.steps == jobs[i].max_steps);
    CHECK(j.train_loss.size() == static_cast<std::size_t>(jobs[i].max_steps));
    CHECK(!j.val_accuracy.empty());
    CHECK(std::filesystem::exists(j.checkpoint_path));
    for (int s = 0; s < static_cast<int>(jobs[i].shards); ++s) {
      CHECK(count[{j.name, s, "forward"}] == jobs[i].max_steps);
      CHECK(count[{j.name, s, "backward"}] == jobs[i].max_steps);
      CHECK(count[{j.name, s, "update"}] == 0);  // fused into backward
    }
    CHECK(count[{j.name, static_cast<int>(jobs[i].shards), "forward"}] == 0);
  }
  // One task computes at a time per device: its compute and store intervals never overlap
  // (loads do: they run on the copy thread while the previous task computes).
  std::map<std::string, std::vector<std::pair<double, double>>> busy;
  for (const TraceEvent& e : r.trace)
    if (is_compute_kind(e.kind) || e.kind == "store") busy[e.device].push_back({e.start, e.end});
  REQUIRE(busy.size() == 2);
  for (auto& [dev, spans] : busy) {
    std::sort(spans.begin(), spans.end());
    int overlaps = 0;
    for (std::size_t k = 1; k < spans.size(); ++k)
      overlaps += spans[k].first < spans[k - 1].second ? 1 : 0;
    INFO(dev);
    CHECK(overlaps == 0);
  }
  REQUIRE(r.utilisation.size() == 2);
  for (const auto& [dev, u] : r.utilisation)
    CHECK(u > 0.0);
  CHECK(r.scheduler.failed == 0);
  CHECK(r.scheduler.completed == r.scheduler.submitted);
  for (const char* f : {"trace.json", "gantt.svg", "train_loss.svg", "val_loss.svg",
                        "val_accuracy.svg", "results.csv", "curves.csv"})
    CHECK(std::filesystem::exists(std::filesystem::path(out) / f));
  // The best checkpoint loads back into the same architecture.
  Model m = make_mlp(16, {32, 32}, 4);
  CHECK(load_checkpoint(r.jobs[0].checkpoint_path, m) == r.jobs[0].best_step);
  std::filesystem::remove_all(out);
}

TEST_CASE("actors: failing jobs end with clear errors while a healthy job completes") {
  const std::size_t budget = 256 * 1024;
  std::vector<JobSpec> jobs;
  // A healthy job pinned to each device: a device that a failure took down would leave its pinned
  // job waiting, and the job would fail (tasks pinned to a dead device fail).
  jobs.push_back(mlp_job("healthy", 0.05, 1));
  jobs.back().device_affinity = 0;

  JobSpec oom = mlp_job("oom", 0.05, 2);
  oom.make_model = [budget] {
    Model m = make_mlp(16, {32}, 4);
    m.emplace<Hog>(4 * budget);
    return m;
  };
  jobs.push_back(oom);

  JobSpec huge = mlp_job("huge-layer", 0.05, 3);
  huge.make_model = [] { return make_mlp(16, {8192}, 4); };
  jobs.push_back(huge);

  JobSpec bad_data = mlp_job("bad-data", 0.05, 4);
  bad_data.data_key = "";
  bad_data.data = [] {
    return DataSplits{load_fashion_mnist("/nonexistent/hydra-data", FashionMnistSplit::train),
                      Dataset()};
  };
  jobs.push_back(bad_data);

  JobSpec nan = mlp_job("nan-loss", 0.05, 5);
  nan.make_model = [] { return make_mlp(16, {}, 4); };  // no ReLU to swallow the NaN
  nan.data_key = "nan";
  nan.data = [] { return test::teacher_data(256, 16, 4, 7, true); };
  nan.shuffle = false;
  jobs.push_back(nan);

  JobSpec diverge = mlp_job("lr-1e30", 1e30, 6);
  diverge.max_steps = 30;
  jobs.push_back(diverge);

  jobs.push_back(mlp_job("healthy-1", 0.05, 7));
  jobs.back().device_affinity = 1;

  RunReport r = run(jobs, cpu_devices(2, budget));
  REQUIRE(r.jobs.size() == jobs.size());
  for (const JobResult& j : r.jobs)
    std::printf("  %-10s %-6s %s\n", j.name.c_str(), job_status_name(j.status), j.error.c_str());
  for (std::size_t i : {std::size_t{0}, jobs.size() - 1}) {
    INFO(r.jobs[i].name << ": " << r.jobs[i].error);
    CHECK(r.jobs[i].status == JobStatus::done);
    CHECK(r.jobs[i].steps == jobs[i].max_steps);
  }
  auto failed_with = [&](std::size_t i, const std::string& text) {
    INFO(r.jobs[i].name << ": " << r.jobs[i].error);
    CHECK(r.jobs[i].status == JobStatus::failed);
    CHECK(r.jobs[i].error.find(text) != std::string::npos);
  };
  failed_with(1, "out of memory");
  failed_with(2, "cannot partition job huge-layer");
  failed_with(2, "Linear(16->8192)");
  failed_with(3, "loading data for job bad-data failed");
  failed_with(4, "loss is NaN at step 1");
  failed_with(5, "at step");
  // The devices survived the failures: each pinned healthy job ran on its own device only.
  for (const TraceEvent& e : r.trace) {
    if (e.job == "healthy") CHECK(e.device == "cpu:0");
    if (e.job == "healthy-1") CHECK(e.device == "cpu:1");
  }
}

TEST_CASE("actors: the scheduler never leaves a device idle while a task is ready") {
  for (const char* policy : {"lrtf", "fifo", "random"}) {
    std::vector<JobSpec> jobs;
    for (int i = 0; i < 5; ++i) {
      JobSpec j =
          mlp_job(std::string(policy) + std::to_string(i), 0.05, static_cast<std::uint64_t>(i));
      j.shards = 2;
      j.max_steps = 8;
      jobs.push_back(j);
    }
    RuntimeOptions opt = cpu_devices(2, 0);
    opt.policy = policy;
    RunReport r = run(jobs, opt);
    print_utilisation(policy, r);
    INFO(policy);
    for (const JobResult& j : r.jobs)
      CHECK(j.status == JobStatus::done);
    CHECK(r.scheduler.idle_while_ready == 0);
    CHECK(r.scheduler.dispatched_to_idle > 0);
    // With 8 jobs of sequential tasks on 2 devices, busy devices also took tasks into their
    // lookahead slot (prefetch) instead of leaving them to wait.
    CHECK(r.scheduler.dispatched_lookahead > 0);
  }
}

TEST_CASE("actors: a model larger than all device budgets together trains by spilling") {
  const std::size_t budget = 200 * 1024;
  JobSpec j;
  j.name = "big";
  j.make_model = [] { return deep_mlp(16, 64, 8, 4); };
  j.make_optimizer = [] { return std::make_unique<AdamW>(3e-3, 0.9, 0.999, 1e-8, 0.0); };
  j.data = [] { return test::teacher_data(512, 16, 4, 3); };
  j.batch_size = 32;
  j.max_steps = 36;
  j.seed = 9;
  std::size_t state_bytes = 0;
  j.on_finish = [&](Model& m) {
    for (std::size_t i = 0; i < m.size(); ++i)
      state_bytes += m.layer(i).parameter_bytes();
  };
  RunReport r = run({j}, cpu_devices(2, budget));
  print_utilisation("model larger than the devices", r);
  REQUIRE(r.jobs.size() == 1);
  const JobResult& res = r.jobs[0];
  INFO(res.error);
  REQUIRE(res.status == JobStatus::done);
  std::printf("  parameters+grads+optimizer state %zu bytes, 2 devices x %zu bytes\n", state_bytes,
              budget);
  CHECK(state_bytes > 2 * budget);
  int shards = 0;
  for (const TraceEvent& e : r.trace)
    shards = std::max(shards, e.shard + 1);
  CHECK(shards >= 3);
  double first = 0, last = 0;
  for (int i = 0; i < 6; ++i) {
    first += res.train_loss[static_cast<std::size_t>(i)].value;
    last += res.train_loss[res.train_loss.size() - 1 - static_cast<std::size_t>(i)].value;
  }
  std::printf("  mean loss of the first 6 steps %.4f, of the last 6 %.4f\n", first / 6, last / 6);
  CHECK(last < first);
}

TEST_CASE("actors: gradient clipping runs separate update tasks after a norm over all shards") {
  const std::uint64_t seed = 8;
  const double max_norm = 0.05;  // small: clipping is active every step
  auto make = [] { return deep_mlp(16, 24, 2, 4); };
  auto make_opt = [] { return std::make_unique<SGD>(0.1, 0.9); };
  const DataSplits data = test::teacher_data(256, 16, 4, 13);
  std::vector<std::vector<float>> sharded;
  JobSpec job;
  job.name = "clipped";
  job.make_model = make;
  job.make_optimizer = make_opt;
  job.data = [&] { return data; };
  job.batch_size = 32;
  job.epochs = 2;  // 2 x 6 batches
  job.seed = seed;
  job.clip_grad_norm = max_norm;
  job.shards = 3;
  job.on_finish = [&](Model& m) { sharded = parameter_values(m); };
  RunReport r = run({job}, cpu_devices(2, 0));
  INFO(r.jobs[0].error);
  REQUIRE(r.jobs[0].status == JobStatus::done);
  CHECK(r.jobs[0].steps == 12);
  std::map<std::pair<int, std::string>, int> count;
  for (const TraceEvent& e : r.trace)
    ++count[{e.shard, e.kind}];
  for (int s = 0; s < 3; ++s) {
    CHECK(count[{s, "backward"}] == 12);
    CHECK(count[{s, "update"}] == 12);
  }
  // Reference: unsharded, torch-style clip_grad_norm_ over all parameters.
  Model ref = make();
  ref.init(seed);
  auto ref_opt = make_opt();
  ExecContext ctx = ExecContext::on(Device::host());
  DataLoader loader(data.train, {.batch_size = 32, .shuffle = true, .seed = seed});
  for (int epoch = 0; epoch < 2; ++epoch) {
    loader.start_epoch(epoch);
    Batch b;
    while (loader.next(b)) {
      std::vector<Stash> stashes;
      Tensor y = ref.forward(ctx, b.inputs, stashes, true);
      LossResult lr = softmax_cross_entropy(ctx, y, b.labels);
      ref.backward(ctx, lr.dlogits, stashes);
      clip_grad_norm(ref.parameters(), max_norm, ctx);
      ref_opt->step(ref.parameters(), ctx);
      ref.zero_grad(ctx);
    }
  }
  const auto expected = parameter_values(ref);
  REQUIRE(sharded.size() == expected.size());
  double worst = 0;
  for (std::size_t i = 0; i < expected.size(); ++i)
    for (std::size_t k = 0; k < expected[i].size(); ++k)
      worst = std::max(worst, std::abs(double(sharded[i][k]) - double(expected[i][k])));
  // The norm is reduced per shard, then over shards: equal up to double rounding.
  CHECK(worst < 1e-6);
}

TEST_CASE("actors: a custom training program runs as a coroutine on the job actor") {
  JobSpec j = mlp_job("custom", 0.05, 3);
  std::vector<double> losses;
  j.program = [&](actors::JobContext& job) -> actors::Task<void> {
    DataLoader loader(job.train_data(), {.batch_size = 32, .shuffle = false});
    Batch b;
    for (int i = 0; i < 3 && loader.next(b); ++i) {
      Tensor x = b.inputs;
      double loss = 0;
      for (int s = 0; s < job.num_shards(); ++s) {
        auto t = co_await job.forward(s, x, b.labels, false);
        x = t->output;
        loss = t->loss;
      }
      losses.push_back(loss);
      co_await job.train_step(b);
    }
  };
  RuntimeOptions opt = cpu_devices(2, 0);
  opt.shards = 2;
  opt.progress = true;  // the live display prints its final block
  RunReport r = run({j}, opt);
  INFO(r.jobs[0].error);
  CHECK(r.jobs[0].status == JobStatus::done);
  CHECK(r.jobs[0].steps == 3);
  CHECK(losses.size() == 3);
}

TEST_CASE("actors: two device actors sharing one GPU train a sharded model like the CPU run") {
  if (!cuda::available()) {
    std::printf("HYDRA-SKIP: no CUDA GPU\n");
    return;
  }
  auto job = [](std::vector<std::vector<float>>& out) {
    JobSpec j;
    j.name = "gpu";
    j.make_model = [] { return deep_mlp(16, 64, 3, 4); };
    j.make_optimizer = [] { return std::make_unique<SGD>(0.05, 0.9); };
    j.data = [] { return test::teacher_data(512, 16, 4, 21); };
    j.batch_size = 64;
    j.max_steps = 10;
    j.seed = 5;
    j.on_finish = [&out](Model& m) { out = parameter_values(m); };
    return j;
  };
  std::vector<std::vector<float>> gpu, cpu;
  RuntimeOptions g;
  g.devices = {{Device::cuda(0), std::size_t{256} << 20},
               {Device::cuda(0), std::size_t{256} << 20}};
  g.shards = 3;
  RunReport rg = run({job(gpu), mlp_job("gpu-second", 0.05, 2)}, g);
  print_utilisation("2 device actors on cuda:0", rg);
  for (const JobResult& j : rg.jobs) {
    INFO(j.name << ": " << j.error);
    CHECK(j.status == JobStatus::done);
  }
  std::set<std::string> devices;
  std::size_t loaded = 0;
  for (const TraceEvent& e : rg.trace) {
    if (is_compute_kind(e.kind)) devices.insert(e.device);
    if (e.kind == "load") loaded += e.bytes;
  }
  CHECK(devices == std::set<std::string>{"cuda:0", "cuda:0/1"});
  CHECK(loaded > 0);
  RuntimeOptions c = cpu_devices(1, 0);
  c.shards = 1;
  RunReport rc = run({job(cpu)}, c);
  REQUIRE(rc.jobs[0].status == JobStatus::done);
  REQUIRE(gpu.size() == cpu.size());
  double worst = 0;
  for (std::size_t i = 0; i < cpu.size(); ++i)
    for (std::size_t k = 0; k < cpu[i].size(); ++k)
      worst = std::max(worst, std::abs(double(gpu[i][k]) - double(cpu[i][k])) /
                                  std::max(1.0, std::abs(double(cpu[i][k]))));
  std::printf("  largest relative parameter difference GPU vs CPU: %.3g\n", worst);
  CHECK(worst < 1e-2);  // TF32 GEMMs on the GPU
}

TEST_CASE("data: actors train a small Fashion-MNIST sweep to useful accuracy") {
  std::vector<JobSpec> jobs;
  for (double lr : {0.02, 0.05, 0.1}) {
    JobSpec j;
    j.name = "fmnist-lr" + std::to_string(lr).substr(0, 4);
    j.config = {{"lr", std::to_string(lr)}};
    j.make_model = [] { return make_mlp(784, {128}, 10); };
    j.make_optimizer = [lr] { return std::make_unique<SGD>(lr, 0.9); };
    j.data = [] {
      Dataset all = load_fashion_mnist(default_fashion_mnist_dir(), FashionMnistSplit::train);
      return DataSplits{all.slice(0, 12000), all.slice(50000, 52000)};
    };
    j.data_key = "fashion-mnist-subset";
    j.batch_size = 100;
    j.epochs = 1;
    j.eval_every = 60;
    j.seed = 1;
    jobs.push_back(j);
  }
  RunReport r = run(jobs, cpu_devices(2, 0));
  print_utilisation("3 MLPs on Fashion-MNIST, 2 CPU devices", r);
  for (const JobResult& j : r.jobs) {
    INFO(j.name << ": " << j.error);
    REQUIRE(j.status == JobStatus::done);
    std::printf("  %s: best val accuracy %.3f at step %lld, %.0f samples/s\n", j.name.c_str(),
                j.best_val_accuracy, static_cast<long long>(j.best_step), j.samples_per_second);
    CHECK(j.steps == 120);
    CHECK(j.val_accuracy.size() == 2);
    CHECK(j.best_val_accuracy > 0.7);
  }
}

TEST_CASE("actors: bad runtime options are rejected with clear errors") {
  const std::vector<JobSpec> jobs{mlp_job("any", 0.05, 1)};
  RuntimeOptions policy = cpu_devices(1, 0);
  policy.policy = "shortest";
  CHECK_THROWS_WITH_AS(run(jobs, policy), doctest::Contains("shortest"), Error);
  RuntimeOptions twice = cpu_devices(1, 0);
  twice.devices.push_back({Device::cpu(0), 0});
  CHECK_THROWS_WITH_AS(run(jobs, twice), doctest::Contains("listed twice"), Error);
  RuntimeOptions host;
  host.devices = {{Device::host(), 0}};
  CHECK_THROWS_WITH_AS(run(jobs, host), doctest::Contains("cannot run tasks"), Error);
  RuntimeOptions gpu;
  gpu.devices = {{Device::cuda(cuda::device_count()), 0}};
  CHECK_THROWS_WITH_AS(run(jobs, gpu), doctest::Contains("no CUDA device"), Error);
}

TEST_CASE("actors: the progress display shows the epoch of the last step and never more epochs") {
  // 2 epochs of 6 batches: after the last step the display shows epoch 2 of 2 (not 3 of 2).
  CHECK(actors::displayed_epoch(0, 6, 2) == 1);
  CHECK(actors::displayed_epoch(1, 6, 2) == 1);
  CHECK(actors::displayed_epoch(6, 6, 2) == 1);
  CHECK(actors::displayed_epoch(7, 6, 2) == 2);
  CHECK(actors::displayed_epoch(12, 6, 2) == 2);
  // Never past the job's last epoch, whatever the step count says.
  CHECK(actors::displayed_epoch(13, 6, 2) == 2);
  CHECK(actors::displayed_epoch(100, 6, 2) == 2);
  // max_steps that ends inside an epoch: 14 steps of 6 batches are 3 epochs.
  CHECK(actors::displayed_epoch(14, 6, 3) == 3);
  // No cap when the epoch count is unknown, nothing without batches.
  CHECK(actors::displayed_epoch(13, 6, 0) == 3);
  CHECK(actors::displayed_epoch(5, 0, 2) == 0);
}

TEST_CASE(
    "actors: one sharded model prefetches its next shard and stays bitwise equal to unsharded") {
  const std::uint64_t seed = 5;
  const std::int64_t steps = 9;
  auto make = [] { return deep_mlp(16, 24, 4, 4); };
  auto make_opt = []() -> std::unique_ptr<Optimizer> {
    return std::make_unique<SGD>(0.05, 0.9, 1e-4);
  };
  const DataSplits data = test::teacher_data(256, 16, 4, 13);
  const auto expected = unsharded_reference(make, make_opt, data, 32, seed, steps);
  for (int devices : {1, 2}) {
    INFO(devices << " devices");
    std::vector<std::vector<float>> sharded;
    JobSpec job;
    job.name = "prefetching";
    job.make_model = make;
    job.make_optimizer = make_opt;
    job.data = [&] { return data; };
    job.batch_size = 32;
    job.max_steps = steps;
    job.seed = seed;
    job.eval_every = 4;
    job.shards = 4;
    job.on_finish = [&](Model& m) { sharded = parameter_values(m); };
    RunReport r = run({job}, cpu_devices(devices, 0));
    print_utilisation(
        devices == 1 ? "one model of 4 shards on 1 device" : "one model of 4 shards on 2 devices",
        r);
    REQUIRE(r.jobs.size() == 1);
    INFO(r.jobs[0].error);
    REQUIRE(r.jobs[0].status == JobStatus::done);
    std::set<int> shards;
    for (const TraceEvent& e : r.trace)
      shards.insert(e.shard);
    CHECK(shards.size() == 4);
    // Each step has 8 tasks of which 6 can be announced ahead (all but forward 0 and the last
    // shard's backward, which follow a task of the same shard): most of them hit.
    CHECK(r.scheduler.prefetch_hints > 0);
    CHECK(r.scheduler.prefetch_hits > static_cast<std::uint64_t>(steps) * 3);
    CHECK(r.scheduler.prefetch_hits <= r.scheduler.prefetch_hints);
    CHECK(r.scheduler.idle_while_ready == 0);
    REQUIRE(sharded.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      REQUIRE(sharded[i].size() == expected[i].size());
      CHECK(std::memcmp(sharded[i].data(), expected[i].data(), expected[i].size() * 4) == 0);
    }
  }
}
