// Training-state checkpoints and resume (actors/checkpoint.hpp "HYDRAST1", JobSpec::resume_from).
#include <doctest/doctest.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "actors/hydra.hpp"
#include "kernels/backend.hpp"
#include "kernels/layers/dropout.hpp"
#include "kernels/loss.hpp"
#include "kernels/model_zoo.hpp"
#include "kernels/optim/adamw.hpp"
#include "kernels/optim/sgd.hpp"
#include "runtime/data/synthetic.hpp"
#include "tests/job_test_util.hpp"

using namespace hydra;

namespace {

DataSplits synthetic_splits() {
  Dataset all = make_synthetic_classification(256, 16, 4, 5);
  auto [train, val] = all.split(192);  // 6 batches of 32 per epoch
  return {train, val};
}

// Identity that throws on the first forward (training or evaluation) after it has seen
// `fail_after` training forwards: a crash at a chosen point of a run. Negative: never.
class Tripwire : public test::IdentityLayer {
 public:
  explicit Tripwire(std::int64_t fail_after) : fail_after_(fail_after) {}
  std::string name() const override { return "Tripwire"; }
  Tensor forward(ExecContext&, const Tensor& x, Stash&, bool training) override {
    if (fail_after_ >= 0 && training_calls_ >= fail_after_)
      throw Error("tripwire after " + std::to_string(training_calls_) + " training forwards");
    if (training) ++training_calls_;
    return x;
  }

 private:
  std::int64_t fail_after_, training_calls_ = 0;
};

struct Finished {
  std::vector<std::vector<float>> params;
};

// An MLP with Dropout trained with AdamW on synthetic data; `fail_after` arms the tripwire.
JobSpec dropout_job(const std::string& name, double clip, std::int64_t fail_after,
                    std::shared_ptr<Finished> finished) {
  JobSpec j;
  j.name = name;
  j.make_model = [fail_after] {
    Model m = make_mlp(16, {32, 32}, 4, 0.25);
    m.emplace<Tripwire>(fail_after);
    return m;
  };
  j.make_optimizer = [] { return std::make_unique<AdamW>(5e-3, 0.9, 0.999, 1e-8, 0.01); };
  j.data = synthetic_splits;
  j.data_key = "training-state-synthetic";
  j.batch_size = 32;
  j.max_steps = 20;  // 3 and a third epochs
  j.eval_every = 6;
  j.seed = 17;
  j.clip_grad_norm = clip;
  j.on_finish = [finished](Model& m) {
    for (Parameter* p : m.parameters())
      finished->params.push_back(p->value.to_floats());
  };
  return j;
}

RuntimeOptions two_cpus(const std::string& out_dir) {
  RuntimeOptions o;
  o.devices = {{Device::cpu(0), 0}, {Device::cpu(1), 0}};
  o.out_dir = out_dir;
  return o;
}

void check_same_curve(const std::vector<CurvePoint>& a, const std::vector<CurvePoint>& b) {
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].step == b[i].step);
    CHECK(a[i].epoch == b[i].epoch);
    CHECK(a[i].value == b[i].value);  // bitwise: the same computation in the same order
  }
}

std::string temp_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("hydra-test-" + name);
  std::filesystem::remove_all(dir);
  return dir.string();
}

// Runs the job uninterrupted; then crashed after `fail_after` training forwards (the state file
// holds the last validation or checkpoint_every point) and resumed from its state file, with
// another shard count; both must end with the same parameters and curves, bit for bit.
void check_resume_is_exact(double clip, std::int64_t fail_after, std::int64_t state_step,
                           bool sharded_data_parallel = false) {
  const std::string out = temp_dir("resume-" + std::to_string(fail_after));
  auto whole = std::make_shared<Finished>();
  auto strategy = [&](JobSpec& j) {
    if (!sharded_data_parallel) return;
    j.replicas = 2;
    j.sharded_data_parallel = true;
  };
  JobSpec plain = dropout_job("mlp", clip, -1, whole);
  plain.shards = 2;
  strategy(plain);
  const JobResult a = run({plain}, two_cpus("")).jobs.at(0);
  REQUIRE(a.status == JobStatus::done);
  REQUIRE(a.steps == 20);
  REQUIRE(a.val_loss.size() == 4);  // steps 6, 12, 18 and the end (20)

  auto unused = std::make_shared<Finished>();
  JobSpec crashing = dropout_job("mlp", clip, fail_after, unused);
  crashing.shards = 2;
  crashing.checkpoint_every = 4;
  strategy(crashing);
  const JobResult b = run({crashing}, two_cpus(out)).jobs.at(0);
  REQUIRE(b.status == JobStatus::failed);
  CHECK(b.error.find("tripwire") != std::string::npos);
  const std::string state = out + "/state/mlp.state";
  CHECK(b.state_path == state);
  REQUIRE(std::filesystem::exists(state));
  CHECK(unused->params.empty());

  auto resumed_params = std::make_shared<Finished>();
  JobSpec resumed = dropout_job("mlp", clip, -1, resumed_params);
  resumed.shards = 1;  // the shard count need not match
  resumed.resume_from = state;
  strategy(resumed);
  const JobResult c = run({resumed}, two_cpus(out + "/resumed")).jobs.at(0);
  INFO(c.error);
  REQUIRE(c.status == JobStatus::done);
  CHECK(c.steps == 20);
  // It trained only the steps after the state file's.
  CHECK(c.train_loss.size() == 20);
  CHECK(c.train_loss.at(static_cast<std::size_t>(state_step - 1)).value ==
        b.train_loss.at(static_cast<std::size_t>(state_step - 1)).value);

  check_same_curve(a.train_loss, c.train_loss);
  check_same_curve(a.val_loss, c.val_loss);
  check_same_curve(a.val_accuracy, c.val_accuracy);
  CHECK(a.best_step == c.best_step);
  CHECK(a.best_val_accuracy == c.best_val_accuracy);
  CHECK(a.best_val_loss == c.best_val_loss);
  REQUIRE(whole->params.size() == resumed_params->params.size());
  for (std::size_t i = 0; i < whole->params.size(); ++i)
    CHECK(whole->params[i] == resumed_params->params[i]);
  std::filesystem::remove_all(out);
}

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream is(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(is), std::istreambuf_iterator<char>()};
}
void write_bytes(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream os(path, std::ios::binary | std::ios::trunc);
  os.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

TEST_CASE("training state: a crashed AdamW MLP with Dropout resumes bitwise equal to one run") {
  // Crash in step 10's forward: the state file is the checkpoint_every write after step 8 (the
  // last validation was at step 6); the data position is epoch 1, batch 2.
  check_resume_is_exact(0.0, 9, 8);
}

TEST_CASE("training state: a crash in a validation resumes with that validation and clipping") {
  // Crash in the validation after step 12: the state file is the checkpoint_every write after
  // step 12's update, before its validation, which the resumed job runs first.
  check_resume_is_exact(0.5, 12, 12);
}

TEST_CASE("training state: a sharded data-parallel job resumes bitwise equal to one run") {
  // Two replicas, each owning the AdamW state of half of every parameter: the state file holds
  // the gathered state, scattered back to the replicas' slices on resume.
  check_resume_is_exact(0.0, 9, 8, true);
}

TEST_CASE("training state: a saved state restores parameters optimizer state and Dropout") {
  Model m = make_mlp(8, {16}, 4, 0.5);
  m.init(3);
  AdamW opt(1e-2);
  ExecContext ctx = ExecContext::on(Device::host());
  Dataset data = make_synthetic_classification(32, 8, 4, 1);
  std::vector<Stash> stashes;
  for (int s = 0; s < 3; ++s) {
    m.zero_grad(ctx);
    Tensor y = m.forward(ctx, data.inputs(), stashes, true);
    m.backward(ctx, softmax_cross_entropy(ctx, y, data.labels()).dlogits, stashes);
    opt.step(m.parameters(), ctx);
  }
  StateFingerprint f{opt.name(), opt.lr, 32, 32, 0, 3, true, 0.0};
  TrainingProgress progress;
  progress.step = 3;
  progress.data = {1, 2};
  progress.samples = 96;
  progress.result.train_loss = {{1, 0.5, 1.25}, {2, 1.0, 1.125}};
  progress.result.best_step = 2;
  progress.result.checkpoint_path = "x.ckpt";
  const std::string dir = temp_dir("state-roundtrip");
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/m.state";
  save_training_state(path, m, f, progress);
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));

  Model fresh = make_mlp(8, {16}, 4, 0.5);
  fresh.init(3);
  const TrainingProgress got = load_training_state(path, fresh, f);
  CHECK(got.step == 3);
  CHECK(got.data.epoch == 1);
  CHECK(got.data.batch == 2);
  CHECK(got.samples == 96);
  REQUIRE(got.result.train_loss.size() == 2);
  CHECK(got.result.train_loss[1].value == 1.125);
  CHECK(got.result.best_step == 2);
  CHECK(got.result.checkpoint_path == "x.ckpt");
  const auto a = m.parameters(), b = fresh.parameters();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i]->value.to_floats() == b[i]->value.to_floats());
    CHECK(b[i]->step == 3);
    REQUIRE(b[i]->state.size() == 2);
    for (std::size_t k = 0; k < 2; ++k)
      CHECK(a[i]->state[k].to_floats() == b[i]->state[k].to_floats());
  }
  // The dropout masks continue where they were: the next training forward is the same.
  const auto& d = dynamic_cast<const Dropout&>(fresh.layer(3));
  CHECK(d.calls() == 3);
  std::vector<Stash> sa, sb;
  CHECK(m.forward(ctx, data.inputs(), sa, true).to_floats() ==
        fresh.forward(ctx, data.inputs(), sb, true).to_floats());
  std::filesystem::remove_all(dir);
}

TEST_CASE("training state: resume refuses a mismatched job and a truncated or corrupt file") {
  const std::string out = temp_dir("resume-errors");
  auto sink = std::make_shared<Finished>();
  JobSpec first = dropout_job("mlp", 0.0, -1, sink);
  first.max_steps = 2;
  REQUIRE(run({first}, two_cpus(out)).jobs.at(0).status == JobStatus::done);
  const std::string state = out + "/state/mlp.state";
  REQUIRE(std::filesystem::exists(state));

  auto resume_error = [&](JobSpec j) {
    j.resume_from = state;
    const JobResult r = run({j}, two_cpus("")).jobs.at(0);
    CHECK(r.status == JobStatus::failed);
    return r.error;
  };
  JobSpec big_batch = dropout_job("mlp", 0.0, -1, sink);
  big_batch.batch_size = 64;
  CHECK(resume_error(big_batch) ==
        "resume from " + state + ": batch_size 32 in the state file, 64 in the job");
  JobSpec wider = dropout_job("mlp", 0.0, -1, sink);
  wider.make_model = [] {
    Model m = make_mlp(16, {64, 32}, 4, 0.25);
    m.emplace<Tripwire>(-1);
    return m;
  };
  const std::string wider_error = resume_error(wider);
  INFO(wider_error);
  CHECK(wider_error.find("layer 1 Linear(16->32) in the state file, Linear(16->64) in the job") !=
        std::string::npos);
  JobSpec sgd = dropout_job("mlp", 0.0, -1, sink);
  sgd.make_optimizer = [] { return std::make_unique<SGD>(5e-3, 0.9); };
  CHECK(resume_error(sgd).find("optimizer AdamW(") != std::string::npos);
  JobSpec other_seed = dropout_job("mlp", 0.0, -1, sink);
  other_seed.seed = 18;
  CHECK(resume_error(other_seed).find("seed 17 in the state file, 18 in the job") !=
        std::string::npos);

  const std::vector<char> good = read_bytes(state);
  std::vector<char> truncated(good.begin(), good.begin() + static_cast<long>(good.size() / 2));
  write_bytes(state, truncated);
  CHECK(resume_error(dropout_job("mlp", 0.0, -1, sink)).find("truncated or corrupt file") !=
        std::string::npos);
  std::vector<char> flipped = good;
  flipped[flipped.size() / 2] ^= 0x10;
  write_bytes(state, flipped);
  CHECK(resume_error(dropout_job("mlp", 0.0, -1, sink)).find("checksum mismatch") !=
        std::string::npos);
  write_bytes(state, {'n', 'o', 't', ' ', 'a', ' ', 's', 't', 'a', 't', 'e'});
  CHECK(resume_error(dropout_job("mlp", 0.0, -1, sink)).find("bad magic") != std::string::npos);
  std::filesystem::remove(state);
  CHECK(resume_error(dropout_job("mlp", 0.0, -1, sink)).find("cannot open") != std::string::npos);

  JobSpec no_out = dropout_job("mlp", 0.0, -1, sink);
  no_out.checkpoint_every = 5;
  const JobResult r = run({no_out}, two_cpus("")).jobs.at(0);
  CHECK(r.status == JobStatus::failed);
  CHECK(r.error.find("checkpoint_every needs RuntimeOptions::out_dir") != std::string::npos);
  std::filesystem::remove_all(out);
}
