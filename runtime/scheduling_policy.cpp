#include "runtime/scheduling_policy.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "kernels/core/error.hpp"
#include "kernels/random.hpp"

namespace hydra {

const char* task_kind_name(TaskKind k) {
  switch (k) {
    case TaskKind::forward:
      return "forward";
    case TaskKind::backward:
      return "backward";
    case TaskKind::update:
      return "update";
  }
  return "unknown";
}

namespace {

void check_ready(const std::string& policy, const std::vector<ReadyTask>& ready) {
  if (ready.empty())
    throw Error(policy + std::string(" policy: pick() needs at least one ready task"));
}

// Sharded-LRTF: the task of the job with the longest estimated remaining time (ties: the task
// that became ready first). A task whose shard state last lived on the asking device is
// preferred when its job's remaining time is within 1% of the longest, to save a transfer.
class LrtfPolicy : public SchedulingPolicy {
 public:
  std::string name() const override { return "lrtf"; }
  std::size_t pick(const std::vector<ReadyTask>& ready, int device,
                   const TaskEstimates& estimates) override {
    check_ready(name(), ready);
    std::vector<double> remaining(ready.size());
    for (std::size_t i = 0; i < ready.size(); ++i)
      remaining[i] = estimates.remaining_seconds(ready[i].job);
    // Longer remaining first, then earlier ready_seq.
    const auto better = [&](std::size_t a, std::size_t b) {
      if (remaining[a] != remaining[b]) return remaining[a] > remaining[b];
      return ready[a].ready_seq < ready[b].ready_seq;
    };
    std::size_t best = 0;
    for (std::size_t i = 1; i < ready.size(); ++i)
      if (better(i, best)) best = i;
    const double tolerance = 0.01 * std::abs(remaining[best]);
    std::size_t local = ready.size();
    for (std::size_t i = 0; i < ready.size(); ++i)
      if (ready[i].last_device == device && device >= 0 &&
          remaining[best] - remaining[i] <= tolerance &&
          (local == ready.size() || better(i, local)))
        local = i;
    return local < ready.size() ? local : best;
  }
};

// The task that became ready first.
class FifoPolicy : public SchedulingPolicy {
 public:
  std::string name() const override { return "fifo"; }
  std::size_t pick(const std::vector<ReadyTask>& ready, int, const TaskEstimates&) override {
    check_ready(name(), ready);
    std::size_t best = 0;
    for (std::size_t i = 1; i < ready.size(); ++i)
      if (ready[i].ready_seq < ready[best].ready_seq) best = i;
    return best;
  }
};

// A uniformly random ready task from a seeded counter-based generator: the same seed and the
// same sequence of ready-list sizes give the same picks on every platform.
class RandomPolicy : public SchedulingPolicy {
 public:
  explicit RandomPolicy(std::uint64_t seed) : seed_(seed) {}
  std::string name() const override { return "random"; }
  std::size_t pick(const std::vector<ReadyTask>& ready, int, const TaskEstimates&) override {
    check_ready(name(), ready);
    const std::uint64_t r = splitmix64(seed_ ^ splitmix64(calls_++));
    const unsigned __int128 wide = static_cast<unsigned __int128>(r) * ready.size();
    return static_cast<std::size_t>(wide >> 64);  // in [0, size), bias below 2^-64 * size
  }

 private:
  std::uint64_t seed_, calls_ = 0;
};

}  // namespace

std::unique_ptr<SchedulingPolicy> make_policy(const std::string& name, std::uint64_t seed) {
  std::string key = name;
  std::transform(key.begin(), key.end(), key.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (key == "lrtf") return std::make_unique<LrtfPolicy>();
  if (key == "fifo") return std::make_unique<FifoPolicy>();
  if (key == "random") return std::make_unique<RandomPolicy>(seed);
  std::string message = "unknown scheduling policy '";
  message += name;
  message += "' (allowed: lrtf, fifo, random)";
  throw Error(message);
}

}  // namespace hydra
