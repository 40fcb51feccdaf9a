#pragma once
// Datasets loaded inside the runtime, shared between jobs with the same data key: the first job
// to ask loads them (on its own actor), later ones wait for and share the result. A loader that
// throws fails the jobs that use it, with the loader's message.
#include <future>
#include <map>
#include <mutex>
#include <string>

#include "actors/job_spec.hpp"

namespace hydra::actors {

class DataCache {
 public:
  DataSplits get(const JobSpec& spec);

 private:
  std::mutex mutex_;
  std::map<std::string, std::shared_future<DataSplits>> loaded_;
};

}  // namespace hydra::actors
