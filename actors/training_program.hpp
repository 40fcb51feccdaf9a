#pragma once
// The training flow of one job, written as a coroutine on the job's actor. JobContext gives a
// program the job's data and its shard operations; each operation is a shard task submitted to
// the scheduler and run on whichever device is free ("some device"), awaited with co_await:
//
//   Task<void> my_program(JobContext& job) {
//     DataLoader loader(job.train_data(), {.batch_size = job.spec().batch_size});
//     Batch b;
//     while (loader.next(b)) {
//       Tensor x = b.inputs;
//       for (int s = 0; s < job.num_shards(); ++s)           // forward, loss fused at the end
//         x = (co_await job.forward(s, x, b.labels, true))->output;
//       ...
//     }
//   }
//
// or simply `co_await job.train_step(batch)` and `co_await job.validate()`.
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "actors/checkpoint.hpp"
#include "actors/job_spec.hpp"
#include "actors/messages.hpp"
#include "runtime/job_result.hpp"

namespace hydra::actors {

struct EvalResult {
  double loss = 0, accuracy = 0;
  std::int64_t samples = 0;
};

// Thrown by JobContext::validate() when the run's early-stopping rule stops the job (what():
// the rule's reason). Not a hydra::Error, so a program's `catch (const Error&)` lets it through;
// the job actor turns it into JobStatus::stopped with JobResult::stop_reason.
class JobStopped : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class JobContext {
 public:
  struct Parts;  // actors and data of the job (job_actor.cpp)
  JobContext(caf::event_based_actor* self, Parts& parts);

  const JobSpec& spec() const;
  const Dataset& train_data() const;
  const Dataset& val_data() const;
  int num_shards() const;
  std::int64_t step() const { return step_; }  // training steps done
  std::int64_t total_steps() const;            // steps the job will train
  JobResult& result();

  // Shard tasks. forward: `labels` matter only for the last shard (loss fused into its task);
  // training = false is an evaluation forward. backward: `dy` is ignored for the last shard (it
  // uses the loss gradient from its forward); with fused updates the optimizer step runs in the
  // same task. update: a separate optimizer step (jobs that clip gradients). A task that failed
  // on its device throws hydra::Error naming the job, shard, task, step and device.
  Task<TaskPtr> forward(int shard, Tensor x, Tensor labels, bool training);
  Task<TaskPtr> backward(int shard, Tensor dy);
  Task<TaskPtr> update(int shard, double grad_scale);

  // One training step over a batch: forward through all shards, loss, backward in reverse, and
  // the optimizer update (fused, or after a clip-norm reduction over the shards). Records the
  // training loss. Throws hydra::Error("loss is NaN at step N") on a non-finite loss.
  Task<double> train_step(const Batch& batch);
  // Evaluates the validation set (forward only); records the curves and, when it is the best so
  // far, writes the checkpoint; writes the training state (save_state()). With an early-stopping
  // rule in the run it then reports to the rule and awaits its decision (a `wait` keeps the job
  // here, submitting nothing); a stop before the job's last step throws JobStopped.
  Task<EvalResult> validate();

  // --- Training state (checkpoints and resume, format in actors/checkpoint.hpp).
  // Where the program's data loader is; a program keeps it current (the default program does) so
  // the state files record it, and a resumed job starts with the saved position.
  DataPosition& data_position();
  // The job continued from JobSpec::resume_from (step(), data_position() and the result's curves
  // are those of the state file).
  bool resumed() const { return resumed_; }
  // Writes the job's training state to <out_dir>/state/<name>.state (nothing without out_dir).
  // Call only between steps, with no task of the job in flight. train_step() calls it every
  // checkpoint_every steps and validate() after every validation.
  void save_state();
  // Loads a training-state file into the job (model, optimizer state, step, data position,
  // result so far); the job actor calls it after building the job when resume_from is set.
  void resume(const std::string& path);
  // Updates the job's line of the live progress display (when the run has one).
  void show_progress(const std::string& status);

  // For the parallel strategies' steps (pipeline_step.hpp, data_parallel_step.hpp): the job's
  // actor and parts, and a prepared task run on shard `shard` of replica `replica` (0: the job's
  // model), throwing like forward() when it failed.
  caf::event_based_actor* self() const { return self_; }
  Parts& parts() { return parts_; }
  Task<TaskPtr> run_on(int replica, int shard, TaskPtr t);

 private:
  Task<TaskPtr> submit(int shard, TaskPtr t);
  Task<double> sequential_step(const Batch& batch);  // train_step without micro-batches/replicas
  StateFingerprint fingerprint() const;
  caf::event_based_actor* self_;
  Parts& parts_;
  std::int64_t step_ = 0;
  DataPosition position_;
  bool resumed_ = false;
};

// The epoch (from 1) the live progress display shows after `step` training steps of
// `batches_per_epoch` batches each: the epoch of the last step run (1 before any step), never
// more than `epochs` (the job's last epoch; <= 0: no cap). 0 when batches_per_epoch <= 0.
std::int64_t displayed_epoch(std::int64_t step, std::int64_t batches_per_epoch,
                             std::int64_t epochs);

// The default program: epochs (or max_steps) of train_step over a seeded-shuffle DataLoader,
// validate() every eval_every steps and at the end. A resumed job continues at the batch after
// the one its state file recorded (validating first if that step's validation is missing), so it
// ends with the same parameters and curves as an uninterrupted run.
Task<void> default_training_program(JobContext& job);

}  // namespace hydra::actors
