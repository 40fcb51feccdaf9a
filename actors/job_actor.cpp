#include "actors/job_actor.hpp"

#include "actors/early_stopping_actor.hpp"
#include "actors/optimizer_actor.hpp"
#include "actors/replica_set.hpp"
#include "actors/shard_actor.hpp"
#include "kernels/model_spec.hpp"
#include "kernels/optim/adamw.hpp"
#include "kernels/optim/sgd.hpp"
#include "runtime/partitioner.hpp"

namespace hydra::actors {

namespace {

int optimizer_slots(const Optimizer& opt) {
  if (dynamic_cast<const SGD*>(&opt) != nullptr) return 1;
  if (dynamic_cast<const AdamW*>(&opt) != nullptr) return 2;
  return 2;
}

// A job with both make_model and model_spec: the spec must name the same architecture (remote
// devices build the model from the spec).
void check_matches_spec(const JobSpec& spec, const Model& model) {
  const Model named = make_model_from_spec(spec.model_spec);
  bool same = named.size() == model.size();
  for (std::size_t i = 0; same && i < model.size(); ++i)
    same = named.layer(i).name() == model.layer(i).name() &&
           named.layer(i).parameter_count() == model.layer(i).parameter_count();
  check(same, "job " + spec.name + ": model_spec '" + spec.model_spec +
                  "' does not describe the model make_model builds");
}

}  // namespace

// The parallel strategy fields (JobSpec): values the runtime can run.
void check_strategy(const JobSpec& spec, int num_devices) {
  const std::string job = "job " + spec.name + ": ";
  check(spec.replicas >= 1, job + "replicas must be at least 1 (got 0)");
  check(spec.micro_batches >= 1,
        job + "micro_batches must be at least 1 (got " + std::to_string(spec.micro_batches) + ")");
  check(spec.batch_size % spec.micro_batches == 0,
        job + "batch_size " + std::to_string(spec.batch_size) +
            " is not divisible by micro_batches " + std::to_string(spec.micro_batches));
  const auto replicas = static_cast<std::int64_t>(spec.replicas);
  check(spec.batch_size % replicas == 0, job + "batch_size " + std::to_string(spec.batch_size) +
                                             " is not divisible by replicas " +
                                             std::to_string(spec.replicas));
  check(spec.batch_size % (replicas * spec.micro_batches) == 0,
        job + "batch_size " + std::to_string(spec.batch_size) +
            " is not divisible by replicas * micro_batches " +
            std::to_string(replicas * spec.micro_batches));
  check(
      !spec.sharded_data_parallel || spec.replicas > 1,
      job + "sharded_data_parallel needs replicas > 1 (got " + std::to_string(spec.replicas) + ")");
  check(spec.device_affinity >= -1 && spec.device_affinity < num_devices,
        job + "device_affinity " + std::to_string(spec.device_affinity) +
            " is not a device of this run (devices 0.." + std::to_string(num_devices - 1) +
            ", or -1 for any)");
}

namespace {

// Everything up to the training program: data, model, partition, shard and optimizer actors.
void build(caf::event_based_actor* self, JobContext::Parts& p) {
  const JobSpec& spec = p.setup.spec;
  check(static_cast<bool>(spec.make_model) || !spec.model_spec.empty(),
        "job " + spec.name + " has no make_model and no model_spec");
  check(static_cast<bool>(spec.make_optimizer), "job " + spec.name + " has no make_optimizer");
  check(spec.batch_size > 0, "job " + spec.name + ": batch_size must be positive");
  // Strategy and resume fields whose runtime support has not landed yet are refused, not ignored.
  check_strategy(spec, p.setup.num_devices);
  check(spec.checkpoint_every >= 0, "job " + spec.name + ": checkpoint_every must be >= 0, got " +
                                        std::to_string(spec.checkpoint_every));
  check(spec.checkpoint_every == 0 || !p.setup.out_dir.empty(),
        "job " + spec.name +
            ": checkpoint_every needs RuntimeOptions::out_dir (the state files go to "
            "<out_dir>/state/)");
  p.data = p.setup.data->get(spec);

  p.model = std::make_shared<Model>(build_job_model(spec));
  if (spec.make_model && !spec.model_spec.empty()) check_matches_spec(spec, *p.model);
  p.model->init(spec.seed);
  check(p.model->size() > 0, "job " + spec.name + ": the model has no layers");
  std::shared_ptr<Optimizer> opt(spec.make_optimizer());
  check(opt != nullptr, "job " + spec.name + ": make_optimizer returned null");

  Shape input = p.data.train.sample_shape();
  input.insert(input.begin(), spec.batch_size);
  PartitionOptions po;
  po.budget_bytes = p.setup.shard_budget;
  po.optimizer_slots = optimizer_slots(*opt);
  po.shards = spec.shards > 0 ? spec.shards : p.setup.shards;
  std::vector<ShardSpec> plan;
  try {
    plan = partition(*p.model, input, po);
  } catch (const std::exception& e) {
    throw Error("cannot partition job " + spec.name + ": " + e.what());
  }

  const Device home = home_device();
  if (home != Device::host()) p.model->to(home);
  const std::int64_t batches =
      (p.data.train.size() + spec.batch_size - 1) / spec.batch_size;  // per epoch
  p.total_steps = spec.max_steps > 0 ? spec.max_steps : spec.epochs * batches;
  p.partition = plan;
  for (std::size_t r = 0; r < std::max<std::size_t>(1, spec.replicas); ++r)
    p.replicas.push_back(spawn_replica(self, p, plan, static_cast<int>(r)));
  if (p.setup.replanner)
    self->send(p.setup.replanner, rp_shards_atom::value, p.setup.index,
               static_cast<int>(plan.size()));
  p.states = p.replicas[0].states;
  p.shards = p.replicas[0].shards;
  p.optimizer_config = OptimizerConfig{opt, spec.clip_grad_norm};
  p.optimizer = self->spawn(optimizer_actor, p.optimizer_config);
}

Task<void> run_job(caf::event_based_actor* self, std::shared_ptr<JobContext::Parts> p,
                   std::shared_ptr<JobContext> ctx) {
  build(self, *p);
  // Data loaded and model partitioned: the job now waits for devices until its first step is
  // done (under Sharded-LRTF, jobs with less remaining work start later).
  ctx->show_progress("waiting");
  // The optimizer actor owns the configuration the tasks use.
  p->optimizer_config = co_await request<OptimizerConfig>(self, p->optimizer, config_atom::value);
  const JobSpec& spec = p->setup.spec;
  if (!spec.resume_from.empty()) ctx->resume(spec.resume_from);
  if (spec.program)
    co_await spec.program(*ctx);
  else
    co_await default_training_program(*ctx);
  if (spec.on_finish) spec.on_finish(*p->model);
}

}  // namespace

caf::behavior job_actor(caf::event_based_actor* self, JobSetup setup) {
  auto parts = std::make_shared<JobContext::Parts>();
  parts->setup = std::move(setup);
  parts->result.name = parts->setup.spec.name;
  parts->result.config = parts->setup.spec.config;
  return {
      [self, parts](run_atom) -> caf::result<JobResult> {
        auto rp = self->make_response_promise();
        parts->start = std::chrono::steady_clock::now();
        auto ctx = std::make_shared<JobContext>(self, *parts);
        ctx->show_progress("loading");
        start<void>(
            self, run_job(self, parts, ctx), [self, parts, ctx, rp](Outcome<void> out) mutable {
              JobResult& r = parts->result;
              if (out.index() == 1) {
                r.status = JobStatus::failed;
                try {
                  std::rethrow_exception(std::get<1>(out));
                } catch (const JobStopped& e) {
                  r.status = JobStatus::stopped;
                  r.stop_reason = e.what();
                } catch (const std::exception& e) {
                  r.error = e.what();
                } catch (...) {
                  r.error = "unknown error";
                }
              }
              r.steps = ctx->step();
              r.seconds =
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - parts->start)
                      .count();
              r.samples_per_second =
                  r.seconds > 0 ? static_cast<double>(parts->samples) / r.seconds : 0.0;
              ctx->show_progress(job_status_name(r.status));
              std::vector<caf::actor> children;
              for (auto& replica : parts->replicas)
                for (auto& a : replica.shards)
                  children.push_back(a);
              if (parts->optimizer) children.push_back(parts->optimizer);
              // Release the job's shard state and model (home memory) now, not at the end of
              // the run: a stopped or failed job gives its memory to the jobs still training.
              parts->replicas.clear();
              parts->shards.clear();
              parts->optimizer = caf::actor{};
              parts->states.clear();
              parts->model.reset();
              // The job ends (for the early-stopping rule, the replanner and the runtime) once
              // its shard and optimizer actors are gone: they hold the shard state until their
              // behaviour is destroyed, which happens on their own thread after the exit.
              auto finish = [self, parts, rp]() mutable {
                const JobResult& r = parts->result;
                if (parts->setup.early_stopping)
                  self->send(parts->setup.early_stopping, es_ended_atom::value, r.name);
                if (parts->setup.replanner) {
                  std::string why = "job " + r.name;
                  if (r.status == JobStatus::stopped)
                    why += " stopped early (" + r.stop_reason + ")";
                  else if (r.status == JobStatus::failed)
                    why += " failed";
                  else
                    why += " finished";
                  self->send(parts->setup.replanner, rp_ended_atom::value, parts->setup.index, why);
                }
                rp.deliver(r);
              };
              if (children.empty()) {
                finish();
                return;
              }
              auto left = std::make_shared<std::size_t>(children.size());
              auto end = std::make_shared<decltype(finish)>(std::move(finish));
              self->set_down_handler([left, end](caf::down_msg&) {
                if (--*left == 0) (*end)();
              });
              for (const caf::actor& a : children) {
                self->monitor(a);
                self->send_exit(a, caf::exit_reason::user_shutdown);
              }
            });
        return rp;
      },
      [parts](rp_order_atom, StrategyOrder& order) { parts->pending_strategy = std::move(order); },
  };
}

}  // namespace hydra::actors
