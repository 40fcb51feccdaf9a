// Every layer, the loss, the optimizers and a small GPT on CPU f32 and on cuda:0: outputs,
// input grads, parameter grads and updated parameters agree within TF32-level tolerances.
#include <doctest/doctest.h>

#include <cstdio>

#include "kernels/core/cuda_api.hpp"
#include "kernels/layers/all.hpp"
#include "kernels/loss.hpp"
#include "kernels/model_zoo.hpp"
#include "kernels/optim/adamw.hpp"
#include "kernels/optim/grad_clip.hpp"
#include "kernels/optim/sgd.hpp"
#include "layer_test_util.hpp"

using namespace hydra;
using namespace hydra::test;

namespace {

constexpr double kTol = 1e-2;  // relative to the largest magnitude (TF32 GEMMs on the GPU)

bool skip_without_gpu() {
  if (cuda::available()) return false;
  std::printf("HYDRA-SKIP: no CUDA GPU\n");
  return true;
}

struct Result {
  std::vector<double> y, dx;
  std::vector<std::vector<double>> grads;
};

// Forward (training) and backward of `layer` on `device` in f32 with dy = r.
Result run(Layer& layer, Device device, const Tensor& x, const Tensor& dy) {
  layer.to(device, DType::f32);
  ExecContext ctx = ExecContext::on(device);
  layer.zero_grad(ctx);
  Stash stash;
  Result r;
  const Tensor y = layer.forward(ctx, x.to(device), stash, true);
  CHECK(y.device() == device);
  CHECK(stash.bytes() == layer.stash_bytes(x.shape(), DType::f32));
  const Tensor dx = layer.backward(ctx, dy.to(device), stash);
  ctx.synchronize();
  r.y = y.to_doubles();
  if (dx.defined()) r.dx = dx.to_doubles();
  for (const Parameter& p : layer.parameters())
    r.grads.push_back(p.grad.to_doubles());
  return r;
}

// Builds the layer twice with the same init, runs it on the CPU and on cuda:0, compares.
template <class Make>
void compare_layer(Make make, const Tensor& x) {
  LayerPtr cpu = make(), gpu = make();
  cpu->reset_parameters(17);
  gpu->reset_parameters(17);
  const Shape out = cpu->output_shape(x.shape());
  const Tensor dy = random_tensor(out, 99, DType::f32);
  const Result a = run(*cpu, Device::host(), x, dy), b = run(*gpu, Device::cuda(0), x, dy);
  const std::string name = cpu->name();
  check_close_scaled(b.y, a.y, kTol, name + " y");
  check_close_scaled(b.dx, a.dx, kTol, name + " dx");
  REQUIRE(a.grads.size() == b.grads.size());
  for (std::size_t i = 0; i < a.grads.size(); ++i)
    check_close_scaled(b.grads[i], a.grads[i], kTol, name + " grad " + std::to_string(i));
}

template <class L, class... Args>
auto maker(Args... args) {
  return [=] { return LayerPtr(std::make_unique<L>(args...)); };
}

Tensor f32(const Shape& s, std::uint64_t seed) {
  return random_tensor(s, seed, DType::f32);
}

}  // namespace

TEST_CASE("CUDA dense and elementwise layers match the CPU") {
  if (skip_without_gpu()) return;
  compare_layer(maker<Linear>(32, 24), f32({4, 5, 32}, 1));
  compare_layer(maker<Linear>(16, 8, false), f32({7, 16}, 2));
  compare_layer(maker<ReLU>(), random_nonzero({6, 33}, 3, DType::f32));
  compare_layer(maker<GELU>(), f32({6, 33}, 4));
  compare_layer(maker<LayerNorm>(48), f32({3, 5, 48}, 5));
  compare_layer(maker<Dropout>(0.25, 3), f32({8, 40}, 6));  // same counter-based mask
  compare_layer(maker<Flatten>(), f32({2, 3, 4, 5}, 7));
}

TEST_CASE("CUDA embeddings and attention match the CPU") {
  if (skip_without_gpu()) return;
  compare_layer(maker<TokenEmbedding>(50, 16), random_ids({3, 7}, 50, 8));
  compare_layer(maker<PositionEmbedding>(12, 16), f32({3, 7, 16}, 9));
  compare_layer(maker<CausalSelfAttention>(32, 4), f32({2, 9, 32}, 10));
  for (std::size_t i = 0; i < 2; ++i)
    compare_layer([i] { return std::move(make_transformer_block(32, 4)[i]); },
                  f32({2, 9, 32}, 11 + i));
}

TEST_CASE("CUDA convolution and pooling match the CPU") {
  if (skip_without_gpu()) return;
  compare_layer(maker<Conv2d>(3, 8, 3, 1, 1), f32({2, 3, 10, 9}, 12));
  compare_layer(maker<Conv2d>(4, 5, 3, 2, 0, false), f32({2, 4, 9, 9}, 13));
  compare_layer(maker<MaxPool2d>(2), random_distinct({2, 3, 8, 6}, 14, DType::f32));
  compare_layer(maker<MaxPool2d>(3, 2), random_distinct({1, 4, 9, 7}, 15, DType::f32));
}

TEST_CASE("CUDA loss and optimizers match the CPU") {
  if (skip_without_gpu()) return;
  const Tensor logits = f32({6, 10}, 16), labels = random_ids({6}, 10, 17);
  ExecContext cpu = ExecContext::on(Device::host()), gpu = ExecContext::on(Device::cuda(0));
  const LossResult a = softmax_cross_entropy(cpu, logits, labels);
  const LossResult b =
      softmax_cross_entropy(gpu, logits.to(Device::cuda(0)), labels.to(Device::cuda(0)));
  CHECK(b.loss == doctest::Approx(a.loss).epsilon(1e-5));
  CHECK(b.correct == a.correct);
  check_close_scaled(b.dlogits.to_doubles(), a.dlogits.to_doubles(), 1e-5, "dlogits");
  CHECK_THROWS_WITH_AS(
      softmax_cross_entropy(gpu, logits.to(Device::cuda(0)),
                            Tensor::from_ints({0, 1, 2, 3, 4, 10}, {6}).to(Device::cuda(0))),
      doctest::Contains("label 10"), Error);

  SGD sgd(0.1, 0.9, 0.01, true);
  AdamW adam(0.01, 0.9, 0.99, 1e-8, 0.1);
  for (Optimizer* opt : std::initializer_list<Optimizer*>{&sgd, &adam}) {
    Linear lc(8, 4), lg(8, 4);
    lc.reset_parameters(1);
    lg.reset_parameters(1);
    lg.to(Device::cuda(0));
    for (int step = 0; step < 3; ++step) {
      for (auto [layer, ctx] : {std::pair<Linear*, ExecContext*>{&lc, &cpu}, {&lg, &gpu}})
        for (std::size_t i = 0; i < 2; ++i) {
          Parameter& p = layer->parameters()[i];
          copy(p.grad, random_tensor(p.grad.shape(), 50 + step * 2 + i, DType::f32));
          if (i == 0) clip_grad_norm({&p}, 1.0, *ctx);
          opt->update(p, *ctx);
        }
    }
    gpu.synchronize();
    for (std::size_t i = 0; i < 2; ++i) {
      CHECK(lg.parameters()[i].state[0].device() == Device::cuda(0));
      check_close_scaled(lg.parameters()[i].value.to_doubles(),
                         lc.parameters()[i].value.to_doubles(), 1e-5, opt->name());
    }
  }
}

TEST_CASE("CUDA GPT loss and grads match the CPU") {
  if (skip_without_gpu()) return;
  const Tensor ids = random_ids({2, 16}, 40, 1), labels = random_ids({2, 16}, 40, 2);
  std::vector<std::vector<double>> grads[2];
  double losses[2];
  for (int d = 0; d < 2; ++d) {
    const Device dev = d ? Device::cuda(0) : Device::host();
    Model gpt = make_gpt(40, 16, 32, 4, 2);
    gpt.init(7);
    gpt.to(dev);
    ExecContext ctx = ExecContext::on(dev);
    gpt.zero_grad(ctx);
    std::vector<Stash> st;
    LossResult r =
        softmax_cross_entropy(ctx, gpt.forward(ctx, ids.to(dev), st, true), labels.to(dev));
    gpt.backward(ctx, r.dlogits, st);
    ctx.synchronize();
    losses[d] = r.loss;
    for (Parameter* p : gpt.parameters())
      grads[d].push_back(p->grad.to_doubles());
  }
  CHECK(losses[1] == doctest::Approx(losses[0]).epsilon(1e-3));
  for (std::size_t i = 0; i < grads[0].size(); ++i)
    check_close_scaled(grads[1][i], grads[0][i], kTol, "gpt grad " + std::to_string(i));
}
