#include "actors/data_cache.hpp"

namespace hydra::actors {

namespace {

DataSplits load(const JobSpec& spec) {
  if (!spec.data) throw Error("job " + spec.name + " has no data loader");
  try {
    DataSplits d = spec.data();
    check(d.train.size() > 0, "the training set is empty");
    return d;
  } catch (const std::exception& e) {
    throw Error("loading data for job " + spec.name + " failed: " + e.what());
  }
}

}  // namespace

DataSplits DataCache::get(const JobSpec& spec) {
  if (spec.data_key.empty()) return load(spec);
  std::promise<DataSplits> promise;
  std::shared_future<DataSplits> fut;
  bool mine = false;
  {
    std::lock_guard lock(mutex_);
    auto it = loaded_.find(spec.data_key);
    if (it == loaded_.end()) {
      fut = promise.get_future().share();
      loaded_.emplace(spec.data_key, fut);
      mine = true;
    } else {
      fut = it->second;
    }
  }
  if (mine) {
    try {
      promise.set_value(load(spec));
    } catch (...) {
      promise.set_exception(std::current_exception());
    }
  }
  return fut.get();
}

}  // namespace hydra::actors
