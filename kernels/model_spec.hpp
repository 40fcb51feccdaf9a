#pragma once
// A model named by a short text, so another process (a cluster node) can build the same
// architecture without the program's make_model function:
//
//   "mlp IN H1,H2,... CLASSES"          make_mlp(IN, {H1, H2, ...}, CLASSES) (no hidden: "-")
//   "cnn CHANNELS IMAGE CLASSES"        make_cnn(CHANNELS, IMAGE, CLASSES)
//   "gpt VOCAB MAX_LEN DIM HEADS LAYERS" make_gpt(...)
//
// Tokens are separated by single or repeated spaces; every number must be a positive integer
// below 2^31. Layers with hidden state outside their parameters (Dropout's mask counter) are not
// expressible, so a model built from a spec computes the same in every process.
#include <string>

#include "kernels/model.hpp"

namespace hydra {

// Builds the model a spec names (parameters uninitialised: call init(seed)). Throws hydra::Error
// naming the spec and what is wrong with it.
Model make_model_from_spec(const std::string& spec);

}  // namespace hydra
