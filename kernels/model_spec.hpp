#pragma once
// A model named by a short text, so another process (a cluster node) can build the same
// architecture without the program's make_model function:
//
//   "mlp IN H1,H2,... CLASSES"          make_mlp(IN, {H1, H2, ...}, CLASSES) (no hidden: "-")
//   "cnn CHANNELS IMAGE CLASSES"        make_cnn(CHANNELS, IMAGE, CLASSES)
//   "gpt VOCAB MAX_LEN DIM HEADS LAYERS" make_gpt(...)
//   "layers L1; L2; ..."                 a sequence of layers, each one of
//        linear IN OUT | conv2d IN OUT KERNEL STRIDE PAD | maxpool2d WINDOW | relu | gelu |
//        flatten | layernorm DIM
//     e.g. "layers conv2d 1 8 3 1 1; relu; maxpool2d 2; flatten; linear 1568 10"
//
// Tokens are separated by spaces; every number must be a positive integer below 2^31 (PAD and
// STRIDE: PAD may be 0). Layers with hidden state outside their parameters (Dropout's mask counter)
// are not expressible, so a model built from a spec computes the same in every process.
#include <string>

#include "kernels/model.hpp"

namespace hydra {

// Builds the model a spec names (parameters uninitialised: call init(seed)). Throws hydra::Error
// naming the spec and what is wrong with it.
Model make_model_from_spec(const std::string& spec);

}  // namespace hydra
