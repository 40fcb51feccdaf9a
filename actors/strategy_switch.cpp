#include "actors/strategy_switch.hpp"

#include "actors/job_actor.hpp"
#include "actors/replica_set.hpp"

namespace hydra::actors {

JobStrategy strategy_of(const JobSpec& spec, int shards) {
  JobStrategy s;
  s.shards = shards;
  s.replicas = static_cast<int>(std::max<std::size_t>(1, spec.replicas));
  s.sharded_data_parallel = spec.sharded_data_parallel && s.replicas > 1;
  s.micro_batches = static_cast<int>(std::max<std::int64_t>(1, spec.micro_batches));
  s.device_affinity = spec.device_affinity;
  return s;
}

void switch_strategy(JobContext& job, const StrategyOrder& order) {
  JobContext::Parts& p = job.parts();
  JobSpec& spec = p.setup.spec;
  const int shards = job.num_shards();
  const JobStrategy from = strategy_of(spec, shards);
  JobStrategy to = order.strategy;
  to.shards = shards;
  to.option = from.option;
  // The new fields must be ones the job can run (checked before anything changes).
  JobSpec next = spec;
  next.replicas = static_cast<std::size_t>(std::max(0, to.replicas));
  next.sharded_data_parallel = to.sharded_data_parallel;
  next.micro_batches = to.micro_batches;
  next.device_affinity = to.device_affinity;
  check_strategy(next, p.setup.num_devices);
  if (from.describe() == to.describe()) return;

  caf::event_based_actor* self = job.self();
  const double start = p.setup.trace ? p.setup.trace->now() : 0.0;
  if (p.replicas.size() > 1 && spec.sharded_data_parallel) gather_slices(p);
  std::vector<std::shared_ptr<Model>> models;
  for (const Replica& r : p.replicas) {
    models.push_back(r.model);
    for (const caf::actor& a : r.shards)
      self->send_exit(a, caf::exit_reason::user_shutdown);
  }
  p.replicas.clear();
  // Only the strategy fields: `spec.program` may be the very coroutine running this switch.
  spec.replicas = next.replicas;
  spec.sharded_data_parallel = next.sharded_data_parallel;
  spec.micro_batches = next.micro_batches;
  spec.device_affinity = next.device_affinity;
  const Device home = home_device();
  for (std::size_t r = 0; r < next.replicas; ++r) {
    std::shared_ptr<Model> m;
    if (r < models.size()) {
      m = models[r];
    } else {
      m = std::make_shared<Model>(build_job_model(spec));
      check(m->parameters().size() == p.model->parameters().size(),
            "job " + spec.name + ": make_model built a different model for replica " +
                std::to_string(r));
      if (home != Device::host()) m->to(home);
    }
    if (r > 0) copy_model_state(*p.model, *m);
    p.replicas.push_back(spawn_replica(self, p, p.partition, static_cast<int>(r), m));
  }
  p.states = p.replicas[0].states;
  p.shards = p.replicas[0].shards;
  if (p.replicas.size() > 1 && spec.sharded_data_parallel) scatter_slices(p);

  const double end = p.setup.trace ? p.setup.trace->now() : 0.0;
  if (p.setup.trace) p.setup.trace->add({kHostLane, spec.name, -1, "strategy", start, end, 0});
  if (p.setup.strategy_log) {
    StrategyChange c;
    c.job = spec.name;
    c.from = from.describe();
    c.to = to.describe();
    c.reason = order.reason;
    c.decided = order.decided;
    c.applied = start;
    c.step = job.step();
    c.predicted_before = order.predicted_before;
    c.predicted_after = order.predicted_after;
    p.setup.strategy_log->add(std::move(c));
  }
}

}  // namespace hydra::actors
