#pragma once
// A shard task as bytes: what a node needs to run it (the coordinator keeps the shard's state in
// home memory and sends it per task), and what comes back. The coordinator applies a result to
// home memory only after decoding and checking all of it, so a task lost with its node leaves the
// shard's state as it was and can be run again elsewhere.
//
// Request:  model spec, layer range, shard index and count, kind, training, step, fuse_update,
//           grad_scale, accumulate_grads, loss_weight, optimizer (SGD or AdamW with its
//           hyperparameters), per parameter its value, step count, gradient (update tasks and
//           accumulating backwards) and optimizer state (fused backward and update), the stash
//           and d(logits) of the task's micro-batch (backward), input and labels.
// Result:   error, loss, correct, count, grad_squares, output, the node's load/compute/store
//           seconds, and the changed state: values + state + steps (fused backward, update),
//           gradients (backward without fused update), stash + d(logits) (training forward).
#include <map>
#include <memory>
#include <string>

#include "actors/messages.hpp"
#include "kernels/core/stream.hpp"

namespace hydra::cluster {

inline constexpr std::uint32_t protocol_version = 1;

// Encodes `task` (its shard's home state is read under ShardState::resident). Throws
// hydra::Error when the task cannot run remotely (no model spec, an optimizer other than SGD or
// AdamW).
std::string encode_request(const actors::ShardTask& task);

// Node side: the models built from specs, one cache per device (parameters are swapped in).
struct NodeModels {
  std::map<std::string, std::shared_ptr<Model>> by_spec;
};

// Node side: decodes a request (throws WireError when it is malformed), runs it on `device` with
// the same load / compute / store code as a local device, and encodes the result. Errors of the
// task itself (out of memory, NaN loss) travel in the result.
std::string run_request(const std::string& request, Device device, Stream& compute, Stream& copy,
                        NodeModels& models);

// Coordinator side: checks a result against the task's shard and applies it to home memory and
// to `task` (output, loss, counts, error; the node's seconds in `node_*`). Throws WireError when
// the result is malformed or does not fit the shard, leaving home memory untouched.
struct NodeSeconds {
  double load = 0, compute = 0, store = 0;
};
NodeSeconds apply_result(const std::string& result, actors::ShardTask& task);

}  // namespace hydra::cluster

namespace hydra::cluster {
// Node side: a result that only carries an error (a request that could not be decoded).
std::string encode_error_result(const std::string& error);
}  // namespace hydra::cluster
