// Optimizers against hand-rolled reference updates, and gradient clipping.
#include <doctest/doctest.h>

#include "kernels/optim/adamw.hpp"
#include "kernels/optim/grad_clip.hpp"
#include "kernels/optim/sgd.hpp"
#include "layer_test_util.hpp"

using namespace hydra;
using namespace hydra::test;

namespace {

Parameter make_param(const std::vector<double>& values) {
  const Shape shape{static_cast<std::int64_t>(values.size())};
  return Parameter{.name = std::string("w"),
                   .value = Tensor::from_vector(values, shape, DType::f64),
                   .grad = Tensor::zeros(shape, DType::f64),
                   .state = {}};
}

// Runs 5 updates with pseudo-random grads; `reference(p, g, step)` updates the expected values.
template <class Ref>
void check_against_reference(Optimizer& opt, std::size_t slots, Ref reference) {
  ExecContext ctx = ExecContext::on(Device::host());
  std::vector<double> expected = random_values(6, 1);
  Parameter p = make_param(expected);
  for (std::uint64_t step = 1; step <= 5; ++step) {
    const std::vector<double> g = random_values(6, 100 + step);
    copy(p.grad, Tensor::from_vector(g, {6}, DType::f64));
    opt.update(p, ctx);
    reference(expected, g, static_cast<double>(step));
    CHECK(p.step == static_cast<std::int64_t>(step));
    CHECK(p.state.size() == slots);
    check_close(p.value.to_doubles(), expected, 1e-12,
                opt.name() + " step " + std::to_string(step));
  }
}

}  // namespace

TEST_CASE("SGD matches the reference update with momentum weight decay and dampening") {
  for (const bool nesterov : {false, true}) {
    const double lr = 0.1, mom = 0.9, wd = 0.01, damp = nesterov ? 0.0 : 0.25;
    SGD opt(lr, mom, wd, nesterov, damp);
    std::vector<double> buf(6);
    check_against_reference(opt, 1,
                            [&](std::vector<double>& p, const std::vector<double>& g, double step) {
                              for (std::size_t i = 0; i < p.size(); ++i) {
                                double d = g[i] + wd * p[i];
                                buf[i] = step == 1 ? d : mom * buf[i] + (1 - damp) * d;
                                d = nesterov ? d + mom * buf[i] : buf[i];
                                p[i] -= lr * d;
                              }
                            });
  }
  SGD plain(0.5);
  check_against_reference(plain, 1,
                          [](std::vector<double>& p, const std::vector<double>& g, double) {
                            for (std::size_t i = 0; i < p.size(); ++i)
                              p[i] -= 0.5 * g[i];
                          });
  CHECK_THROWS_AS(SGD(0.1, 0.0, 0.0, true), Error);
}

TEST_CASE("AdamW matches the reference update") {
  const double lr = 0.01, b1 = 0.8, b2 = 0.95, eps = 1e-6, wd = 0.1;
  AdamW opt(lr, b1, b2, eps, wd);
  std::vector<double> m(6), v(6);
  check_against_reference(
      opt, 2, [&](std::vector<double>& p, const std::vector<double>& g, double step) {
        for (std::size_t i = 0; i < p.size(); ++i) {
          p[i] *= 1 - lr * wd;
          m[i] = b1 * m[i] + (1 - b1) * g[i];
          v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
          const double mh = m[i] / (1 - std::pow(b1, step)), vh = v[i] / (1 - std::pow(b2, step));
          p[i] -= lr * mh / (std::sqrt(vh) + eps);
        }
      });
}

TEST_CASE("optimizers reject mismatched grads and foreign state") {
  ExecContext ctx = ExecContext::on(Device::host());
  Parameter p = make_param({1, 2, 3});
  p.grad = Tensor::zeros({2}, DType::f64);
  SGD sgd(0.1);
  CHECK_THROWS_WITH_AS(sgd.update(p, ctx), doctest::Contains("parameter 'w'"), Error);
  Parameter q = make_param({1, 2, 3});
  sgd.update(q, ctx);
  AdamW adam;
  CHECK_THROWS_WITH_AS(adam.update(q, ctx), doctest::Contains("state"), Error);
}

TEST_CASE("clip_grad_norm scales grads above the limit and returns the norm") {
  ExecContext ctx = ExecContext::on(Device::host());
  Parameter a = make_param({0, 0}), b = make_param({0, 0, 0});
  copy(a.grad, Tensor::from_vector(std::vector<double>{3, 0}, {2}));
  copy(b.grad, Tensor::from_vector(std::vector<double>{0, 4, 12}, {3}));
  std::vector<Parameter*> ps{&a, &b};
  CHECK(clip_grad_norm(ps, 100.0, ctx) == doctest::Approx(13.0));
  CHECK(a.grad.to_doubles() == std::vector<double>{3, 0});  // below the limit: unchanged
  CHECK(clip_grad_norm(ps, 1.3, ctx) == doctest::Approx(13.0));
  const double c = 1.3 / (13.0 + 1e-6);
  check_close(a.grad.to_doubles(), {3 * c, 0}, 1e-12, "clipped a");
  check_close(b.grad.to_doubles(), {0, 4 * c, 12 * c}, 1e-12, "clipped b");
  b.grad.data_as<double>()[0] = std::nan("");
  CHECK_THROWS_WITH_AS(clip_grad_norm(ps, 1.0, ctx), doctest::Contains("NaN"), Error);
  b.grad.data_as<double>()[0] = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH_AS(clip_grad_norm(ps, 1.0, ctx), doctest::Contains("inf"), Error);
}
