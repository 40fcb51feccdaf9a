#pragma once
// Every layer Hydra provides.
#include "kernels/layers/attention.hpp"
#include "kernels/layers/conv2d.hpp"
#include "kernels/layers/dropout.hpp"
#include "kernels/layers/embedding.hpp"
#include "kernels/layers/flatten.hpp"
#include "kernels/layers/gelu.hpp"
#include "kernels/layers/layernorm.hpp"
#include "kernels/layers/linear.hpp"
#include "kernels/layers/maxpool.hpp"
#include "kernels/layers/relu.hpp"
#include "kernels/layers/residual.hpp"
#include "kernels/layers/transformer_block.hpp"
