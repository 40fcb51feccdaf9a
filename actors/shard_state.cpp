#include "actors/shard_state.hpp"

#include <algorithm>

#include "kernels/core/cuda_api.hpp"

namespace hydra::actors {

std::vector<Parameter*> ShardState::parameters() const {
  std::vector<Parameter*> out;
  for (std::size_t i = begin; i < end; ++i)
    for (Parameter& p : model->layer(i).parameters())
      out.push_back(&p);
  return out;
}

std::size_t ShardState::parameter_bytes() const {
  std::size_t n = 0;
  for (std::size_t i = begin; i < end; ++i)
    n += model->layer(i).parameter_bytes();
  return n;
}

StashSlot& ShardState::stash_slot(std::int64_t micro_batch) {
  const auto i = static_cast<std::size_t>(std::max<std::int64_t>(0, micro_batch));
  if (i >= stash_slots.size()) stash_slots.resize(i + 1);
  return stash_slots[i];
}

Device home_device() {
  return cuda::available() ? Device::pinned() : Device::host();
}

}  // namespace hydra::actors
