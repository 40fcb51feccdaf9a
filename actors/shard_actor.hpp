#pragma once
// One actor per model shard. It owns the shard's state (ShardState: its layers' parameters,
// gradients and optimizer state in home memory, and the stash between forward and backward),
// admits one task at a time for it (a shard's tasks are sequential by nature), submits each task
// to the scheduler, which runs it on some device, and answers with the finished task.
//
//   (run_atom, TaskPtr) -> TaskPtr   `state` is filled in here; the answer's `error` says whether
//                                    it ran; an error response means it was refused
#include <caf/all.hpp>

#include <memory>

#include "actors/shard_state.hpp"

namespace hydra::actors {

caf::behavior shard_actor(caf::event_based_actor* self, std::shared_ptr<ShardState> state,
                          caf::actor scheduler);

}  // namespace hydra::actors
