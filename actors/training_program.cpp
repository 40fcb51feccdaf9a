#include "actors/training_program.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "actors/checkpoint.hpp"
#include "actors/data_parallel_step.hpp"
#include "actors/early_stopping_actor.hpp"
#include "actors/job_actor.hpp"
#include "actors/pipeline_step.hpp"
#include "actors/replica_set.hpp"
#include "actors/strategy_switch.hpp"

namespace hydra::actors {

JobContext::JobContext(caf::event_based_actor* self, Parts& parts) : self_(self), parts_(parts) {}

const JobSpec& JobContext::spec() const {
  return parts_.setup.spec;
}
const Dataset& JobContext::train_data() const {
  return parts_.data.train;
}
const Dataset& JobContext::val_data() const {
  return parts_.data.validation;
}
int JobContext::num_shards() const {
  return static_cast<int>(parts_.shards.size());
}
std::int64_t JobContext::total_steps() const {
  return parts_.total_steps;
}
JobResult& JobContext::result() {
  return parts_.result;
}
DataPosition& JobContext::data_position() {
  return position_;
}

StateFingerprint JobContext::fingerprint() const {
  StateFingerprint f;
  f.optimizer = parts_.optimizer_config.optimizer->name();
  f.lr = parts_.optimizer_config.optimizer->lr;
  f.batch_size = spec().batch_size;
  f.train_samples = train_data().size();
  f.val_samples = val_data().size();
  f.seed = spec().seed;
  f.shuffle = spec().shuffle;
  f.clip_grad_norm = spec().clip_grad_norm;
  return f;
}

namespace {

// Replica 0's model holds whole optimizer state only without sharded data parallelism.
bool sliced_state(const JobContext::Parts& p) {
  return p.replicas.size() > 1 && p.setup.spec.sharded_data_parallel;
}

}  // namespace

void JobContext::save_state() {
  if (parts_.setup.out_dir.empty()) return;
  const std::filesystem::path dir = std::filesystem::path(parts_.setup.out_dir) / "state";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / (spec().name + ".state")).string();
  TrainingProgress progress;
  progress.step = step_;
  progress.data = position_;
  progress.samples = parts_.samples;
  progress.result = parts_.result;
  // No task of this job is in flight: its parameters and optimizer state are in home memory.
  if (sliced_state(parts_)) {
    gather_slices(parts_);
    try {
      save_training_state(path, *parts_.model, fingerprint(), progress);
    } catch (...) {
      for (Parameter* q : parts_.model->parameters())
        q->state.clear();
      throw;
    }
    for (Parameter* q : parts_.model->parameters())
      q->state.clear();
  } else {
    save_training_state(path, *parts_.model, fingerprint(), progress);
  }
  parts_.result.state_path = path;
}

void JobContext::resume(const std::string& path) {
  TrainingProgress progress = load_training_state(path, *parts_.model, fingerprint());
  // Data-parallel replicas hold the same parameters and optimizer state as replica 0 (the state
  // file has replica 0's; its layer state, e.g. Dropout counters, goes to every replica too).
  for (const Replica& rep : parts_.replicas)
    if (rep.model != parts_.model) load_training_state(path, *rep.model, fingerprint());
  if (sliced_state(parts_)) scatter_slices(parts_);
  step_ = progress.step;
  position_ = progress.data;
  parts_.samples = progress.samples;
  JobResult& r = parts_.result;
  r.train_loss = std::move(progress.result.train_loss);
  r.val_loss = std::move(progress.result.val_loss);
  r.val_accuracy = std::move(progress.result.val_accuracy);
  r.best_val_accuracy = progress.result.best_val_accuracy;
  r.best_val_loss = progress.result.best_val_loss;
  r.best_step = progress.result.best_step;
  r.checkpoint_path = progress.result.checkpoint_path;
  r.steps = step_;
  resumed_ = true;
  self_->send(parts_.optimizer, stepped_atom::value, step_);
}

std::int64_t displayed_epoch(std::int64_t step, std::int64_t batches_per_epoch,
                             std::int64_t epochs) {
  if (batches_per_epoch <= 0) return 0;
  const std::int64_t e = 1 + std::max<std::int64_t>(0, step - 1) / batches_per_epoch;
  return epochs > 0 ? std::min(e, epochs) : e;
}

void JobContext::show_progress(const std::string& status) {
  if (!parts_.setup.progress) return;
  const JobResult& r = parts_.result;
  JobProgress p;
  p.name = spec().name;
  p.status = status;
  const std::int64_t batches =
      (train_data().size() + spec().batch_size - 1) / std::max<std::int64_t>(1, spec().batch_size);
  if (batches > 0) {
    p.epochs = (total_steps() + batches - 1) / batches;
    p.epoch = displayed_epoch(step_, batches, p.epochs);
  }
  p.step = step_;
  p.total_steps = total_steps();
  if (!r.train_loss.empty()) p.last_loss = r.train_loss.back().value;
  if (!r.val_accuracy.empty()) p.val_accuracy = r.val_accuracy.back().value;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - parts_.start).count();
  if (seconds > 0) p.samples_per_second = static_cast<double>(parts_.samples) / seconds;
  parts_.setup.progress->update_job(p);
  parts_.setup.progress->render();
}

Task<TaskPtr> JobContext::submit(int shard, TaskPtr t) {
  co_return co_await run_on(0, shard, std::move(t));
}

Task<TaskPtr> JobContext::run_on(int replica, int shard, TaskPtr t) {
  check(shard >= 0 && shard < num_shards(), "job " + spec().name + ": no shard " +
                                                std::to_string(shard) + " (it has " +
                                                std::to_string(num_shards()) + ")");
  const auto& shards =
      replica == 0 ? parts_.shards : parts_.replicas.at(static_cast<std::size_t>(replica)).shards;
  t->step = step_;
  TaskPtr done = co_await request<TaskPtr>(self_, shards[shard], run_atom::value, t);
  if (!done->error.empty())
    throw Error((replica > 0 ? "replica " + std::to_string(replica) + " " : std::string()) +
                "shard " + std::to_string(shard) + " " +
                (done->training ? task_kind_name(done->kind) : "eval") + " at step " +
                std::to_string(step_ + 1) + " on " + done->device_name + ": " + done->error);
  co_return done;
}

Task<TaskPtr> JobContext::forward(int shard, Tensor x, Tensor labels, bool training) {
  auto t = std::make_shared<ShardTask>();
  t->kind = TaskKind::forward;
  t->training = training;
  t->input = std::move(x);
  if (shard + 1 == num_shards()) t->labels = std::move(labels);
  co_return co_await submit(shard, t);
}

Task<TaskPtr> JobContext::backward(int shard, Tensor dy) {
  auto t = std::make_shared<ShardTask>();
  t->kind = TaskKind::backward;
  t->optimizer = parts_.optimizer_config.optimizer;
  t->fuse_update = parts_.optimizer_config.clip_grad_norm <= 0;
  if (shard + 1 < num_shards()) t->input = std::move(dy);
  co_return co_await submit(shard, t);
}

Task<TaskPtr> JobContext::update(int shard, double grad_scale) {
  auto t = std::make_shared<ShardTask>();
  t->kind = TaskKind::update;
  t->optimizer = parts_.optimizer_config.optimizer;
  t->grad_scale = grad_scale;
  co_return co_await submit(shard, t);
}

Task<double> JobContext::train_step(const Batch& batch) {
  // A re-planned strategy takes effect here or after this step (a trial), between two steps (no
  // task of the job in flight).
  begin_step(*this);
  const auto started = std::chrono::steady_clock::now();
  double loss = 0;
  if (spec().replicas > 1)
    loss = co_await data_parallel_step(*this, batch);
  else if (spec().micro_batches > 1)
    loss = co_await pipeline_step(*this, batch);
  else
    loss = co_await sequential_step(batch);
  co_await request<std::int64_t>(self_, parts_.optimizer, stepped_atom::value);
  ++step_;
  parts_.samples += batch.size();
  const double epoch = static_cast<double>(parts_.samples) /
                       static_cast<double>(std::max<std::int64_t>(1, train_data().size()));
  parts_.result.train_loss.push_back({step_, epoch, loss});
  parts_.result.steps = step_;
  if (parts_.setup.replanner)
    self_->send(parts_.setup.replanner, rp_step_atom::value, parts_.setup.index, step_);
  if (spec().checkpoint_every > 0 && step_ % spec().checkpoint_every == 0) save_state();
  show_progress("running");
  end_step(*this,
           std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  co_return loss;
}

Task<double> JobContext::sequential_step(const Batch& batch) {
  const int n = num_shards();
  Tensor x = batch.inputs;
  double loss = 0;
  for (int s = 0; s < n; ++s) {
    TaskPtr t = co_await forward(s, x, batch.labels, true);
    x = t->output;
    if (s + 1 == n) loss = t->loss;
  }
  if (!std::isfinite(loss))
    throw Error(std::string("loss is ") + (std::isnan(loss) ? "NaN" : "inf") + " at step " +
                std::to_string(step_ + 1));
  std::vector<double> squares(static_cast<std::size_t>(n), 0.0);
  Tensor dy;
  for (int s = n - 1; s >= 0; --s) {
    TaskPtr t = co_await backward(s, dy);
    dy = t->output;
    squares[static_cast<std::size_t>(s)] = t->grad_squares;
  }
  if (parts_.optimizer_config.clip_grad_norm > 0) {
    const double scale =
        co_await request<double>(self_, parts_.optimizer, clip_atom::value, squares);
    for (int s = 0; s < n; ++s)
      co_await update(s, scale);
  }
  co_return loss;
}

Task<EvalResult> JobContext::validate() {
  EvalResult r;
  const Dataset& val = val_data();
  if (val.size() == 0) co_return r;
  DataLoader loader(val, {.batch_size = spec().batch_size, .shuffle = false});
  const int n = num_shards();
  double loss_sum = 0;
  std::int64_t correct = 0;
  Batch b;
  while (loader.next(b)) {
    Tensor x = b.inputs;
    for (int s = 0; s < n; ++s) {
      TaskPtr t = co_await forward(s, x, b.labels, false);
      x = t->output;
      if (s + 1 == n) {
        if (!std::isfinite(t->loss))
          throw Error(std::string("validation loss is ") + (std::isnan(t->loss) ? "NaN" : "inf") +
                      " at step " + std::to_string(step_));
        loss_sum += t->loss * static_cast<double>(t->count);
        correct += t->correct;
        r.samples += t->count;
      }
    }
  }
  r.loss = loss_sum / static_cast<double>(std::max<std::int64_t>(1, r.samples));
  r.accuracy =
      static_cast<double>(correct) / static_cast<double>(std::max<std::int64_t>(1, r.samples));
  JobResult& res = parts_.result;
  const double epoch = static_cast<double>(parts_.samples) /
                       static_cast<double>(std::max<std::int64_t>(1, train_data().size()));
  res.val_loss.push_back({step_, epoch, r.loss});
  res.val_accuracy.push_back({step_, epoch, r.accuracy});
  const bool best = res.best_step < 0 || r.accuracy > res.best_val_accuracy ||
                    (r.accuracy == res.best_val_accuracy && r.loss < res.best_val_loss);
  if (best) {
    res.best_step = step_;
    res.best_val_accuracy = r.accuracy;
    res.best_val_loss = r.loss;
    if (!parts_.setup.out_dir.empty()) {
      std::filesystem::path dir = std::filesystem::path(parts_.setup.out_dir) / "checkpoints";
      std::filesystem::create_directories(dir);
      // No task of this job is in flight: its parameters are all in home memory.
      const std::string path = (dir / (spec().name + ".ckpt")).string();
      save_checkpoint(path, *parts_.model, step_);
      res.checkpoint_path = path;
    }
  }
  save_state();
  show_progress("running");
  if (parts_.setup.early_stopping) {
    const StopVerdict v =
        co_await request<StopVerdict>(self_, parts_.setup.early_stopping, es_report_atom::value,
                                      spec().name, step_, total_steps(), r.loss, r.accuracy);
    // A stop at the last validation changes nothing: the job has trained all its steps.
    if (v.decision == StopDecision::stop && step_ < total_steps()) throw JobStopped(v.reason);
  }
  co_return r;
}

Task<void> default_training_program(JobContext& job) {
  const JobSpec& spec = job.spec();
  DataLoader loader(job.train_data(),
                    {.batch_size = spec.batch_size, .shuffle = spec.shuffle, .seed = spec.seed});
  // A resumed job continues where its state file says the loader was (fresh: epoch 0, batch 0).
  DataPosition& position = job.data_position();
  if (position.epoch != loader.epoch()) loader.start_epoch(position.epoch);
  loader.seek(position.batch);
  std::int64_t epoch = position.epoch;
  const auto& val = job.result().val_loss;
  bool validated = job.step() > 0 && !val.empty() && val.back().step == job.step();
  // A state file written at a validation step before that validation (checkpoint_every):
  // validate now, as the uninterrupted run did right after the step.
  if (job.resumed() && !validated && spec.eval_every > 0 && job.step() > 0 &&
      job.step() % spec.eval_every == 0 && job.step() < job.total_steps()) {
    co_await job.validate();
    validated = true;
  }
  while (job.step() < job.total_steps()) {
    Batch b;
    if (!loader.next(b)) {
      loader.start_epoch(++epoch);
      position = {epoch, 0};
      continue;
    }
    position = {epoch, b.index + 1};
    co_await job.train_step(b);
    validated = false;
    if (spec.eval_every > 0 && job.step() % spec.eval_every == 0) {
      co_await job.validate();
      validated = true;
    }
  }
  if (!validated) co_await job.validate();
}

}  // namespace hydra::actors
