#include "actors/strategy_switch.hpp"

#include <algorithm>
#include <cstdio>

#include "actors/job_actor.hpp"
#include "actors/replica_set.hpp"
#include "runtime/median.hpp"

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
  for (std::size_t r = 0; r < next.replicas; ++r) {
    // A replica beyond the kept models is built by spawn_replica; every replica but 0 then
    // starts from replica 0's state.
    p.replicas.push_back(spawn_replica(self, p, p.partition, static_cast<int>(r),
                                       r < models.size() ? models[r] : nullptr));
    if (r > 0) copy_model_state(*p.model, *p.replicas.back().model);
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

namespace {

// switch_strategy, or a line on stderr when the job cannot run the strategy (nothing changed).
bool try_switch(JobContext& job, const StrategyOrder& order) {
  try {
    switch_strategy(job, order);
    return true;
  } catch (const Error& e) {
    std::fprintf(stderr, "hydra: job %s keeps its strategy: %s\n", job.spec().name.c_str(),
                 e.what());
    return false;
  }
}

std::string per_step(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f ms/step", 1e3 * seconds);
  return buf;
}

}  // namespace

void begin_step(JobContext& job) {
  JobContext::Parts& p = job.parts();
  if (!p.pending_strategy) return;
  StrategyOrder order = std::move(*p.pending_strategy);
  p.pending_strategy.reset();
  StrategyTrial& t = p.trial;
  t = StrategyTrial{};
  if (order.trial_steps <= 0) {
    try_switch(job, order);
    return;
  }
  t.order = std::move(order);
  t.phase = StrategyTrial::Phase::before;
}

void end_step(JobContext& job, double seconds) {
  JobContext::Parts& p = job.parts();
  StrategyTrial& t = p.trial;
  const auto n = static_cast<std::size_t>(std::max(1, t.order.trial_steps));
  if (t.phase == StrategyTrial::Phase::before) {
    t.before.push_back(seconds);
    if (t.before.size() < n) return;
    t.previous = strategy_of(p.setup.spec, job.num_shards());
    t.phase = try_switch(job, t.order) ? StrategyTrial::Phase::after : StrategyTrial::Phase::none;
  } else if (t.phase == StrategyTrial::Phase::after) {
    t.after.push_back(seconds);
    if (t.after.size() < n + 1) return;  // the first step after the switch warms up
    t.phase = StrategyTrial::Phase::none;
    const double before = median(t.before);
    const double after = median(std::vector<double>(t.after.begin() + 1, t.after.end()));
    if (after < before) return;  // faster: kept
    const std::string rejected = strategy_of(p.setup.spec, job.num_shards()).describe();
    StrategyOrder back;
    back.strategy = t.previous;
    back.reason =
        "measured " + per_step(after) + " with it, " + per_step(before) + " before: switched back";
    back.decided = p.setup.trace ? p.setup.trace->now() : 0.0;
    back.predicted_before = t.order.predicted_after;
    back.predicted_after = t.order.predicted_before;
    if (try_switch(job, back) && p.setup.replanner)
      job.self()->send(p.setup.replanner, rp_rejected_atom::value, p.setup.index, rejected,
                       t.previous.replicas, t.previous.sharded_data_parallel,
                       t.previous.micro_batches, t.previous.device_affinity);
  }
}

}  // namespace hydra::actors
