#pragma once
// Which ready shard task an idle device runs next. Policies are pluggable (make_policy); the
// scheduler actor asks its policy whenever a device is idle and tasks are ready.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace hydra {

enum class TaskKind : std::uint8_t { forward, backward, update };
const char* task_kind_name(TaskKind k);

struct ReadyTask {
  std::uint64_t id = 0;  // unique per task
  int job = 0;           // index of the job
  int shard = 0;         // index of the shard within its job
  TaskKind kind = TaskKind::forward;
  std::uint64_t ready_seq = 0;  // order in which tasks became ready (FIFO tie-break)
  int last_device = -1;         // device that last held this shard's state (-1: none)
  int device_affinity = -1;     // >= 0: it may only run on this device (JobSpec::device_affinity)
};

// What a policy may ask about jobs: estimates refined from measured task times.
class TaskEstimates {
 public:
  virtual ~TaskEstimates() = default;
  virtual double task_seconds(int job, int shard, TaskKind kind) const = 0;
  virtual double remaining_seconds(int job) const = 0;  // all work the job has left
};

class SchedulingPolicy {
 public:
  virtual ~SchedulingPolicy() = default;
  virtual std::string name() const = 0;
  // Index into `ready` (non-empty) of the task idle device `device` should run.
  virtual std::size_t pick(const std::vector<ReadyTask>& ready, int device,
                           const TaskEstimates& estimates) = 0;
};

// "lrtf" (Sharded-LRTF: the task of the job with the longest estimated remaining time), "fifo",
// "random" (seeded). Throws hydra::Error naming the allowed policies otherwise.
std::unique_ptr<SchedulingPolicy> make_policy(const std::string& name, std::uint64_t seed = 0);

}  // namespace hydra
