// Op-level agreement of the CUDA backend with the CPU backend: every op runs on random inputs on
// the host (cpu_backend, f32) and on cuda:0, and the results are compared within per-op
// tolerances (1e-5 relative for elementwise float math, 2e-3 of the output scale for
// TF32 GEMMs and convolutions, exact for data movement, dropout masks and argmax).
// Without a GPU (or without CUDA support in the build) every test prints HYDRA-SKIP and passes.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "kernels/backend.hpp"
#include "kernels/core/cuda_api.hpp"
#include "kernels/core/stream.hpp"
#include "kernels/core/tensor.hpp"
#include "kernels/random.hpp"

#ifdef HYDRA_WITH_CUDA
#include "kernels/cuda/cuda_backend.hpp"
#endif

using namespace hydra;

namespace {

using Vec = std::vector<double>;

#ifdef HYDRA_WITH_CUDA
Backend& gpu() {
  return cuda_backend(0);
}
#else
// Never reached: without CUDA support cuda::available() is false and every test skips.
Backend& gpu() {
  return backend_for(Device::cuda(0));
}
#endif
Backend& cpu() {
  return cpu_backend();
}

bool skip_without_gpu() {
  if (cuda::available()) return false;
  std::printf("HYDRA-SKIP: no CUDA GPU\n");
  return true;
}

const Device kGpu = Device::cuda(0);
ExecContext hctx() {
  return ExecContext::on(Device::host());
}
ExecContext dctx() {
  return ExecContext::on(kGpu);
}

// Deterministic values in [lo, hi).
Vec randv(std::int64_t n, std::uint64_t seed, double lo = -1.0, double hi = 1.0) {
  Vec v(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = lo + (hi - lo) * uniform01(seed, i);
  return v;
}

// The same values on the host and on the GPU.
struct Pair {
  Tensor h, d;
};
Pair pair_of(const Tensor& host) {
  return {host, host.to(kGpu)};
}
Pair rand_pair(const Shape& shape, std::uint64_t seed, double lo = -1.0, double hi = 1.0) {
  return pair_of(Tensor::from_vector(randv(shape_numel(shape), seed, lo, hi), shape, DType::f32));
}
Pair empty_pair(const Shape& shape, DType dt = DType::f32) {
  return {Tensor::empty(shape, dt), Tensor::empty(shape, dt, kGpu)};
}
Pair ids_pair(std::int64_t n, std::int32_t bound, std::uint64_t seed) {
  std::vector<std::int32_t> v(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<std::int32_t>(uniform01(seed, i) * static_cast<float>(bound)) % bound;
  return pair_of(Tensor::from_ints(v, {n}));
}

// Largest |got - want| / (1 + |want|).
double max_err(const Vec& got, const Vec& want) {
  REQUIRE(got.size() == want.size());
  double e = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double d = std::abs(got[i] - want[i]) / (1 + std::abs(want[i]));
    if (std::isnan(d)) return std::numeric_limits<double>::infinity();
    e = std::max(e, d);
  }
  return e;
}

// Largest |got - want| relative to the largest |want| (at least 1): for TF32 results, whose
// error scales with the magnitude of the whole output rather than of each element.
double scaled_err(const Vec& got, const Vec& want) {
  REQUIRE(got.size() == want.size());
  double scale = 1, e = 0;
  for (double w : want)
    scale = std::max(scale, std::abs(w));
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double d = std::abs(got[i] - want[i]);
    if (std::isnan(d)) return std::numeric_limits<double>::infinity();
    e = std::max(e, d);
  }
  return e / scale;
}

// Compares the GPU tensor with the host tensor of a pair.
void check_close(const Pair& p, double tol, const std::string& what) {
  const double e = max_err(p.d.to_doubles(), p.h.to_doubles());
  INFO(what << ": max error " << e << " (tolerance " << tol << ")");
  CHECK(e <= tol);
}
void check_scaled(const Pair& p, double tol, const std::string& what) {
  const double e = scaled_err(p.d.to_doubles(), p.h.to_doubles());
  INFO(what << ": max scaled error " << e << " (tolerance " << tol << ")");
  CHECK(e <= tol);
}
void check_exact(const Pair& p, const std::string& what) {
  INFO(what);
  CHECK(p.d.to_doubles() == p.h.to_doubles());
}

constexpr double kElementwiseTol = 1e-5;
constexpr double kReductionTol = 1e-4;  // float reductions in a different order than the CPU's
constexpr double kTf32Tol = 2e-3;       // TF32 keeps 10 mantissa bits (inputs may be truncated)

}  // namespace

TEST_CASE("cuda backend is one instance per device named cuda") {
  if (skip_without_gpu()) return;
  CHECK(&gpu() == &gpu());
  CHECK(std::string(gpu().name()) == "cuda");
  CHECK(&backend_for(kGpu) == &gpu());
  CHECK(&dctx().backend() == &gpu());
}

TEST_CASE("cuda elementwise ops match the cpu backend") {
  if (skip_without_gpu()) return;
  ExecContext h = hctx(), d = dctx();
  const Shape shape{3, 1001};
  Pair a = rand_pair(shape, 1, -3, 3), b = rand_pair(shape, 2, -3, 3), out = empty_pair(shape);

  cpu().fill(out.h, 0.375, h);
  gpu().fill(out.d, 0.375, d);
  check_exact(out, "fill");
  cpu().add(out.h, a.h, b.h, h);
  gpu().add(out.d, a.d, b.d, d);
  check_exact(out, "add");
  cpu().mul(out.h, a.h, b.h, h);
  gpu().mul(out.d, a.d, b.d, d);
  check_close(out, kElementwiseTol, "mul");
  cpu().axpy(out.h, -0.7, a.h, h);
  gpu().axpy(out.d, -0.7, a.d, d);
  check_close(out, kElementwiseTol, "axpy");
  cpu().scale(out.h, 1.3, h);
  gpu().scale(out.d, 1.3, d);
  check_close(out, kElementwiseTol, "scale");

  cpu().relu_forward(out.h, a.h, h);
  gpu().relu_forward(out.d, a.d, d);
  check_exact(out, "relu_forward");
  cpu().relu_backward(out.h, b.h, a.h, h);
  gpu().relu_backward(out.d, b.d, a.d, d);
  check_exact(out, "relu_backward");
  cpu().gelu_forward(out.h, a.h, h);
  gpu().gelu_forward(out.d, a.d, d);
  check_close(out, kElementwiseTol, "gelu_forward");
  cpu().gelu_backward(out.h, b.h, a.h, h);
  gpu().gelu_backward(out.d, b.d, a.d, d);
  check_close(out, kElementwiseTol, "gelu_backward");

  // In place: x *= x.
  gpu().mul(a.d, a.d, a.d, d);
  cpu().mul(a.h, a.h, a.h, h);
  check_close(a, kElementwiseTol, "mul in place");

  // Empty tensors are fine.
  Tensor none = Tensor::empty({0}, DType::f32, kGpu);
  gpu().fill(none, 1.0, d);
  gpu().add(none, none, none, d);
  CHECK(gpu().sum(none, d) == 0.0);
}

TEST_CASE("cuda permute_0213 and convert match the host") {
  if (skip_without_gpu()) return;
  ExecContext h = hctx(), d = dctx();
  Pair in = rand_pair({2, 5, 3, 7}, 3);
  Pair out = empty_pair({2, 3, 5, 7});
  cpu().permute_0213(out.h, in.h, h);
  gpu().permute_0213(out.d, in.d, d);
  check_exact(out, "permute_0213");

  // f32 -> bf16 rounds to nearest even exactly as the host conversion; bf16 -> f32 is exact.
  const Vec v = randv(4099, 4, -1e3, 1e3);
  Tensor src = Tensor::from_vector(v, {4099}, DType::f32).to(kGpu);
  Tensor bf = Tensor::empty({4099}, DType::bf16, kGpu);
  gpu().convert(bf, src, d);
  const Vec want = Tensor::from_vector(v, {4099}, DType::bf16).to_doubles();
  CHECK(bf.to_doubles() == want);
  Tensor back = Tensor::empty({4099}, DType::f32, kGpu);
  gpu().convert(back, bf, d);
  CHECK(back.to_doubles() == want);
  gpu().fill(bf, -2.5, d);
  CHECK(bf.to_doubles() == Vec(4099, -2.5));
}

TEST_CASE("cuda sum and sum_squares accumulate in double") {
  if (skip_without_gpu()) return;
  ExecContext h = hctx(), d = dctx();
  for (std::int64_t n : {1, 31, 257, 100003, 3000001}) {
    CAPTURE(n);
    Pair x = rand_pair({n}, 5 + static_cast<std::uint64_t>(n), -2, 3);
    double abs_sum = 0, sq = 0;
    for (double v : x.h.to_doubles()) {
      abs_sum += std::abs(v);
      sq += v * v;
    }
    CHECK(std::abs(gpu().sum(x.d, d) - cpu().sum(x.h, h)) <= 1e-10 * abs_sum + 1e-12);
    CHECK(std::abs(gpu().sum_squares(x.d, d) - cpu().sum_squares(x.h, h)) <= 1e-10 * sq + 1e-12);
  }
}

TEST_CASE("cuda gemm in f32 with tf32 matches the cpu backend") {
  if (skip_without_gpu()) return;
  ExecContext h = hctx(), d = dctx();
  struct Case {
    bool ta, tb;
    std::int64_t m, n, k, pad_a, pad_b, pad_c;
    double alpha, beta;
  };
  const Case cases[] = {
      {false, false, 33, 47, 65, 0, 0, 0, 1.0, 0.0},  {true, false, 64, 31, 17, 0, 0, 0, 0.5, 1.0},
      {false, true, 20, 70, 129, 3, 5, 2, 1.0, -0.5}, {true, true, 7, 9, 300, 1, 0, 4, 2.0, 0.25},
      {false, false, 1, 1, 1, 0, 0, 0, 1.0, 0.0},     {false, true, 128, 96, 64, 0, 0, 0, 1.0, 1.0},
  };
  for (const Case& c : cases) {
    CAPTURE(c.ta);
    CAPTURE(c.tb);
    CAPTURE(c.m);
    CAPTURE(c.n);
    CAPTURE(c.k);
    for (std::int64_t batch : {1, 3}) {
      CAPTURE(batch);
      GemmDesc g;
      g.trans_a = c.ta;
      g.trans_b = c.tb;
      g.m = c.m;
      g.n = c.n;
      g.k = c.k;
      const std::int64_t ra = c.ta ? c.k : c.m, ca = (c.ta ? c.m : c.k);
      const std::int64_t rb = c.tb ? c.n : c.k, cb = (c.tb ? c.k : c.n);
      g.lda = c.pad_a ? ca + c.pad_a : 0;
      g.ldb = c.pad_b ? cb + c.pad_b : 0;
      g.ldc = c.pad_c ? c.n + c.pad_c : 0;
      g.batch = batch;
      g.alpha = c.alpha;
      g.beta = c.beta;
      const std::int64_t sa = ra * (ca + c.pad_a), sb = rb * (cb + c.pad_b),
                         sc = c.m * (c.n + c.pad_c);
      Pair a = rand_pair({batch * sa}, 10), b = rand_pair({batch * sb}, 11),
           out = rand_pair({batch * sc}, 12);
      cpu().gemm(g, a.h, b.h, out.h, h);
      gpu().gemm(g, a.d, b.d, out.d, d);
      check_scaled(out, kTf32Tol, "gemm");
    }
  }
  // Batched with A broadcast (stride 0) and explicit strides with gaps between matrices.
  GemmDesc g;
  g.m = 16;
  g.n = 24;
  g.k = 40;
  g.batch = 4;
  g.stride_a = 0;
  g.stride_b = 40 * 24 + 8;
  g.stride_c = 16 * 24 + 3;
  Pair a = rand_pair({16 * 40}, 13), b = rand_pair({4 * g.stride_b}, 14),
       out = rand_pair({4 * g.stride_c}, 15);
  cpu().gemm(g, a.h, b.h, out.h, h);
  gpu().gemm(g, a.d, b.d, out.d, d);
  check_scaled(out, kTf32Tol, "gemm broadcast A");
  // k = 0: C = beta * C.
  GemmDesc z;
  z.m = 5;
  z.n = 6;
  z.k = 0;
  z.beta = 0.5;
  Pair za = rand_pair({1}, 16), zb = rand_pair({1}, 17), zc = rand_pair({30}, 18);
  cpu().gemm(z, za.h, zb.h, zc.h, h);
  gpu().gemm(z, za.d, zb.d, zc.d, d);
  check_close(zc, kElementwiseTol, "gemm k = 0");
}

TEST_CASE("cuda gemm with bf16 inputs accumulates in fp32") {
  if (skip_without_gpu()) return;
  ExecContext h = hctx(), d = dctx();
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      CAPTURE(ta);
      CAPTURE(tb);
      GemmDesc g;
      g.trans_a = ta;
      g.trans_b = tb;
      g.m = 37;
      g.n = 29;
      g.k = 96;
      g.batch = 2;
      g.beta = 0.0;
      const Vec va = randv(2 * 37 * 96, 20), vb = randv(2 * 96 * 29, 21);
      // The host reference uses the bf16-rounded inputs in f32.
      Tensor a16 = Tensor::from_vector(va, {2 * 37 * 96}, DType::bf16);
      Tensor b16 = Tensor::from_vector(vb, {2 * 96 * 29}, DType::bf16);
      Tensor ah = Tensor::from_vector(a16.to_doubles(), {2 * 37 * 96}, DType::f32);
      Tensor bh = Tensor::from_vector(b16.to_doubles(), {2 * 96 * 29}, DType::f32);
      Tensor ch = Tensor::empty({2 * 37 * 29}, DType::f32);
      cpu().gemm(g, ah, bh, ch, h);
      const Vec want = ch.to_doubles();

      Tensor ad = a16.to(kGpu), bd = b16.to(kGpu);
      Tensor c32 = Tensor::empty({2 * 37 * 29}, DType::f32, kGpu);
      gpu().gemm(g, ad, bd, c32, d);
      CHECK(scaled_err(c32.to_doubles(), want) <= 1e-4);
      Tensor c16 = Tensor::empty({2 * 37 * 29}, DType::bf16, kGpu);
      gpu().gemm(g, ad, bd, c16, d);
      CHECK(max_err(c16.to_doubles(), want) <= 8e-3);  // bf16 output rounding (2^-8 relative)
    }
}

TEST_CASE("cuda bias ops match the cpu backend") {
  if (skip_without_gpu()) return;
  ExecContext h = hctx(), d = dctx();
  for (std::int64_t rows : {1, 5, 3001}) {
    CAPTURE(rows);
    Pair y = rand_pair({rows, 70}, 30), bias = rand_pair({70}, 31);
    cpu().add_bias(y.h, bias.h, h);
    gpu().add_bias(y.d, bias.d, d);
    check_exact(y, "add_bias");
    Pair db = rand_pair({70}, 32);  // accumulates
    cpu().bias_grad(db.h, y.h, h);
    gpu().bias_grad(db.d, y.d, d);
    check_close(db, kReductionTol, "bias_grad");
  }
  for (const Shape& shape : {Shape{4, 6, 3, 3}, Shape{5, 7, 33, 35}, Shape{2, 3, 5}}) {
    CAPTURE(shape_str(shape));
    Pair y = rand_pair(shape, 33), bias = rand_pair({shape[1]}, 34);
    cpu().add_channel_bias(y.h, bias.h, h);
    gpu().add_channel_bias(y.d, bias.d, d);
    check_exact(y, "add_channel_bias");
    Pair db = rand_pair({shape[1]}, 35);
    cpu().channel_bias_grad(db.h, y.h, h);
    gpu().channel_bias_grad(db.d, y.d, d);
    check_close(db, kReductionTol, "channel_bias_grad");
  }
}

TEST_CASE("cuda dropout masks equal the cpu masks bit for bit") {
  if (skip_without_gpu()) return;
  ExecContext h = hctx(), d = dctx();
  for (double p : {0.0, 0.1, 0.5, 0.9}) {
    CAPTURE(p);
    Pair x = rand_pair({10007}, 40), y = empty_pair({10007}), mask = empty_pair({10007});
    cpu().dropout_forward(y.h, mask.h, x.h, p, 1234567, h);
    gpu().dropout_forward(y.d, mask.d, x.d, p, 1234567, d);
    check_exact(mask, "dropout mask");
    check_exact(y, "dropout output");
  }
}

TEST_CASE("cuda layernorm matches the cpu backend") {
  if (skip_without_gpu()) return;
  ExecContext h = hctx(), d = dctx();
  for (std::int64_t cols : {1, 64, 769, 1500}) {
    CAPTURE(cols);
    const std::int64_t rows = 37;
    Pair x = rand_pair({rows, cols}, 50, -2, 3), gamma = rand_pair({cols}, 51),
         beta = rand_pair({cols}, 52);
    Pair y = empty_pair({rows, cols}), mean = empty_pair({rows}), rstd = empty_pair({rows});
    cpu().layernorm_forward(y.h, mean.h, rstd.h, x.h, gamma.h, beta.h, 1e-5, h);
    gpu().layernorm_forward(y.d, mean.d, rstd.d, x.d, gamma.d, beta.d, 1e-5, d);
    check_close(y, kReductionTol, "layernorm y");
    check_close(mean, kReductionTol, "layernorm mean");
    check_close(rstd, kReductionTol, "layernorm rstd");

    Pair dy = rand_pair({rows, cols}, 53), dx = empty_pair({rows, cols});
    Pair dgamma = rand_pair({cols}, 54), dbeta = rand_pair({cols}, 55);  // accumulate
    cpu().layernorm_backward(dx.h, dgamma.h, dbeta.h, dy.h, x.h, mean.h, rstd.h, gamma.h, h);
    gpu().layernorm_backward(dx.d, dgamma.d, dbeta.d, dy.d, x.d, mean.d, rstd.d, gamma.d, d);
    check_close(dx, kReductionTol, "layernorm dx");
    check_close(dgamma, kReductionTol, "layernorm dgamma");
    check_close(dbeta, kReductionTol, "layernorm dbeta");

    // In place: dx == dy.
    cpu().layernorm_backward(dy.h, dgamma.h, dbeta.h, dy.h, x.h, mean.h, rstd.h, gamma.h, h);
    gpu().layernorm_backward(dy.d, dgamma.d, dbeta.d, dy.d, x.d, mean.d, rstd.d, gamma.d, d);
    check_close(dy, kReductionTol, "layernorm dx in place");
    check_close(dgamma, kReductionTol, "layernorm dgamma (second pass)");
  }
}

TEST_CASE("cuda embedding matches the cpu backend") {
  if (skip_without_gpu()) return;
  ExecContext h = hctx(), d = dctx();
  const std::int64_t vocab = 50, dim = 33, n = 301;
  Pair ids = ids_pair(n, static_cast<std::int32_t>(vocab), 60);
  Pair table = rand_pair({vocab, dim}, 61), out = empty_pair({n, dim});
  cpu().embedding_forward(out.h, ids.h, table.h, h);
  gpu().embedding_forward(out.d, ids.d, table.d, d);
  check_exact(out, "embedding_forward");
  Pair dout = rand_pair({n, dim}, 62), dtable = rand_pair({vocab, dim}, 63);
  cpu().embedding_backward(dtable.h, dout.h, ids.h, h);
  gpu().embedding_backward(dtable.d, dout.d, ids.d, d);
  check_close(dtable, kReductionTol, "embedding_backward");  // atomics: any order
}

TEST_CASE("cuda softmax matches the cpu backend") {
  if (skip_without_gpu()) return;
  ExecContext h = hctx(), d = dctx();
  struct Case {
    Shape shape;
    bool causal;
  };
  const Case cases[] = {{{7, 100}, false},   {{3, 3000}, false},         {{1, 1}, false},
                        {{3, 17, 17}, true}, {{2, 1, 1100, 1100}, true}, {{2, 2, 33, 33}, true}};
  for (const Case& c : cases) {
    CAPTURE(shape_str(c.shape));
    CAPTURE(c.causal);
    Pair x = rand_pair(c.shape, 70, -4, 4), y = empty_pair(c.shape);
    cpu().softmax_forward(y.h, x.h, 0.8, c.causal, h);
    gpu().softmax_forward(y.d, x.d, 0.8, c.causal, d);
    check_close(y, kElementwiseTol, "softmax_forward");
    Pair dy = rand_pair(c.shape, 71), dx = empty_pair(c.shape);
    cpu().softmax_backward(dx.h, dy.h, y.h, 0.8, h);
    gpu().softmax_backward(dx.d, dy.d, y.d, 0.8, d);
    check_close(dx, kElementwiseTol, "softmax_backward");
    // In place.
    cpu().softmax_forward(x.h, x.h, 1.0, c.causal, h);
    gpu().softmax_forward(x.d, x.d, 1.0, c.causal, d);
    check_close(x, kElementwiseTol, "softmax_forward in place");
  }
}

TEST_CASE("cuda cross entropy and argmax match the cpu backend") {
  if (skip_without_gpu()) return;
  ExecContext h = hctx(), d = dctx();
  for (std::int64_t classes : {10, 1000, 5000}) {
    CAPTURE(classes);
    const std::int64_t n = 37;
    Pair logits = rand_pair({n, classes}, 80, -6, 6);
    Pair labels = ids_pair(n, static_cast<std::int32_t>(classes), 81);
    Pair losses = empty_pair({n}), probs = empty_pair({n, classes});
    cpu().cross_entropy_forward(losses.h, probs.h, logits.h, labels.h, h);
    gpu().cross_entropy_forward(losses.d, probs.d, logits.d, labels.d, d);
    check_close(losses, kElementwiseTol, "cross_entropy losses");
    check_close(probs, kElementwiseTol, "cross_entropy probs");
    Pair dlogits = empty_pair({n, classes});
    cpu().cross_entropy_backward(dlogits.h, probs.h, labels.h, 1.0 / n, h);
    gpu().cross_entropy_backward(dlogits.d, probs.d, labels.d, 1.0 / n, d);
    check_close(dlogits, kElementwiseTol, "cross_entropy_backward");

    Pair arg = empty_pair({n}, DType::i32);
    cpu().argmax_rows(arg.h, logits.h, h);
    gpu().argmax_rows(arg.d, logits.d, d);
    CHECK(arg.d.to_ints() == arg.h.to_ints());
  }
  // Ties: the first maximum wins.
  Vec v(4 * 2000, 0.0);
  for (std::int64_t r = 0; r < 4; ++r) {
    v[r * 2000 + 100 + 300 * r] = 5;
    v[r * 2000 + 1900 - 200 * r] = 5;
  }
  Tensor x = Tensor::from_vector(v, {4, 2000}, DType::f32).to(kGpu);
  Tensor out = Tensor::empty({4}, DType::i32, kGpu);
  ExecContext dc = dctx();
  gpu().argmax_rows(out, x, dc);
  CHECK(out.to_ints() == std::vector<std::int32_t>{100, 400, 700, 1000});
  Tensor small = Tensor::from_vector(Vec{1, 3, 3, 2, -1, -1, -1, -1}, {2, 4}, DType::f32).to(kGpu);
  Tensor out2 = Tensor::empty({2}, DType::i32, kGpu);
  gpu().argmax_rows(out2, small, dc);
  CHECK(out2.to_ints() == std::vector<std::int32_t>{1, 0});
}

TEST_CASE("cuda conv2d matches the cpu backend") {
  if (skip_without_gpu()) return;
  ExecContext h = hctx(), d = dctx();
  std::vector<Conv2dDesc> descs;
  descs.push_back({2, 3, 12, 10, 8, 3, 3, 1, 1});
  descs.push_back({3, 4, 15, 15, 6, 5, 5, 2, 0});
  descs.push_back({2, 16, 7, 9, 5, 1, 1, 1, 0});
  descs.push_back({1, 2, 9, 11, 3, 3, 2, 3, 2});
  for (const Conv2dDesc& c : descs) {
    CAPTURE(c.c);
    CAPTURE(c.k);
    CAPTURE(c.r);
    CAPTURE(c.stride);
    CAPTURE(c.pad);
    const Shape xs{c.n, c.c, c.h, c.w}, ws{c.k, c.c, c.r, c.s}, ys{c.n, c.k, c.out_h(), c.out_w()};
    Pair x = rand_pair(xs, 90), w = rand_pair(ws, 91), y = empty_pair(ys);
    cpu().conv2d_forward(y.h, x.h, w.h, c, h);
    gpu().conv2d_forward(y.d, x.d, w.d, c, d);
    check_scaled(y, kTf32Tol, "conv2d_forward");
    Pair dy = rand_pair(ys, 92), dx = empty_pair(xs);
    cpu().conv2d_backward_data(dx.h, dy.h, w.h, c, h);
    gpu().conv2d_backward_data(dx.d, dy.d, w.d, c, d);
    check_scaled(dx, kTf32Tol, "conv2d_backward_data");
    Pair dw = rand_pair(ws, 93);  // accumulates
    cpu().conv2d_backward_filter(dw.h, dy.h, x.h, c, h);
    gpu().conv2d_backward_filter(dw.d, dy.d, x.d, c, d);
    check_scaled(dw, kTf32Tol, "conv2d_backward_filter");
    // The cached plan is reused for a second call.
    gpu().conv2d_forward(y.d, x.d, w.d, c, d);
    check_scaled(y, kTf32Tol, "conv2d_forward (cached plan)");
  }
}

TEST_CASE("cuda maxpool matches the cpu backend") {
  if (skip_without_gpu()) return;
  ExecContext h = hctx(), d = dctx();
  std::vector<Pool2dDesc> descs;
  descs.push_back({2, 3, 8, 10, 2, 2});
  descs.push_back({2, 2, 9, 9, 3, 2});  // overlapping windows
  descs.push_back({1, 4, 7, 5, 3, 3});  // trailing rows and columns unused
  for (const Pool2dDesc& p : descs) {
    CAPTURE(p.window);
    CAPTURE(p.stride);
    const Shape xs{p.n, p.c, p.h, p.w}, ys{p.n, p.c, p.out_h(), p.out_w()};
    // Distinct values: the maximum of every window is unique.
    const std::int64_t n = shape_numel(xs);
    std::vector<std::int64_t> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    const Vec keys = randv(n, 100);
    std::sort(order.begin(), order.end(), [&](auto a, auto b) { return keys[a] < keys[b]; });
    Vec v(static_cast<std::size_t>(n));
    for (std::size_t i = 0; i < v.size(); ++i)
      v[static_cast<std::size_t>(order[i])] = 0.01 * static_cast<double>(i) - 1.0;
    Pair x = pair_of(Tensor::from_vector(v, xs, DType::f32)), y = empty_pair(ys);
    cpu().maxpool2d_forward(y.h, x.h, p, h);
    gpu().maxpool2d_forward(y.d, x.d, p, d);
    check_exact(y, "maxpool2d_forward");
    Pair dy = rand_pair(ys, 101), dx = empty_pair(xs);
    cpu().maxpool2d_backward(dx.h, dy.h, x.h, y.h, p, h);
    gpu().maxpool2d_backward(dx.d, dy.d, x.d, y.d, p, d);
    check_close(dx, kElementwiseTol, "maxpool2d_backward");
  }
}

TEST_CASE("cuda optimizer steps match the cpu backend") {
  if (skip_without_gpu()) return;
  ExecContext h = hctx(), d = dctx();
  const Shape shape{1003};
  SUBCASE("sgd") {
    struct Opts {
      double momentum, dampening, wd;
      bool nesterov;
    };
    for (const Opts& o : {Opts{0, 0, 0, false}, Opts{0.9, 0, 1e-2, false}, Opts{0.9, 0.1, 0, false},
                          Opts{0.8, 0, 1e-3, true}}) {
      CAPTURE(o.momentum);
      CAPTURE(o.nesterov);
      Pair p = rand_pair(shape, 110), buf = rand_pair(shape, 111);
      for (std::int64_t step = 1; step <= 3; ++step) {
        Pair g = rand_pair(shape, 112 + static_cast<std::uint64_t>(step));
        SgdStep s;
        s.lr = 0.05;
        s.momentum = o.momentum;
        s.dampening = o.dampening;
        s.weight_decay = o.wd;
        s.nesterov = o.nesterov;
        s.step = step;
        cpu().sgd_step(p.h, g.h, buf.h, s, h);
        gpu().sgd_step(p.d, g.d, buf.d, s, d);
      }
      check_close(p, kElementwiseTol, "sgd param");
      if (o.momentum != 0) check_close(buf, kElementwiseTol, "sgd momentum buffer");
    }
    // Without momentum the buffer may be undefined.
    Pair p = rand_pair(shape, 120), g = rand_pair(shape, 121);
    Tensor none_h, none_d;
    SgdStep s;
    cpu().sgd_step(p.h, g.h, none_h, s, h);
    gpu().sgd_step(p.d, g.d, none_d, s, d);
    check_close(p, kElementwiseTol, "sgd without buffer");
  }
  SUBCASE("adamw") {
    Pair p = rand_pair(shape, 130), m = empty_pair(shape), v = empty_pair(shape);
    cpu().fill(m.h, 0, h);
    cpu().fill(v.h, 0, h);
    gpu().fill(m.d, 0, d);
    gpu().fill(v.d, 0, d);
    for (std::int64_t step = 1; step <= 4; ++step) {
      Pair g = rand_pair(shape, 131 + static_cast<std::uint64_t>(step));
      AdamWStep s;
      s.lr = 1e-2;
      s.weight_decay = 0.1;
      s.step = step;
      cpu().adamw_step(p.h, g.h, m.h, v.h, s, h);
      gpu().adamw_step(p.d, g.d, m.d, v.d, s, d);
    }
    check_close(p, kElementwiseTol, "adamw param");
    check_close(m, kElementwiseTol, "adamw m");
    check_close(v, kElementwiseTol, "adamw v");
  }
}

TEST_CASE("cuda ops run on a non-default stream") {
  if (skip_without_gpu()) return;
  Stream stream(kGpu);
  ExecContext d{kGpu, &stream};
  Tensor a = Tensor::from_vector(randv(5000, 140), {5000}, DType::f32).to(kGpu);
  Tensor b = Tensor::from_vector(randv(5000, 141), {5000}, DType::f32).to(kGpu);
  Tensor out = Tensor::empty({5000}, DType::f32, kGpu);
  gpu().add(out, a, b, d);
  double want = 0;
  const Vec va = a.to_doubles(), vb = b.to_doubles();
  for (std::size_t i = 0; i < va.size(); ++i)
    want += static_cast<float>(va[i] + vb[i]);
  CHECK(gpu().sum(out, d) == doctest::Approx(want).epsilon(1e-9));
  GemmDesc g;
  g.m = 50;
  g.n = 100;
  g.k = 50;
  Tensor c = Tensor::empty({5000}, DType::f32, kGpu);
  gpu().gemm(g, a, b, c, d);
  Tensor dbias = Tensor::zeros({100}, DType::f32, kGpu);
  gpu().bias_grad(dbias, c, d);
  d.synchronize();
  ExecContext h = hctx();
  Tensor ch = Tensor::empty({5000}, DType::f32), dbh = Tensor::zeros({100}, DType::f32);
  cpu().gemm(g, a.to(Device::host()), b.to(Device::host()), ch, h);
  cpu().bias_grad(dbh, ch, h);
  CHECK(scaled_err(c.to_doubles(), ch.to_doubles()) <= kTf32Tol);
  CHECK(scaled_err(dbias.to_doubles(), dbh.to_doubles()) <= kTf32Tol);
}

TEST_CASE("cuda ops reject bad arguments with hydra errors") {
  if (skip_without_gpu()) return;
  ExecContext d = dctx();
  Tensor a = Tensor::zeros({4}, DType::f32, kGpu), b = Tensor::zeros({5}, DType::f32, kGpu);
  Tensor f64 = Tensor::zeros({4}, DType::f64, kGpu), i32 = Tensor::zeros({4}, DType::i32, kGpu);
  Tensor bf = Tensor::zeros({4}, DType::bf16, kGpu), host = Tensor::zeros({4}, DType::f32);
  CHECK_THROWS_WITH_AS(gpu().add(a, a, b, d), doctest::Contains("add"), Error);
  CHECK_THROWS_WITH_AS(gpu().add(a, a, f64, d), doctest::Contains("unsupported dtype"), Error);
  CHECK_THROWS_AS(gpu().scale(f64, 2.0, d), Error);
  CHECK_THROWS_AS(gpu().relu_forward(a, i32, d), Error);
  CHECK_THROWS_AS(gpu().mul(bf, bf, bf, d), Error);
  CHECK_THROWS_WITH_AS(gpu().add(a, a, host, d), doctest::Contains("is not on cuda:0"), Error);
  ExecContext h = hctx();
  CHECK_THROWS_AS(gpu().add(a, a, a, h), Error);
  CHECK_THROWS_AS(gpu().dropout_forward(a, a, a, 1.0, 1, d), Error);
  CHECK_THROWS_AS(gpu().convert(i32, a, d), Error);

  GemmDesc g;
  g.m = 2;
  g.n = 2;
  g.k = 2;
  CHECK_THROWS_AS(gpu().gemm(g, a, bf, a, d), Error);  // mixed input dtypes
  CHECK_THROWS_AS(gpu().gemm(g, bf, bf, f64, d), Error);
  g.k = 3;
  CHECK_THROWS_WITH_AS(gpu().gemm(g, a, a, a, d), doctest::Contains("too small"), Error);
  g.k = 2;
  g.lda = 1;
  CHECK_THROWS_AS(gpu().gemm(g, a, a, a, d), Error);

  Conv2dDesc c{1, 1, 2, 2, 1, 3, 3, 1, 0};  // filter larger than the input
  CHECK_THROWS_AS(gpu().conv2d_forward(a, a, a, c, d), Error);
  Pool2dDesc p{1, 1, 2, 2, 2, 2};
  CHECK_THROWS_AS(gpu().maxpool2d_forward(b, a, p, d), Error);  // output should have 1 element
  Tensor table = Tensor::zeros({3, 2}, DType::f32, kGpu);
  CHECK_THROWS_AS(gpu().embedding_forward(b, i32, table, d), Error);
  CHECK_THROWS_AS(gpu().softmax_forward(b, b, 1.0, true, d), Error);  // causal needs [.., t, t]
}
