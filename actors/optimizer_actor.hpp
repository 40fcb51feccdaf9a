#pragma once
// One actor per job's optimizer: the owner of the optimizer configuration (the Optimizer object,
// whose state lives in the parameters themselves, and the clip norm), of the step count, and of
// the gradient-norm reduction across shards when the job clips gradients.
//
//   (config_atom)                      -> OptimizerConfig  handed to the job's tasks
//   (clip_atom, vector<double> squares) -> double          clip coefficient (1: no clipping) from
//                                                           the shards' sums of squared grads;
//                                                           an error when the norm is NaN/inf
//   (stepped_atom)                     -> int64            counts a finished step, returns steps
//   (stepped_atom, int64 steps)        -> (nothing)        sets the count (a resumed job)
#include <caf/all.hpp>

#include "actors/messages.hpp"

namespace hydra::actors {

caf::behavior optimizer_actor(caf::event_based_actor* self, OptimizerConfig config);

}  // namespace hydra::actors
