#include "runtime/task_estimator.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <utility>

#include "kernels/core/error.hpp"

namespace hydra {

namespace {
template <class... Ts>
std::string cat(const Ts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}

constexpr std::size_t kKinds = 3;
std::size_t kind_index(TaskKind k) {
  const auto i = static_cast<std::size_t>(k);
  // The message is built only on failure: this runs for every estimate a policy asks for.
  if (i >= kKinds) throw Error(cat("TaskEstimator: unknown task kind ", i));
  return i;
}
}  // namespace

TaskEstimator::TaskEstimator(std::vector<std::vector<double>> shard_forward_flops,
                             std::vector<std::int64_t> steps_left, double flops_per_second)
    : TaskEstimator(std::move(shard_forward_flops), std::move(steps_left), flops_per_second,
                    Options{}) {}

TaskEstimator::TaskEstimator(std::vector<std::vector<double>> shard_forward_flops,
                             std::vector<std::int64_t> steps_left, double flops_per_second,
                             Options options)
    : TaskEstimator(flops_per_second, options) {
  check(shard_forward_flops.size() == steps_left.size(),
        cat("TaskEstimator: ", shard_forward_flops.size(), " jobs of shard FLOPs but ",
            steps_left.size(), " step counts"));
  jobs_.resize(shard_forward_flops.size());
  for (std::size_t j = 0; j < jobs_.size(); ++j)
    add(jobs_[j], shard_forward_flops[j], steps_left[j], j);
}

TaskEstimator::TaskEstimator(double flops_per_second)
    : TaskEstimator(flops_per_second, Options{}) {}

TaskEstimator::TaskEstimator(double flops_per_second, Options options)
    : options_(options), flops_per_second_(flops_per_second) {
  check(std::isfinite(flops_per_second) && flops_per_second > 0,
        "TaskEstimator: flops_per_second must be positive and finite");
  check(options.ema_weight > 0 && options.ema_weight <= 1,
        "TaskEstimator: ema_weight must lie in (0, 1]");
  check(std::isfinite(options.update_seconds) && options.update_seconds >= 0,
        "TaskEstimator: update_seconds must be >= 0");
}

void TaskEstimator::add(Job& job, const std::vector<double>& shard_forward_flops,
                        std::int64_t steps_left, std::size_t index) {
  check(steps_left >= 0, cat("TaskEstimator: job ", index, " has ", steps_left, " steps left"));
  Job fresh;
  fresh.steps_left = steps_left;
  for (std::size_t s = 0; s < shard_forward_flops.size(); ++s) {
    const double f = shard_forward_flops[s];
    check(std::isfinite(f) && f >= 0,
          cat("TaskEstimator: job ", index, " shard ", s, " has invalid FLOPs ", f));
    std::vector<Estimate> e(kKinds);
    e[kind_index(TaskKind::update)].seconds = options_.update_seconds;
    fresh.tasks.push_back(std::move(e));
    fresh.done.emplace_back(kKinds, false);
    fresh.flops.push_back(f);
  }
  job = std::move(fresh);
}

void TaskEstimator::add_job(int job, std::vector<double> shard_forward_flops,
                            std::int64_t steps_left) {
  if (job < 0) throw Error(cat("TaskEstimator: cannot add job ", job, " (negative index)"));
  const auto i = static_cast<std::size_t>(job);
  if (i < jobs_.size() && jobs_[i].added)
    throw Error(cat("TaskEstimator: job ", job, " was already added"));
  Job j;
  add(j, shard_forward_flops, steps_left, i);  // validates before anything changes
  if (i >= jobs_.size()) {
    const std::size_t first_new = jobs_.size();
    jobs_.resize(i + 1);
    for (std::size_t k = first_new; k < i; ++k)
      jobs_[k].added = false;
  }
  jobs_[i] = std::move(j);
}

bool TaskEstimator::has_job(int job) const {
  return job >= 0 && static_cast<std::size_t>(job) < jobs_.size() &&
         jobs_[static_cast<std::size_t>(job)].added;
}

double TaskEstimator::flops_per_second() const {
  if (options_.learn_speed && measured_flops_ > 0 && measured_seconds_ > 0)
    return measured_flops_ / measured_seconds_;
  return flops_per_second_;
}

double TaskEstimator::forward_guess(const Job& j, std::size_t shard) const {
  return j.flops[shard] / flops_per_second();
}

TaskEstimator::Job& TaskEstimator::job_at(int job) {
  return const_cast<Job&>(std::as_const(*this).job_at(job));
}

const TaskEstimator::Job& TaskEstimator::job_at(int job) const {
  if (!has_job(job))
    throw Error(cat("TaskEstimator: job ", job, " does not exist (", jobs_.size(), " jobs)"));
  return jobs_[static_cast<std::size_t>(job)];
}

void TaskEstimator::check_shard(int job, int shard) const {
  const Job& j = job_at(job);
  if (shard < 0 || static_cast<std::size_t>(shard) >= j.tasks.size())
    throw Error(
        cat("TaskEstimator: job ", job, " has no shard ", shard, " (", j.tasks.size(), " shards)"));
}

std::size_t TaskEstimator::shards(int job) const {
  return job_at(job).tasks.size();
}

double TaskEstimator::task_seconds(int job, int shard, TaskKind kind) const {
  check_shard(job, shard);
  return estimate(job_at(job), static_cast<std::size_t>(shard), kind_index(kind));
}

// task_seconds without the checks (shard and kind valid): the policies ask for these for every
// ready task at every dispatch.
double TaskEstimator::estimate(const Job& j, std::size_t shard, std::size_t kind) const {
  const auto& t = j.tasks[shard];
  const Estimate& e = t[kind];
  if (e.measured || kind == kind_index(TaskKind::update)) return e.seconds;
  const Estimate& f = t[kind_index(TaskKind::forward)];
  const double forward = f.measured ? f.seconds : forward_guess(j, shard);
  return kind == kind_index(TaskKind::backward) ? 2.0 * forward : forward;
}

double TaskEstimator::step_seconds(int job) const {
  return step_seconds(job_at(job));
}

double TaskEstimator::step_seconds(const Job& j) const {
  double s = 0;
  for (std::size_t sh = 0; sh < j.tasks.size(); ++sh)
    for (std::size_t k = 0; k < kKinds; ++k)
      s += estimate(j, sh, k);
  return s;
}

double TaskEstimator::remaining_seconds(int job) const {
  const Job& j = job_at(job);
  if (j.finished || j.steps_left == 0) return 0;
  double progress = 0;
  for (std::size_t sh = 0; sh < j.tasks.size(); ++sh)
    for (std::size_t k = 0; k < kKinds; ++k)
      if (j.done[sh][k]) progress += estimate(j, sh, k);
  return std::max(0.0, static_cast<double>(j.steps_left) * step_seconds(j) - progress);
}

void TaskEstimator::record(int job, int shard, TaskKind kind, double seconds) {
  check_shard(job, shard);
  if (!(std::isfinite(seconds) && seconds >= 0))
    throw Error(cat("TaskEstimator: measured duration of job ", job, " shard ", shard, " ",
                    task_kind_name(kind), " must be >= 0 and finite, got ", seconds));
  Job& j = job_at(job);
  const std::size_t k = kind_index(kind);
  Estimate& e = j.tasks[static_cast<std::size_t>(shard)][k];
  e.seconds =
      e.measured ? options_.ema_weight * seconds + (1 - options_.ema_weight) * e.seconds : seconds;
  e.measured = true;
  j.done[static_cast<std::size_t>(shard)][k] = true;
  const double flops = j.flops[static_cast<std::size_t>(shard)];
  if (flops > 0 && kind != TaskKind::update) {
    measured_flops_ += kind == TaskKind::backward ? 2.0 * flops : flops;
    measured_seconds_ += seconds;
  }
}

void TaskEstimator::step_done(int job) {
  Job& j = job_at(job);
  if (j.steps_left > 0) --j.steps_left;
  for (auto& d : j.done)
    std::fill(d.begin(), d.end(), false);
}

void TaskEstimator::set_steps_left(int job, std::int64_t n) {
  check(n >= 0, cat("TaskEstimator: steps left must be >= 0, got ", n));
  Job& j = job_at(job);
  j.steps_left = n;
  j.finished = false;
}

void TaskEstimator::job_finished(int job) {
  Job& j = job_at(job);
  j.finished = true;
  j.steps_left = 0;
  for (auto& d : j.done)
    std::fill(d.begin(), d.end(), false);
}

std::int64_t TaskEstimator::steps_left(int job) const {
  return job_at(job).steps_left;
}

bool TaskEstimator::measured(int job, int shard, TaskKind kind) const {
  check_shard(job, shard);
  return job_at(job).tasks[static_cast<std::size_t>(shard)][kind_index(kind)].measured;
}

}  // namespace hydra
