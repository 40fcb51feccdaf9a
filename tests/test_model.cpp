// Model: ranges, initialisation, shapes, device moves and an end-to-end gradient check.
#include <doctest/doctest.h>

#include "kernels/layers/all.hpp"
#include "kernels/loss.hpp"
#include "kernels/model_zoo.hpp"
#include "layer_test_util.hpp"

using namespace hydra;
using namespace hydra::test;

namespace {

std::vector<double> all_values(Model& m, bool grads) {
  std::vector<double> out;
  for (Parameter* p : m.parameters()) {
    const auto v = (grads ? p->grad : p->value).to_doubles();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

// Loss and grads of `m` on (x, labels), running the layers in the given [begin, end) pieces.
double run_pieces(Model& m, const Tensor& x, const Tensor& labels,
                  const std::vector<std::size_t>& cuts) {
  ExecContext ctx = ExecContext::on(Device::host());
  m.zero_grad(ctx);
  std::vector<std::vector<Stash>> stashes(cuts.size() - 1);
  Tensor h = x;
  for (std::size_t i = 0; i + 1 < cuts.size(); ++i)
    h = m.forward(ctx, h, stashes[i], true, cuts[i], cuts[i + 1]);
  LossResult r = softmax_cross_entropy(ctx, h, labels);
  Tensor g = r.dlogits;
  for (std::size_t i = cuts.size() - 1; i-- > 0;) {
    g = m.backward(ctx, g, stashes[i], cuts[i], cuts[i + 1]);
    for (const Stash& s : stashes[i])
      CHECK(s.bytes() == 0);  // freed after backward
  }
  return r.loss;
}

}  // namespace

TEST_CASE("GPT forward and backward over sub-ranges equal the whole model") {
  Model gpt = make_gpt(11, 8, 8, 2, 2);
  CHECK(gpt.size() == 2 + 2 * 2 + 2);
  gpt.init(42);
  gpt.to(Device::host(), DType::f64);
  const Tensor ids = random_ids({2, 6}, 11, 1), labels = random_ids({2, 6}, 11, 2);
  CHECK(gpt.output_shape({2, 6}) == Shape{2, 6, 11});
  const double whole = run_pieces(gpt, ids, labels, {0, gpt.size()});
  const auto grads = all_values(gpt, true);
  const double split = run_pieces(gpt, ids, labels, {0, 1, 3, 6, gpt.size()});
  CHECK(split == doctest::Approx(whole).epsilon(1e-14));
  check_close(all_values(gpt, true), grads, 1e-13, "grads of split run");
  CHECK(whole == doctest::Approx(std::log(11.0)).epsilon(0.2));  // small init: near uniform
}

TEST_CASE("MLP with dropout over sub-ranges equals the whole model after re-init") {
  Model mlp = make_mlp(12, {16, 8}, 3, 0.3);
  mlp.to(Device::host(), DType::f64);
  const Tensor x = random_tensor({5, 3, 4}, 3), labels = random_ids({5}, 3, 4);
  mlp.init(9);
  const double whole = run_pieces(mlp, x, labels, {0, mlp.size()});
  const auto grads = all_values(mlp, true);
  mlp.init(9);  // restarts the dropout masks
  const double split = run_pieces(mlp, x, labels, {0, 2, 5, mlp.size()});
  CHECK(split == doctest::Approx(whole).epsilon(1e-14));
  check_close(all_values(mlp, true), grads, 1e-13, "mlp grads");
}

TEST_CASE("tiny GPT gradients match finite differences end to end") {
  Model gpt = make_gpt(7, 5, 8, 2, 1);
  gpt.init(3);
  gpt.to(Device::host(), DType::f64);
  const Tensor ids = random_ids({2, 4}, 7, 5), labels = random_ids({2, 4}, 7, 6);
  run_pieces(gpt, ids, labels, {0, gpt.size()});
  ExecContext ctx = ExecContext::on(Device::host());
  const auto loss = [&] {
    std::vector<Stash> st;
    return softmax_cross_entropy(ctx, gpt.forward(ctx, ids, st, false), labels, false).loss;
  };
  for (Parameter* p : gpt.parameters())
    check_close(p->grad.to_doubles(), numeric_grad(p->value, loss), 1e-6, "d" + p->name);
}

TEST_CASE("init is deterministic per seed") {
  Model a = make_gpt(9, 4, 8, 2, 1), b = make_gpt(9, 4, 8, 2, 1);
  a.init(5);
  b.init(5);
  CHECK(all_values(a, false) == all_values(b, false));
  b.init(6);
  const auto va = all_values(a, false), vb = all_values(b, false);
  std::size_t same = 0;
  for (std::size_t i = 0; i < va.size(); ++i)
    same += va[i] == vb[i];
  CHECK(same < va.size() / 5);  // LayerNorm gammas/betas and nothing else
  // Different layers of one model get different values.
  Model c = make_mlp(4, {4}, 4);
  c.init(1);
  CHECK(c.layer(1).parameters()[0].value.to_doubles() !=
        c.layer(3).parameters()[0].value.to_doubles());
  // PyTorch-like bounds: Linear U(-1/sqrt(in), 1/sqrt(in)); embeddings N(0, 0.02).
  for (double w : c.layer(1).parameters()[0].value.to_doubles())
    CHECK(std::abs(w) <= 0.5);
  const auto emb = a.layer(0).parameters()[0].value.to_doubles();
  double sq = 0;
  for (double e : emb)
    sq += e * e;
  CHECK(std::sqrt(sq / static_cast<double>(emb.size())) == doctest::Approx(0.02).epsilon(0.3));
}

TEST_CASE("output_shape errors name the layer and the shapes") {
  Model mlp = make_mlp(784, {32}, 10);
  CHECK(mlp.output_shape({4, 1, 28, 28}) == Shape{4, 10});
  CHECK_THROWS_WITH_AS(mlp.output_shape({4, 100}), doctest::Contains("Linear(784->32)"), Error);
  CHECK_THROWS_WITH_AS(mlp.output_shape({4, 100}), doctest::Contains("[4, 100]"), Error);
  Model cnn = make_cnn();
  CHECK(cnn.output_shape({3, 1, 28, 28}) == Shape{3, 10});
  CHECK_THROWS_WITH_AS(cnn.output_shape({3, 2, 28, 28}), doctest::Contains("Conv2d(1->6"), Error);
  CHECK_THROWS_WITH_AS(CausalSelfAttention(8, 2).output_shape({2, 8}),
                       doctest::Contains("CausalSelfAttention"), Error);
  CHECK_THROWS_AS(CausalSelfAttention(8, 3), Error);
  CHECK_THROWS_WITH_AS(MaxPool2d(3).output_shape({1, 1, 2, 2}), doctest::Contains("MaxPool2d"),
                       Error);
  ExecContext ctx = ExecContext::on(Device::host());
  std::vector<Stash> st;
  CHECK_THROWS_WITH_AS(mlp.forward(ctx, Tensor::zeros({4, 100}), st, true),
                       doctest::Contains("Linear(784->32)"), Error);
  CHECK_THROWS_WITH_AS(mlp.forward(ctx, Tensor::zeros({4, 784}, DType::f64), st, true),
                       doctest::Contains("cast with Layer::to"), Error);
}

TEST_CASE("CNN trains one step and model bookkeeping adds up") {
  Model cnn = make_cnn();
  cnn.init(1);
  const Shape in{2, 1, 28, 28};
  std::int64_t count = 0;
  double flops = 0;
  Shape s = in;
  for (std::size_t i = 0; i < cnn.size(); ++i) {
    count += cnn.layer(i).parameter_count();
    flops += cnn.layer(i).forward_flops(s);
    s = cnn.layer(i).output_shape(s);
  }
  CHECK(cnn.parameter_count() == count);
  CHECK(cnn.parameter_count() == 156 + 2416 + 4010);
  CHECK(cnn.forward_flops(in) == flops);
  CHECK(flops > 2 * 2 * 28 * 28 * 6 * 25);
  const std::string summary = cnn.summary(in);
  CHECK(summary.find("Conv2d(1->6") != std::string::npos);
  CHECK(summary.find("[2, 10]") != std::string::npos);
  // Stash sizes predicted per layer match the stashes.
  ExecContext ctx = ExecContext::on(Device::host());
  std::vector<Stash> st;
  const Tensor x = random_tensor(in, 2, DType::f32);
  Tensor y = cnn.forward(ctx, x, st, true);
  s = in;
  for (std::size_t i = 0; i < cnn.size(); ++i) {
    CHECK(st[i].bytes() == cnn.layer(i).stash_bytes(s, DType::f32));
    s = cnn.layer(i).output_shape(s);
  }
  CHECK(y.dtype() == DType::f32);
}

TEST_CASE("Model::to moves parameters of residual inner layers too") {
  Model gpt = make_gpt(5, 4, 8, 2, 1);
  gpt.init(2);
  const auto before = all_values(gpt, false);
  gpt.to(Device::cpu(3), DType::f64);
  for (Parameter* p : gpt.parameters()) {
    CHECK(p->value.device() == Device::cpu(3));
    CHECK(p->grad.dtype() == DType::f64);
  }
  check_close(all_values(gpt, false), before, 1e-7, "values after the cast");
  ExecContext ctx = ExecContext::on(Device::cpu(3));
  std::vector<Stash> st;
  const Tensor y = gpt.forward(ctx, random_ids({1, 4}, 5, 1).to(Device::cpu(3)), st, true);
  CHECK(y.device() == Device::cpu(3));
  gpt.backward(ctx, Tensor::zeros(y.shape(), DType::f64, Device::cpu(3)), st);
  CHECK_THROWS_WITH_AS(gpt.backward(ctx, y, st, 0, 2), doctest::Contains("stashes"), Error);
}
