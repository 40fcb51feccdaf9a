// Every layer's backward against central finite differences (f64 on the CPU), plus forward
// values against naive references where the composition is non-trivial.
#include <doctest/doctest.h>

#include "kernels/layers/all.hpp"
#include "kernels/loss.hpp"
#include "layer_test_util.hpp"

using namespace hydra;
using namespace hydra::test;

namespace {

ExecContext host() {
  return ExecContext::on(Device::host());
}

// y[b, t, :] of causal multi-head attention computed naively in double.
std::vector<double> attention_reference(const std::vector<double>& x, const Layer& layer,
                                        std::int64_t B, std::int64_t T, std::int64_t D,
                                        std::int64_t H) {
  const auto wqkv = layer.parameters()[0].value.to_doubles(),
             bqkv = layer.parameters()[1].value.to_doubles(),
             wo = layer.parameters()[2].value.to_doubles(),
             bo = layer.parameters()[3].value.to_doubles();
  const std::int64_t hd = D / H;
  std::vector<double> qkv(B * T * 3 * D), concat(B * T * D), y(B * T * D);
  for (std::int64_t r = 0; r < B * T; ++r)
    for (std::int64_t o = 0; o < 3 * D; ++o) {
      double s = bqkv[o];
      for (std::int64_t i = 0; i < D; ++i)
        s += x[r * D + i] * wqkv[o * D + i];
      qkv[r * 3 * D + o] = s;
    }
  const auto at = [&](std::int64_t b, std::int64_t t, std::int64_t part, std::int64_t h,
                      std::int64_t j) { return qkv[(b * T + t) * 3 * D + part * D + h * hd + j]; };
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t h = 0; h < H; ++h)
      for (std::int64_t t = 0; t < T; ++t) {
        std::vector<double> p(t + 1);
        double mx = -1e300, sum = 0;
        for (std::int64_t u = 0; u <= t; ++u) {
          double s = 0;
          for (std::int64_t j = 0; j < hd; ++j)
            s += at(b, t, 0, h, j) * at(b, u, 1, h, j);
          p[u] = s / std::sqrt(static_cast<double>(hd));
          mx = std::max(mx, p[u]);
        }
        for (double& v : p)
          sum += (v = std::exp(v - mx));
        for (std::int64_t j = 0; j < hd; ++j) {
          double s = 0;
          for (std::int64_t u = 0; u <= t; ++u)
            s += p[u] / sum * at(b, u, 2, h, j);
          concat[(b * T + t) * D + h * hd + j] = s;
        }
      }
  for (std::int64_t r = 0; r < B * T; ++r)
    for (std::int64_t o = 0; o < D; ++o) {
      double s = bo[o];
      for (std::int64_t i = 0; i < D; ++i)
        s += concat[r * D + i] * wo[o * D + i];
      y[r * D + o] = s;
    }
  return y;
}

Tensor forward_eval(Layer& layer, const Tensor& x) {
  ExecContext ctx = host();
  Stash s;
  return layer.forward(ctx, x, s, false);
}

}  // namespace

TEST_CASE("Linear gradients and forward values") {
  Linear lin(5, 3);
  gradcheck(lin, random_tensor({2, 4, 5}, 1));
  // y = x W^T + b by hand.
  const Tensor x = random_tensor({4, 5}, 2);
  const auto y = forward_eval(lin, x).to_doubles();
  const auto xv = x.to_doubles(), w = lin.parameters()[0].value.to_doubles(),
             b = lin.parameters()[1].value.to_doubles();
  std::vector<double> ref(12);
  for (int r = 0; r < 4; ++r)
    for (int o = 0; o < 3; ++o) {
      ref[r * 3 + o] = b[o];
      for (int i = 0; i < 5; ++i)
        ref[r * 3 + o] += xv[r * 5 + i] * w[o * 5 + i];
    }
  check_close(y, ref, 1e-12, "Linear forward");
  Linear nobias(5, 2, false);
  CHECK(nobias.parameters().size() == 1);
  gradcheck(nobias, random_tensor({3, 5}, 3));
}

TEST_CASE("backward accumulates into parameter grads") {
  Linear lin(3, 2);
  lin.to(Device::host(), DType::f64);
  lin.reset_parameters(1);
  ExecContext ctx = host();
  lin.zero_grad(ctx);
  const Tensor x = random_tensor({4, 3}, 5), dy = random_tensor({4, 2}, 6);
  Stash s1, s2;
  lin.forward(ctx, x, s1, true);
  lin.forward(ctx, x, s2, true);
  lin.backward(ctx, dy, s1);
  const auto once = lin.parameters()[0].grad.to_doubles();
  lin.backward(ctx, dy, s2);
  auto twice = lin.parameters()[0].grad.to_doubles();
  for (double& g : twice)
    g /= 2;
  check_close(twice, once, 1e-14, "accumulated grad");
  CHECK(std::abs(once[0]) > 0);
  Stash eval;
  lin.forward(ctx, x, eval, false);
  CHECK(eval.bytes() == 0);
  CHECK_THROWS_WITH_AS(lin.backward(ctx, dy, eval), doctest::Contains("Linear(3->2)"), Error);
}

TEST_CASE("ReLU and GELU gradients") {
  ReLU relu;
  gradcheck(relu, random_nonzero({3, 7}, 4));
  GELU gelu;
  gradcheck(gelu, random_tensor({3, 7}, 5, DType::f64, -3, 3));
  const auto y =
      forward_eval(gelu, Tensor::from_vector(std::vector<double>{1.0}, {1})).to_doubles();
  CHECK(y[0] == doctest::Approx(0.8413447460685429).epsilon(1e-12));
}

TEST_CASE("LayerNorm gradients and normalised output") {
  LayerNorm ln(6);
  gradcheck(ln, random_tensor({2, 3, 6}, 6, DType::f64, -2, 2));
  ln.reset_parameters(0);  // gamma 1, beta 0
  const auto y = forward_eval(ln, random_tensor({4, 6}, 8, DType::f64, -2, 3)).to_doubles();
  for (int r = 0; r < 4; ++r) {
    double mean = 0, var = 0;
    for (int j = 0; j < 6; ++j)
      mean += y[r * 6 + j] / 6;
    for (int j = 0; j < 6; ++j)
      var += (y[r * 6 + j] - mean) * (y[r * 6 + j] - mean) / 6;
    CHECK(mean == doctest::Approx(0).epsilon(1e-12));
    CHECK(var == doctest::Approx(1).epsilon(1e-4));  // eps = 1e-5
  }
}

TEST_CASE("Dropout gradients use the mask of their own stash") {
  Dropout drop(0.4, 11);
  const Tensor x = random_nonzero({4, 25}, 9);
  gradcheck(drop, x, 7, 1e-6, [&] { drop.reset_parameters(3); });  // same mask every forward
  ExecContext ctx = host();
  drop.reset_parameters(5);
  Stash s1, s2;
  const auto y1 = drop.forward(ctx, x, s1, true).to_doubles();
  const auto y2 = drop.forward(ctx, x, s2, true).to_doubles();
  CHECK(drop.calls() == 2);
  CHECK(y1 != y2);  // a fresh mask per forward
  const auto xv = x.to_doubles();
  int zeros = 0;
  for (std::size_t i = 0; i < y1.size(); ++i) {
    zeros += y1[i] == 0;
    CHECK((y1[i] == 0 || std::abs(y1[i] - xv[i] / 0.6) < 1e-12));
  }
  CHECK(zeros > 20);
  CHECK(zeros < 60);
  // Backward of the first forward (after a second one) uses the first mask.
  const Tensor dy = random_tensor({4, 25}, 10);
  const auto dx = drop.backward(ctx, dy, s1).to_doubles();
  const auto dyv = dy.to_doubles();
  for (std::size_t i = 0; i < dx.size(); ++i)
    CHECK(dx[i] == doctest::Approx(dyv[i] * y1[i] / xv[i]));
  CHECK(forward_eval(drop, x).to_doubles() == xv);  // identity in eval mode
  drop.reset_parameters(5);
  Stash s3;
  CHECK(drop.forward(ctx, x, s3, true).to_doubles() == y1);  // reset replays the masks
}

TEST_CASE("TokenEmbedding gradients accumulate repeated ids") {
  TokenEmbedding emb(5, 4);
  const Tensor ids = Tensor::from_ints({0, 3, 3, 1, 4, 3}, {2, 3});
  gradcheck(emb, ids);
  const auto table = emb.parameters()[0].value.to_doubles();
  const auto y = forward_eval(emb, ids).to_doubles();
  CHECK(std::equal(table.begin() + 12, table.begin() + 16, y.begin() + 4));
  CHECK_THROWS_WITH_AS(forward_eval(emb, Tensor::from_ints({0, 5}, {1, 2})),
                       doctest::Contains("token id 5"), Error);
  CHECK_THROWS_AS(forward_eval(emb, Tensor::from_ints({-1}, {1, 1})), Error);
}

TEST_CASE("PositionEmbedding gradients and length check") {
  PositionEmbedding pos(6, 3);
  gradcheck(pos, random_tensor({2, 4, 3}, 12));
  const Tensor x = random_tensor({2, 4, 3}, 13);
  const auto y = forward_eval(pos, x).to_doubles(), xv = x.to_doubles(),
             p = pos.parameters()[0].value.to_doubles();
  for (std::size_t i = 0; i < y.size(); ++i)
    CHECK(y[i] == doctest::Approx(xv[i] + p[i % 12]));
  CHECK_THROWS_WITH_AS(pos.output_shape({1, 7, 3}), doctest::Contains("exceeds max_len 6"), Error);
}

TEST_CASE("CausalSelfAttention gradients and forward values") {
  CausalSelfAttention att(8, 2);
  const Tensor x = random_tensor({2, 5, 8}, 14);
  gradcheck(att, x);
  check_close(forward_eval(att, x).to_doubles(),
              attention_reference(x.to_doubles(), att, 2, 5, 8, 2), 1e-12, "attention forward");
  // Causality: changing the last token leaves the earlier outputs unchanged.
  Tensor x2 = x.clone();
  x2.data_as<double>()[4 * 8 + 1] += 1.0;
  const auto y1 = forward_eval(att, x).to_doubles(), y2 = forward_eval(att, x2).to_doubles();
  CHECK(std::equal(y1.begin(), y1.begin() + 4 * 8, y2.begin()));
  CHECK(y1[4 * 8] != y2[4 * 8]);
  CausalSelfAttention one_head(6, 1);
  gradcheck(one_head, random_tensor({1, 3, 6}, 15));
}

TEST_CASE("Residual gradients reach inner parameters") {
  Residual res(make_layers(std::make_unique<LayerNorm>(4), std::make_unique<Linear>(4, 4)));
  CHECK(res.parameters().size() == 4);
  CHECK(res.parameters()[2].name == "1.weight");
  gradcheck(res, random_tensor({3, 4}, 16));
  // y = x + f(x).
  const Tensor x = random_tensor({3, 4}, 17);
  Linear alone(4, 4);
  alone.to(Device::host(), DType::f64);
  Residual skip(make_layers(std::make_unique<Linear>(4, 4)));
  skip.to(Device::host(), DType::f64);
  skip.reset_parameters(3);
  copy(alone.parameters()[0].value, skip.parameters()[0].value);
  copy(alone.parameters()[1].value, skip.parameters()[1].value);
  auto fx = forward_eval(alone, x).to_doubles();
  const auto xv = x.to_doubles();
  for (std::size_t i = 0; i < fx.size(); ++i)
    fx[i] += xv[i];
  check_close(forward_eval(skip, x).to_doubles(), fx, 1e-14, "residual forward");
  CHECK_THROWS_WITH_AS(Residual(make_layers(std::make_unique<Linear>(4, 3))).output_shape({2, 4}),
                       doctest::Contains("Residual(Linear(4->3))"), Error);
}

TEST_CASE("transformer block gradients") {
  auto block = make_transformer_block(8, 2);
  REQUIRE(block.size() == 2);
  for (std::size_t i = 0; i < block.size(); ++i)
    gradcheck(*block[i], random_tensor({2, 3, 8}, 18 + i));
  CHECK(block[1]->parameter_count() == 2 * 8 + 8 * 32 + 32 + 32 * 8 + 8);
}

TEST_CASE("Conv2d gradients and forward values") {
  Conv2d conv(3, 4, 3, 2, 1);
  gradcheck(conv, random_tensor({2, 3, 6, 5}, 20));
  Conv2d plain(2, 3, 2, 1, 0, false);
  const Tensor x = random_tensor({1, 2, 4, 4}, 21);
  gradcheck(plain, x);
  const auto y = forward_eval(plain, x).to_doubles(), xv = x.to_doubles(),
             w = plain.parameters()[0].value.to_doubles();
  std::vector<double> ref(3 * 3 * 3, 0.0);
  for (int k = 0; k < 3; ++k)
    for (int oy = 0; oy < 3; ++oy)
      for (int ox = 0; ox < 3; ++ox)
        for (int c = 0; c < 2; ++c)
          for (int r = 0; r < 2; ++r)
            for (int s = 0; s < 2; ++s)
              ref[(k * 3 + oy) * 3 + ox] +=
                  xv[(c * 4 + oy + r) * 4 + ox + s] * w[((k * 2 + c) * 2 + r) * 2 + s];
  check_close(y, ref, 1e-12, "conv forward");
}

TEST_CASE("MaxPool2d gradients without ties") {
  MaxPool2d pool(2);
  gradcheck(pool, random_distinct({2, 3, 4, 6}, 22));
  MaxPool2d overlapping(3, 2);
  gradcheck(overlapping, random_distinct({1, 2, 7, 5}, 23));
  const auto y = forward_eval(pool, Tensor::from_vector(std::vector<double>{1, 5, 2, 0, 3, 4, 8, 7},
                                                        {1, 1, 2, 4}))
                     .to_doubles();
  CHECK(y == std::vector<double>{5, 8});
}

TEST_CASE("Flatten is a view with a reshaping backward") {
  Flatten flat;
  gradcheck(flat, random_tensor({2, 3, 2}, 24));
  CHECK(flat.output_shape({5, 2, 3, 4}) == Shape{5, 24});
}

TEST_CASE("softmax cross-entropy gradient mean loss and accuracy") {
  ExecContext ctx = host();
  Tensor logits = random_tensor({2, 3, 5}, 25, DType::f64, -2, 2);
  const Tensor labels = Tensor::from_ints({0, 4, 2, 2, 1, 3}, {2, 3});
  const LossResult r = softmax_cross_entropy(ctx, logits, labels);
  CHECK(r.count == 6);
  CHECK(r.dlogits.shape() == logits.shape());
  const auto l = logits.to_doubles();
  double ref = 0;
  std::int64_t correct = 0;
  const auto lab = labels.to_ints();
  for (int i = 0; i < 6; ++i) {
    double mx = -1e300, sum = 0;
    int arg = 0;
    for (int j = 0; j < 5; ++j)
      if (l[i * 5 + j] > mx) mx = l[i * 5 + j], arg = j;
    for (int j = 0; j < 5; ++j)
      sum += std::exp(l[i * 5 + j] - mx);
    ref += (mx + std::log(sum) - l[i * 5 + lab[i]]) / 6;
    correct += arg == lab[i];
  }
  CHECK(r.loss == doctest::Approx(ref).epsilon(1e-12));
  CHECK(r.correct == correct);
  const auto numeric =
      numeric_grad(logits, [&] { return softmax_cross_entropy(ctx, logits, labels, false).loss; });
  check_close(r.dlogits.to_doubles(), numeric, 1e-6, "dlogits");
}

TEST_CASE("softmax cross-entropy rejects bad labels and non-finite losses") {
  ExecContext ctx = host();
  const Tensor logits = random_tensor({2, 3}, 26);
  CHECK_THROWS_WITH_AS(softmax_cross_entropy(ctx, logits, Tensor::from_ints({0, 3}, {2})),
                       doctest::Contains("label 3 at row 1"), Error);
  CHECK_THROWS_AS(softmax_cross_entropy(ctx, logits, Tensor::from_ints({-1, 0}, {2})), Error);
  CHECK_THROWS_AS(softmax_cross_entropy(ctx, logits, Tensor::from_ints({0, 1, 2}, {3})), Error);
  const Tensor nan = Tensor::from_vector(std::vector<double>{0, std::nan(""), 1, 2}, {2, 2});
  CHECK_THROWS_WITH_AS(softmax_cross_entropy(ctx, nan, Tensor::from_ints({0, 1}, {2})),
                       doctest::Contains("loss is NaN"), Error);
  const double inf = std::numeric_limits<double>::infinity();
  const Tensor big = Tensor::from_vector(std::vector<double>{0, -inf, 1, 2}, {2, 2});
  CHECK_THROWS_WITH_AS(softmax_cross_entropy(ctx, big, Tensor::from_ints({1, 1}, {2})),
                       doctest::Contains("loss is inf"), Error);
}
