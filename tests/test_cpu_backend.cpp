// Op-level correctness of the CPU backend against naive reference computations, in f32 and f64,
// and the argument checks that must reject bad input with hydra::Error.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/backend.hpp"
#include "kernels/core/stream.hpp"
#include "kernels/core/tensor.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/random.hpp"

using namespace hydra;

namespace {

using Vec = std::vector<double>;
constexpr DType kFloatTypes[] = {DType::f32, DType::f64};

Backend& be() {
  return cpu_backend();
}
ExecContext host() {
  return ExecContext::on(Device::host());
}

Tensor make(const Vec& v, const Shape& shape, DType dt) {
  return Tensor::from_vector(v, shape, dt);
}
Tensor ints(const std::vector<std::int32_t>& v) {
  return Tensor::from_ints(v, {static_cast<std::int64_t>(v.size())});
}

// Deterministic values in [-1, 1).
Vec randv(std::int64_t n, std::uint64_t seed) {
  Vec v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i)
    v[i] = 2.0 * uniform01(seed, static_cast<std::uint64_t>(i)) - 1.0;
  return v;
}

double tol(DType dt) {
  return dt == DType::f32 ? 2e-5 : 1e-12;
}

// Largest |got - want| / (1 + |want|); sizes must agree.
double max_err(const Vec& got, const Vec& want) {
  REQUIRE(got.size() == want.size());
  double e = 0;
  for (std::size_t i = 0; i < got.size(); ++i)
    e = std::max(e, std::abs(got[i] - want[i]) / (1 + std::abs(want[i])));
  if (std::isnan(e)) return std::numeric_limits<double>::infinity();
  return e;
}

#define CHECK_CLOSE(got, want, tolerance) CHECK(max_err((got), (want)) <= (tolerance))

}  // namespace

TEST_CASE("cpu backend is one shared instance named cpu") {
  CHECK(&cpu_backend() == &cpu_backend());
  CHECK(std::string(cpu_backend().name()) == "cpu");
  CHECK(&backend_for(Device::host()) == &cpu_backend());
  CHECK(&backend_for(Device::cpu(2)) == &cpu_backend());
}

TEST_CASE("cpu elementwise ops and reductions") {
  ExecContext ctx = host();
  for (DType dt : kFloatTypes) {
    CAPTURE(dtype_name(dt));
    Tensor a = make({1, -2, 3.5, 4}, {2, 2}, dt), b = make({0.5, 2, -1, 8}, {4}, dt);
    Tensor out = Tensor::empty({4}, dt);
    be().add(out, a, b, ctx);
    CHECK(out.to_doubles() == Vec{1.5, 0, 2.5, 12});
    be().mul(out, a, b, ctx);
    CHECK(out.to_doubles() == Vec{0.5, -4, -3.5, 32});
    be().add(out, out, out, ctx);  // in place
    CHECK(out.to_doubles() == Vec{1, -8, -7, 64});
    be().axpy(out, -2, b, ctx);
    CHECK(out.to_doubles() == Vec{0, -12, -5, 48});
    be().scale(out, 0.5, ctx);
    CHECK(out.to_doubles() == Vec{0, -6, -2.5, 24});
    be().fill(out, 1.25, ctx);
    CHECK(out.to_doubles() == Vec{1.25, 1.25, 1.25, 1.25});
    CHECK(be().sum(a, ctx) == 6.5);
    CHECK(be().sum_squares(a, ctx) == 1 + 4 + 12.25 + 16);

    const DType other = dt == DType::f32 ? DType::f64 : DType::f32;
    Tensor conv = Tensor::empty({2, 2}, other);
    be().convert(conv, a, ctx);
    CHECK(conv.dtype() == other);
    CHECK(conv.to_doubles() == Vec{1, -2, 3.5, 4});

    // permute_0213: out[a, c, b, d] = in[a, b, c, d].
    const std::int64_t n0 = 2, n1 = 3, n2 = 4, n3 = 5;
    const Vec src = randv(n0 * n1 * n2 * n3, 7);
    Tensor in = make(src, {n0, n1, n2, n3}, dt), perm = Tensor::empty({n0, n2, n1, n3}, dt);
    be().permute_0213(perm, in, ctx);
    Vec want(src.size());
    for (std::int64_t i = 0; i < n0; ++i)
      for (std::int64_t j = 0; j < n1; ++j)
        for (std::int64_t k = 0; k < n2; ++k)
          for (std::int64_t l = 0; l < n3; ++l)
            want[((i * n2 + k) * n1 + j) * n3 + l] = src[((i * n1 + j) * n2 + k) * n3 + l];
    CHECK_CLOSE(perm.to_doubles(), want, tol(dt));
    Tensor wrong = Tensor::empty({n0, n1, n2, n3}, dt);
    CHECK_THROWS_AS(be().permute_0213(wrong, in, ctx), Error);
    CHECK_THROWS_AS(be().permute_0213(in, in, ctx), Error);
  }
}

TEST_CASE("cpu ops reject bad dtypes devices sizes and aliasing") {
  ExecContext ctx = host();
  Tensor f = make({1, 2, 3, 4}, {4}, DType::f32), d = make({1, 2, 3, 4}, {4}, DType::f64);
  Tensor out = Tensor::empty({4}, DType::f32);
  CHECK_THROWS_WITH_AS(be().add(out, f, d, ctx), doctest::Contains("add"), Error);  // mixed
  Tensor i = Tensor::from_ints({1, 2, 3, 4}, {4});
  CHECK_THROWS_WITH_AS(be().relu_forward(i, i, ctx), doctest::Contains("unsupported dtype"), Error);
  Tensor h = make({1, 2, 3, 4}, {4}, DType::bf16);
  CHECK_THROWS_AS(be().scale(h, 2, ctx), Error);
  CHECK_THROWS_WITH_AS(be().sum(i, ctx), doctest::Contains("sum"), Error);
  Tensor small = Tensor::empty({3}, DType::f32);
  CHECK_THROWS_WITH_AS(be().mul(small, f, f, ctx), doctest::Contains("differ in size"), Error);
  CHECK_THROWS_AS(be().add(out, f, Tensor(), ctx), Error);  // undefined
  Tensor m = make({1, 2, 3, 4, 5, 6}, {2, 3}, DType::f32);
  Tensor mt = m.transpose(0, 1), o6 = Tensor::empty({6}, DType::f32);
  CHECK_THROWS_WITH_AS(be().relu_forward(o6, mt, ctx), doctest::Contains("not contiguous"), Error);
  // Partially overlapping input and output (shifted views of one buffer).
  Tensor buf = Tensor::zeros({5}, DType::f32);
  Tensor lo = buf.slice(0, 4), hi = buf.slice(1, 5);
  CHECK_THROWS_WITH_AS(be().relu_forward(lo, hi, ctx), doctest::Contains("overlap"), Error);
  // A CUDA context is refused by the CPU backend.
  ExecContext gpu{Device::cuda(0), &default_stream(Device::host())};
  CHECK_THROWS_WITH_AS(be().scale(out, 2, gpu), doctest::Contains("cuda:0"), Error);
  // convert: i32 is not a CPU conversion target.
  CHECK_THROWS_AS(be().convert(i, f, ctx), Error);
}

namespace {

// Triple-loop reference with GemmDesc's conventions.
void ref_gemm(const GemmDesc& d, const Vec& a, const Vec& b, Vec& c) {
  const std::int64_t lda = d.lda ? d.lda : (d.trans_a ? d.m : d.k);
  const std::int64_t ldb = d.ldb ? d.ldb : (d.trans_b ? d.k : d.n);
  const std::int64_t ldc = d.ldc ? d.ldc : d.n;
  const std::int64_t sa = d.stride_a == -1 ? (d.trans_a ? d.k : d.m) * lda : d.stride_a;
  const std::int64_t sb = d.stride_b == -1 ? (d.trans_b ? d.n : d.k) * ldb : d.stride_b;
  const std::int64_t sc = d.stride_c == -1 ? d.m * ldc : d.stride_c;
  for (std::int64_t q = 0; q < d.batch; ++q)
    for (std::int64_t i = 0; i < d.m; ++i)
      for (std::int64_t j = 0; j < d.n; ++j) {
        double acc = 0;
        for (std::int64_t p = 0; p < d.k; ++p) {
          const double av = d.trans_a ? a[q * sa + p * lda + i] : a[q * sa + i * lda + p];
          const double bv = d.trans_b ? b[q * sb + j * ldb + p] : b[q * sb + p * ldb + j];
          acc += av * bv;
        }
        double& cv = c[q * sc + i * ldc + j];
        cv = d.alpha * acc + (d.beta == 0 ? 0.0 : d.beta * cv);
      }
}

// Runs gemm on tensors of the given sizes and compares with ref_gemm.
void check_gemm(const GemmDesc& d, std::int64_t na, std::int64_t nb, std::int64_t nc, DType dt) {
  const Vec av = randv(na, 1), bv = randv(nb, 2), cv = randv(nc, 3);
  Tensor a = make(av, {na}, dt), b = make(bv, {nb}, dt), c = make(cv, {nc}, dt);
  ExecContext ctx = host();
  be().gemm(d, a, b, c, ctx);
  Vec want = cv;
  ref_gemm(d, av, bv, want);
  CHECK_CLOSE(c.to_doubles(), want, 10 * tol(dt));
}

}  // namespace

TEST_CASE("cpu gemm matches a triple loop with transposes ld batch and broadcast") {
  for (DType dt : kFloatTypes) {
    CAPTURE(dtype_name(dt));
    const std::int64_t m = 4, n = 5, k = 3;
    for (const bool ta : {false, true})
      for (const bool tb : {false, true}) {
        CAPTURE(ta);
        CAPTURE(tb);
        GemmDesc d;
        d.trans_a = ta;
        d.trans_b = tb;
        d.m = m;
        d.n = n;
        d.k = k;
        d.alpha = 1.5;
        d.beta = 0.5;
        check_gemm(d, m * k, k * n, m * n, dt);  // single, packed
        // Padded leading dimensions and batch with packed strides.
        d.lda = (ta ? m : k) + 2;
        d.ldb = (tb ? k : n) + 1;
        d.ldc = n + 3;
        d.batch = 3;
        const std::int64_t ra = ta ? k : m, rb = tb ? n : k;
        check_gemm(d, 3 * ra * d.lda, 3 * rb * d.ldb, 3 * m * d.ldc, dt);
        // Explicit strides with gaps, B broadcast.
        d.stride_a = ra * d.lda + 4;
        d.stride_b = 0;
        d.stride_c = m * d.ldc + 2;
        check_gemm(d, 3 * d.stride_a, rb * d.ldb, 3 * d.stride_c, dt);
        // A broadcast.
        d.stride_a = 0;
        d.stride_b = -1;
        check_gemm(d, ra * d.lda, 3 * rb * d.ldb, 3 * d.stride_c, dt);
      }
    // Packed A batch with broadcast B (the path that folds the batch into one GEMM).
    GemmDesc f;
    f.m = 3;
    f.n = 4;
    f.k = 6;
    f.batch = 5;
    f.stride_b = 0;
    f.beta = 1;
    check_gemm(f, 5 * 3 * 6, 6 * 4, 5 * 3 * 4, dt);
    f.trans_b = true;
    check_gemm(f, 5 * 3 * 6, 6 * 4, 5 * 3 * 4, dt);
    f.stride_a = 3 * 6 + 2;  // A items not adjacent: must not fold
    check_gemm(f, 5 * f.stride_a, 6 * 4, 5 * 3 * 4, dt);
    f.stride_a = -1;
    f.stride_c = 3 * 4 + 1;  // nor when C items are not adjacent
    check_gemm(f, 5 * 3 * 6, 6 * 4, 5 * f.stride_c, dt);
    // k = 0 scales C by beta.
    GemmDesc z;
    z.m = 2;
    z.n = 2;
    z.k = 0;
    z.beta = 2;
    check_gemm(z, 1, 1, 4, dt);
  }
}

TEST_CASE("cpu gemm with beta 0 ignores NaN in C") {
  GemmDesc d;
  d.m = 2;
  d.n = 2;
  d.k = 2;
  Tensor a = make({1, 2, 3, 4}, {2, 2}, DType::f32), b = make({1, 0, 0, 1}, {2, 2}, DType::f32);
  Tensor c = make(Vec(4, std::nan("")), {2, 2}, DType::f32);
  ExecContext ctx = host();
  be().gemm(d, a, b, c, ctx);
  CHECK(c.to_doubles() == Vec{1, 2, 3, 4});
}

TEST_CASE("cpu gemm rejects out of bounds and bad layouts") {
  ExecContext ctx = host();
  Tensor a = Tensor::zeros({12}), b = Tensor::zeros({12}), c = Tensor::zeros({12});
  GemmDesc d;
  d.m = 3;
  d.n = 4;
  d.k = 4;
  be().gemm(d, a, Tensor::zeros({16}), c, ctx);  // fits exactly
  CHECK_THROWS_WITH_AS(be().gemm(d, a, Tensor::zeros({15}), c, ctx), doctest::Contains("too small"),
                       Error);
  d.k = 3;
  d.n = 3;
  d.batch = 2;
  CHECK_THROWS_WITH_AS(be().gemm(d, a, b, c, ctx), doctest::Contains("gemm"), Error);
  d.batch = 1;
  d.lda = 2;  // < k
  CHECK_THROWS_WITH_AS(be().gemm(d, a, b, c, ctx), doctest::Contains("leading dimension"), Error);
  d.lda = 0;
  d.stride_a = -2;
  CHECK_THROWS_AS(be().gemm(d, a, b, c, ctx), Error);
  d.stride_a = -1;
  d.m = -1;
  CHECK_THROWS_AS(be().gemm(d, a, b, c, ctx), Error);
  d.m = 2;
  d.batch = 2;
  d.stride_c = 0;  // two outputs in one place
  CHECK_THROWS_WITH_AS(be().gemm(d, a, b, c, ctx), doctest::Contains("overlap"), Error);
  d.batch = 1;
  d.stride_c = -1;
  CHECK_THROWS_WITH_AS(be().gemm(d, c, b, c, ctx), doctest::Contains("overlap"), Error);
  Tensor c64 = Tensor::zeros({12}, DType::f64);
  CHECK_THROWS_AS(be().gemm(d, a, b, c64, ctx), Error);
}

TEST_CASE("cpu bias and channel bias with their gradients") {
  ExecContext ctx = host();
  for (DType dt : kFloatTypes) {
    CAPTURE(dtype_name(dt));
    Tensor y = make({1, 2, 3, 4, 5, 6}, {2, 3}, dt), bias = make({10, 20, 30}, {3}, dt);
    be().add_bias(y, bias, ctx);
    CHECK(y.to_doubles() == Vec{11, 22, 33, 14, 25, 36});
    Tensor db = make({1, 1, 1}, {3}, dt);
    be().bias_grad(db, make({1, 2, 3, 4, 5, 6}, {2, 3}, dt), ctx);
    CHECK(db.to_doubles() == Vec{6, 8, 10});  // += column sums
    CHECK_THROWS_AS(be().add_bias(y, make({1, 2, 3, 4}, {4}, dt), ctx), Error);

    // [n=2, c=2, l=2]: one trailing spatial dimension.
    Tensor yc = make({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2}, dt);
    be().add_channel_bias(yc, make({100, 200}, {2}, dt), ctx);
    CHECK(yc.to_doubles() == Vec{101, 102, 203, 204, 105, 106, 207, 208});
    Tensor dc = make({0.5, 0}, {2}, dt);
    be().channel_bias_grad(dc, make({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2}, dt), ctx);
    CHECK(dc.to_doubles() == Vec{0.5 + 1 + 2 + 5 + 6, 3 + 4 + 7 + 8});
    CHECK_THROWS_AS(be().add_channel_bias(yc, make({1, 2, 3}, {3}, dt), ctx), Error);
  }
}

TEST_CASE("cpu relu and exact gelu forward and backward") {
  ExecContext ctx = host();
  for (DType dt : kFloatTypes) {
    CAPTURE(dtype_name(dt));
    Tensor x = make({-2, -0.5, 0, 0.5, 1, 3}, {6}, dt), y = Tensor::empty({6}, dt);
    be().relu_forward(y, x, ctx);
    CHECK(y.to_doubles() == Vec{0, 0, 0, 0.5, 1, 3});
    Tensor dy = make({1, 2, 3, 4, 5, 6}, {6}, dt), dx = Tensor::empty({6}, dt);
    be().relu_backward(dx, dy, x, ctx);
    CHECK(dx.to_doubles() == Vec{0, 0, 0, 4, 5, 6});

    be().gelu_forward(y, x, ctx);
    Vec want;
    for (double v : x.to_doubles())
      want.push_back(0.5 * v * (1 + std::erf(v / std::sqrt(2.0))));
    CHECK_CLOSE(y.to_doubles(), want, tol(dt));
    CHECK(y.to_doubles()[4] == doctest::Approx(0.8413447460685429));
    CHECK(y.to_doubles()[0] == doctest::Approx(-0.04550026389635842));
    be().gelu_backward(dx, dy, x, ctx);
    // Central differences of the exact formula.
    Vec grad;
    const Vec xs = x.to_doubles(), dys = dy.to_doubles();
    for (std::size_t i = 0; i < xs.size(); ++i) {
      const auto g = [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); };
      const double h = 1e-6;
      grad.push_back(dys[i] * (g(xs[i] + h) - g(xs[i] - h)) / (2 * h));
    }
    CHECK_CLOSE(dx.to_doubles(), grad, 1e-5);
  }
}

TEST_CASE("cpu dropout mask follows uniform01 and keeps about 1 - p") {
  ExecContext ctx = host();
  for (DType dt : kFloatTypes) {
    CAPTURE(dtype_name(dt));
    const std::int64_t n = 100000;
    const double p = 0.3;
    const std::uint64_t seed = 1234;
    Tensor x = make(Vec(n, 2.0), {n}, dt), y = Tensor::empty({n}, dt),
           mask = Tensor::empty({n}, dt);
    be().dropout_forward(y, mask, x, p, seed, ctx);
    const Vec mv = mask.to_doubles(), yv = y.to_doubles();
    const double keep =
        dt == DType::f32 ? static_cast<double>(static_cast<float>(1 / (1 - p))) : 1 / (1 - p);
    std::int64_t kept = 0, wrong = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      const bool k = uniform01(seed, static_cast<std::uint64_t>(i)) >= p;
      kept += k;
      wrong += mv[i] != (k ? keep : 0.0);
      wrong += std::abs(yv[i] - 2.0 * mv[i]) > 1e-6;
    }
    CHECK(wrong == 0);
    CHECK(static_cast<double>(kept) / n == doctest::Approx(1 - p).epsilon(0.02));
    // Another seed gives another mask; p = 0 keeps everything unscaled.
    Tensor mask2 = Tensor::empty({n}, dt);
    be().dropout_forward(y, mask2, x, p, seed + 1, ctx);
    CHECK(mask2.to_doubles() != mv);
    be().dropout_forward(y, mask, x, 0.0, seed, ctx);
    CHECK(y.to_doubles() == Vec(n, 2.0));
    CHECK_THROWS_AS(be().dropout_forward(y, mask, x, 1.0, seed, ctx), Error);
    CHECK_THROWS_AS(be().dropout_forward(y, mask, x, -0.1, seed, ctx), Error);
  }
}

TEST_CASE("cpu layernorm forward and backward against naive formulas") {
  ExecContext ctx = host();
  for (DType dt : kFloatTypes) {
    CAPTURE(dtype_name(dt));
    const std::int64_t rows = 3, cols = 5;
    const double eps = 1e-5;
    const Vec xv = randv(rows * cols, 11), gv = randv(cols, 12), bv = randv(cols, 13);
    const Vec dyv = randv(rows * cols, 14);
    Tensor x = make(xv, {rows, cols}, dt), gamma = make(gv, {cols}, dt),
           beta = make(bv, {cols}, dt);
    Tensor y = Tensor::empty({rows, cols}, dt), mean = Tensor::empty({rows}, dt),
           rstd = Tensor::empty({rows}, dt);
    be().layernorm_forward(y, mean, rstd, x, gamma, beta, eps, ctx);

    Vec want_y(xv.size()), want_mean(rows), want_rstd(rows), want_dx(xv.size());
    Vec want_dg(cols, 1.0), want_db(cols, -1.0);  // accumulated onto these
    for (std::int64_t r = 0; r < rows; ++r) {
      double mu = 0, var = 0;
      for (std::int64_t j = 0; j < cols; ++j)
        mu += xv[r * cols + j] / cols;
      for (std::int64_t j = 0; j < cols; ++j)
        var += (xv[r * cols + j] - mu) * (xv[r * cols + j] - mu) / cols;
      const double rs = 1 / std::sqrt(var + eps);
      want_mean[r] = mu;
      want_rstd[r] = rs;
      Vec xhat(cols);
      for (std::int64_t j = 0; j < cols; ++j) {
        xhat[j] = (xv[r * cols + j] - mu) * rs;
        want_y[r * cols + j] = xhat[j] * gv[j] + bv[j];
        want_dg[j] += dyv[r * cols + j] * xhat[j];
        want_db[j] += dyv[r * cols + j];
      }
      // dx_j = sum_i dy_i gamma_i d xhat_i / d x_j, d xhat_i / d x_j = rs (delta - 1/N - xhat_i
      // xhat_j / N).
      for (std::int64_t j = 0; j < cols; ++j) {
        double acc = 0;
        for (std::int64_t i = 0; i < cols; ++i)
          acc += dyv[r * cols + i] * gv[i] * rs *
                 ((i == j ? 1.0 : 0.0) - 1.0 / cols - xhat[i] * xhat[j] / cols);
        want_dx[r * cols + j] = acc;
      }
    }
    CHECK_CLOSE(y.to_doubles(), want_y, 10 * tol(dt));
    CHECK_CLOSE(mean.to_doubles(), want_mean, tol(dt));
    CHECK_CLOSE(rstd.to_doubles(), want_rstd, 10 * tol(dt));

    Tensor dx = Tensor::empty({rows, cols}, dt), dg = make(Vec(cols, 1.0), {cols}, dt),
           db = make(Vec(cols, -1.0), {cols}, dt);
    be().layernorm_backward(dx, dg, db, make(dyv, {rows, cols}, dt), x, mean, rstd, gamma, ctx);
    CHECK_CLOSE(dx.to_doubles(), want_dx, 10 * tol(dt));
    CHECK_CLOSE(dg.to_doubles(), want_dg, 10 * tol(dt));
    CHECK_CLOSE(db.to_doubles(), want_db, 10 * tol(dt));
    Tensor bad = Tensor::empty({rows + 1}, dt);
    CHECK_THROWS_AS(be().layernorm_forward(y, bad, rstd, x, gamma, beta, eps, ctx), Error);
  }
}

TEST_CASE("cpu embedding gathers rows and accumulates duplicate ids") {
  ExecContext ctx = host();
  for (DType dt : kFloatTypes) {
    CAPTURE(dtype_name(dt));
    Tensor table = make({0, 1, 10, 11, 20, 21}, {3, 2}, dt);
    Tensor ids = Tensor::from_ints({2, 0, 2, 1}, {2, 2});
    Tensor out = Tensor::empty({2, 2, 2}, dt);
    be().embedding_forward(out, ids, table, ctx);
    CHECK(out.to_doubles() == Vec{20, 21, 0, 1, 20, 21, 10, 11});
    Tensor dtable = make(Vec(6, 1.0), {3, 2}, dt);
    be().embedding_backward(dtable, make({1, 2, 3, 4, 5, 6, 7, 8}, {4, 2}, dt), ids, ctx);
    CHECK(dtable.to_doubles() == Vec{1 + 3, 1 + 4, 1 + 7, 1 + 8, 1 + 1 + 5, 1 + 2 + 6});
    CHECK_THROWS_WITH_AS(
        be().embedding_forward(out, Tensor::from_ints({0, 3, 1, 1}, {4}), table, ctx),
        doctest::Contains("outside [0, 3)"), Error);
    CHECK_THROWS_AS(
        be().embedding_backward(dtable, out, Tensor::from_ints({0, -1, 1, 1}, {4}), ctx), Error);
    CHECK_THROWS_AS(be().embedding_forward(out, make({0, 1, 2, 1}, {4}, dt), table, ctx), Error);
    Tensor small = Tensor::empty({3, 2}, dt);
    CHECK_THROWS_AS(be().embedding_forward(small, ids, table, ctx), Error);
  }
}

namespace {

// Softmax of scale * x over the first `visible` entries of a row, zeros after.
Vec ref_softmax_row(const Vec& x, double scale, std::size_t visible) {
  Vec y(x.size(), 0.0);
  double sum = 0;
  for (std::size_t j = 0; j < visible; ++j)
    sum += std::exp(scale * x[j]);
  for (std::size_t j = 0; j < visible; ++j)
    y[j] = std::exp(scale * x[j]) / sum;
  return y;
}

}  // namespace

TEST_CASE("cpu softmax plain and causal with backward") {
  ExecContext ctx = host();
  for (DType dt : kFloatTypes) {
    CAPTURE(dtype_name(dt));
    const std::int64_t batch = 2, t = 3;
    const Vec xv = randv(batch * t * t, 21);
    const double scale = 0.7;
    Tensor x = make(xv, {batch, t, t}, dt), y = Tensor::empty({batch, t, t}, dt);
    for (const bool causal : {false, true}) {
      CAPTURE(causal);
      be().softmax_forward(y, x, scale, causal, ctx);
      Vec want;
      for (std::int64_t r = 0; r < batch * t; ++r) {
        const Vec row(xv.begin() + r * t, xv.begin() + (r + 1) * t);
        const Vec p = ref_softmax_row(row, scale, causal ? r % t + 1 : t);
        want.insert(want.end(), p.begin(), p.end());
      }
      CHECK_CLOSE(y.to_doubles(), want, tol(dt));
      Tensor inplace = x.clone();
      be().softmax_forward(inplace, inplace, scale, causal, ctx);
      CHECK(inplace.to_doubles() == y.to_doubles());
      if (causal) CHECK(y.to_doubles()[1] == 0.0);  // row 0 sees only column 0
      if (causal) CHECK(y.to_doubles()[0] == 1.0);

      // dx = scale * J^T dy with J_ij = y_i (delta_ij - y_j), per row.
      const Vec dyv = randv(batch * t * t, 22);
      Tensor dx = Tensor::empty({batch, t, t}, dt);
      be().softmax_backward(dx, make(dyv, {batch, t, t}, dt), y, scale, ctx);
      Vec want_dx(want.size(), 0.0);
      for (std::int64_t r = 0; r < batch * t; ++r)
        for (std::int64_t j = 0; j < t; ++j)
          for (std::int64_t i = 0; i < t; ++i)
            want_dx[r * t + j] +=
                scale * dyv[r * t + i] * want[r * t + i] * ((i == j ? 1.0 : 0.0) - want[r * t + j]);
      CHECK_CLOSE(dx.to_doubles(), want_dx, 10 * tol(dt));
    }
    // Large inputs stay finite; a negative scale flips the order.
    Tensor big = make({1000, 0, -1000, 999}, {2, 2}, dt), out = Tensor::empty({2, 2}, dt);
    be().softmax_forward(out, big, 1.0, false, ctx);
    CHECK_CLOSE(out.to_doubles(), (Vec{1, 0, 0, 1}), tol(dt));
    be().softmax_forward(out, make({1, 2, 3, 3}, {2, 2}, dt), -1.0, false, ctx);
    CHECK(out.to_doubles()[0] == doctest::Approx(1 / (1 + std::exp(-1.0))));
    CHECK_THROWS_AS(be().softmax_forward(out, make({1, 2, 3, 4, 5, 6}, {2, 3}, dt), 1, true, ctx),
                    Error);
  }
}

TEST_CASE("cpu cross entropy values gradient and argmax") {
  ExecContext ctx = host();
  for (DType dt : kFloatTypes) {
    CAPTURE(dtype_name(dt));
    Tensor logits = make({1, 2, 3, 1, 1, 1, 1000, 0, -5}, {3, 3}, dt);
    Tensor labels = ints({2, 0, 1});
    Tensor losses = Tensor::empty({3}, dt), probs = Tensor::empty({3, 3}, dt);
    be().cross_entropy_forward(losses, probs, logits, labels, ctx);
    const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
    CHECK_CLOSE(losses.to_doubles(), (Vec{std::log(z) - 3, std::log(3.0), 1000}), tol(dt));
    const Vec pv{
        std::exp(1.0) / z, std::exp(2.0) / z, std::exp(3.0) / z, 1 / 3., 1 / 3., 1 / 3., 1, 0, 0};
    CHECK_CLOSE(probs.to_doubles(), pv, tol(dt));

    Tensor dlogits = Tensor::empty({3, 3}, dt);
    be().cross_entropy_backward(dlogits, probs, labels, 0.5, ctx);
    Vec want = pv;
    want[2] -= 1;
    want[3] -= 1;
    want[7] -= 1;
    for (double& v : want)
      v *= 0.5;
    CHECK_CLOSE(dlogits.to_doubles(), want, tol(dt));

    CHECK_THROWS_WITH_AS(be().cross_entropy_forward(losses, probs, logits, ints({0, 3, 1}), ctx),
                         doctest::Contains("labels[1] = 3"), Error);
    CHECK_THROWS_AS(be().cross_entropy_backward(dlogits, probs, ints({0, 1, -1}), 1, ctx), Error);
    CHECK_THROWS_AS(be().cross_entropy_forward(losses, probs, logits, ints({0, 1}), ctx), Error);

    Tensor am = Tensor::empty({3}, DType::i32);
    be().argmax_rows(am, make({1, 5, 5, 2, 2, 2, -1, -3, 0}, {3, 3}, dt), ctx);
    CHECK(am.to_ints() == std::vector<std::int32_t>{1, 0, 2});  // first maximum wins
    Tensor amf = Tensor::empty({3}, dt);
    CHECK_THROWS_AS(be().argmax_rows(amf, logits, ctx), Error);
  }
}

namespace {

struct ConvCase {
  Conv2dDesc d;
  Vec x, w, dy;
};

ConvCase conv_case(std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w, std::int64_t k,
                   std::int64_t r, std::int64_t s, std::int64_t stride, std::int64_t pad) {
  ConvCase cc;
  cc.d = Conv2dDesc{n, c, h, w, k, r, s, stride, pad};
  cc.x = randv(n * c * h * w, 31);
  cc.w = randv(k * c * r * s, 32);
  cc.dy = randv(n * k * cc.d.out_h() * cc.d.out_w(), 33);
  return cc;
}

// Direct convolution; calls f(x_index, w_index, y_index) for every multiply-add.
template <class F>
void direct_conv(const Conv2dDesc& d, F f) {
  const std::int64_t oh = d.out_h(), ow = d.out_w();
  for (std::int64_t b = 0; b < d.n; ++b)
    for (std::int64_t ko = 0; ko < d.k; ++ko)
      for (std::int64_t oy = 0; oy < oh; ++oy)
        for (std::int64_t ox = 0; ox < ow; ++ox)
          for (std::int64_t ci = 0; ci < d.c; ++ci)
            for (std::int64_t ri = 0; ri < d.r; ++ri)
              for (std::int64_t si = 0; si < d.s; ++si) {
                const std::int64_t iy = oy * d.stride - d.pad + ri;
                const std::int64_t ix = ox * d.stride - d.pad + si;
                if (iy < 0 || iy >= d.h || ix < 0 || ix >= d.w) continue;
                f(((b * d.c + ci) * d.h + iy) * d.w + ix, ((ko * d.c + ci) * d.r + ri) * d.s + si,
                  ((b * d.k + ko) * oh + oy) * ow + ox);
              }
}

}  // namespace

TEST_CASE("cpu conv2d forward and backward match direct convolution") {
  ExecContext ctx = host();
  const ConvCase cases[] = {
      conv_case(2, 3, 5, 6, 4, 3, 3, 1, 1),  // same padding
      conv_case(2, 2, 7, 7, 3, 3, 2, 2, 0),  // stride 2, non-square filter
      conv_case(1, 3, 4, 4, 2, 1, 1, 1, 0),  // 1x1 (direct GEMM path)
      conv_case(3, 1, 6, 5, 2, 4, 4, 3, 2),  // large padding and stride
  };
  for (DType dt : kFloatTypes) {
    CAPTURE(dtype_name(dt));
    for (const ConvCase& cc : cases) {
      const Conv2dDesc& d = cc.d;
      CAPTURE(d.r);
      CAPTURE(d.stride);
      const Shape xs{d.n, d.c, d.h, d.w}, ws{d.k, d.c, d.r, d.s},
          ys{d.n, d.k, d.out_h(), d.out_w()};
      Vec want_y(cc.dy.size(), 0.0), want_dx(cc.x.size(), 0.0), want_dw(cc.w.size(), 0.5);
      direct_conv(d, [&](std::int64_t xi, std::int64_t wi, std::int64_t yi) {
        want_y[yi] += cc.x[xi] * cc.w[wi];
        want_dx[xi] += cc.dy[yi] * cc.w[wi];
        want_dw[wi] += cc.dy[yi] * cc.x[xi];
      });
      Tensor x = make(cc.x, xs, dt), w = make(cc.w, ws, dt), dy = make(cc.dy, ys, dt);
      Tensor y = make(Vec(cc.dy.size(), 7.0), ys, dt);  // overwritten
      be().conv2d_forward(y, x, w, d, ctx);
      CHECK_CLOSE(y.to_doubles(), want_y, 10 * tol(dt));
      Tensor dx = make(Vec(cc.x.size(), 7.0), xs, dt);  // overwritten
      be().conv2d_backward_data(dx, dy, w, d, ctx);
      CHECK_CLOSE(dx.to_doubles(), want_dx, 10 * tol(dt));
      Tensor dw = make(Vec(cc.w.size(), 0.5), ws, dt);  // accumulated
      be().conv2d_backward_filter(dw, dy, x, d, ctx);
      CHECK_CLOSE(dw.to_doubles(), want_dw, 10 * tol(dt));
    }
  }
  const ConvCase& cc = cases[0];
  Tensor x = make(cc.x, {static_cast<std::int64_t>(cc.x.size())}, DType::f32);
  Tensor w = make(cc.w, {static_cast<std::int64_t>(cc.w.size())}, DType::f32);
  Tensor y = Tensor::empty({static_cast<std::int64_t>(cc.dy.size()) - 1});
  CHECK_THROWS_WITH_AS(be().conv2d_forward(y, x, w, cc.d, ctx), doctest::Contains("output"), Error);
  Conv2dDesc bad = cc.d;
  bad.r = 9;
  CHECK_THROWS_WITH_AS(be().conv2d_forward(y, x, w, bad, ctx),
                       doctest::Contains("invalid convolution"), Error);
}

TEST_CASE("cpu maxpool forward and backward route to the first maximum") {
  ExecContext ctx = host();
  for (DType dt : kFloatTypes) {
    CAPTURE(dtype_name(dt));
    // [1, 1, 4, 4], 2x2 windows, stride 2.
    Tensor x = make({1, 3, 2, 2,    //
                     3, 0, 2, 2,    //
                     -1, -2, 5, 6,  //
                     -3, -1, 7, 6},
                    {1, 1, 4, 4}, dt);
    Pool2dDesc d{1, 1, 4, 4, 2, 2};
    Tensor y = Tensor::empty({1, 1, 2, 2}, dt);
    be().maxpool2d_forward(y, x, d, ctx);
    CHECK(y.to_doubles() == Vec{3, 2, -1, 7});
    Tensor dx = make(Vec(16, 9.0), {1, 1, 4, 4}, dt);  // overwritten
    be().maxpool2d_backward(dx, make({10, 20, 30, 40}, {1, 1, 2, 2}, dt), x, y, d, ctx);
    CHECK(dx.to_doubles() == Vec{0, 10, 20, 0, 0, 0, 0, 0, 30, 0, 0, 0, 0, 0, 40, 0});

    Tensor x2 = make({0, 9, 0, 1, 2, 3}, {1, 2, 1, 3}, dt);
    Pool2dDesc d2{1, 2, 1, 3, 1, 1};  // 1x1 windows copy the input
    Tensor y2 = Tensor::empty({1, 2, 1, 3}, dt);
    be().maxpool2d_forward(y2, x2, d2, ctx);
    CHECK(y2.to_doubles() == x2.to_doubles());
    // Overlapping windows (stride 1) accumulate into a shared maximum.
    Tensor x3 = make({0, 9, 0, 1, 5, 3, 2, 2, 2}, {1, 1, 3, 3}, dt);
    Pool2dDesc d3{1, 1, 3, 3, 2, 1};
    Tensor y3 = Tensor::empty({1, 1, 2, 2}, dt), dx3 = Tensor::empty({1, 1, 3, 3}, dt);
    be().maxpool2d_forward(y3, x3, d3, ctx);
    CHECK(y3.to_doubles() == Vec{9, 9, 5, 5});
    be().maxpool2d_backward(dx3, make({1, 2, 3, 4}, {1, 1, 2, 2}, dt), x3, y3, d3, ctx);
    CHECK(dx3.to_doubles() == Vec{0, 3, 0, 0, 7, 0, 0, 0, 0});
    Pool2dDesc bad{1, 1, 1, 1, 2, 2};
    CHECK_THROWS_AS(be().maxpool2d_forward(y, x, bad, ctx), Error);
  }
}

TEST_CASE("cpu sgd step matches a hand-rolled torch update over 3 steps") {
  ExecContext ctx = host();
  struct Config {
    double momentum, dampening, weight_decay;
    bool nesterov;
  };
  const Config configs[] = {
      {0, 0, 0, false}, {0.9, 0, 0.01, false}, {0.9, 0.25, 0, false}, {0.8, 0, 0.1, true}};
  for (DType dt : kFloatTypes) {
    CAPTURE(dtype_name(dt));
    for (const Config& cfg : configs) {
      CAPTURE(cfg.momentum);
      CAPTURE(cfg.nesterov);
      Vec p = randv(6, 41), buf(6, 0.0);
      Tensor param = make(p, {2, 3}, dt), mbuf = make(Vec(6, 123.0), {2, 3}, dt);
      for (std::int64_t step = 1; step <= 3; ++step) {
        const Vec g = randv(6, 50 + step);
        SgdStep s;
        s.lr = 0.1;
        s.momentum = cfg.momentum;
        s.dampening = cfg.dampening;
        s.weight_decay = cfg.weight_decay;
        s.nesterov = cfg.nesterov;
        s.step = step;
        be().sgd_step(param, make(g, {2, 3}, dt), mbuf, s, ctx);
        for (std::size_t i = 0; i < p.size(); ++i) {
          double d = g[i] + cfg.weight_decay * p[i];
          if (cfg.momentum != 0) {
            buf[i] = step == 1 ? d : cfg.momentum * buf[i] + (1 - cfg.dampening) * d;
            d = cfg.nesterov ? d + cfg.momentum * buf[i] : buf[i];
          }
          p[i] -= 0.1 * d;
        }
      }
      CHECK_CLOSE(param.to_doubles(), p, 10 * tol(dt));
      if (cfg.momentum != 0) CHECK_CLOSE(mbuf.to_doubles(), buf, 10 * tol(dt));
    }
    // Without momentum the buffer is not needed.
    Tensor param = make({1, 2}, {2}, dt), none;
    SgdStep plain;
    plain.lr = 0.5;
    be().sgd_step(param, make({2, 2}, {2}, dt), none, plain, ctx);
    CHECK(param.to_doubles() == Vec{0, 1});
    SgdStep bad;
    bad.momentum = 0.9;
    bad.dampening = 0.1;
    bad.nesterov = true;
    Tensor buf = Tensor::zeros({2}, dt);
    CHECK_THROWS_AS(be().sgd_step(param, make({2, 2}, {2}, dt), buf, bad, ctx), Error);
    bad.nesterov = false;
    bad.step = 0;
    CHECK_THROWS_AS(be().sgd_step(param, make({2, 2}, {2}, dt), buf, bad, ctx), Error);
    CHECK_THROWS_AS(be().sgd_step(param, param, buf, plain, ctx), Error);  // aliasing
  }
}

TEST_CASE("cpu adamw step matches a hand-rolled torch update over 3 steps") {
  ExecContext ctx = host();
  for (DType dt : kFloatTypes) {
    CAPTURE(dtype_name(dt));
    Vec p = randv(5, 61), m(5, 0.0), v(5, 0.0);
    Tensor param = make(p, {5}, dt), mt = Tensor::zeros({5}, dt), vt = Tensor::zeros({5}, dt);
    AdamWStep s;
    s.lr = 0.01;
    s.beta1 = 0.8;
    s.beta2 = 0.95;
    s.eps = 1e-6;
    s.weight_decay = 0.1;
    for (std::int64_t step = 1; step <= 3; ++step) {
      const Vec g = randv(5, 70 + step);
      s.step = step;
      be().adamw_step(param, make(g, {5}, dt), mt, vt, s, ctx);
      for (std::size_t i = 0; i < p.size(); ++i) {
        p[i] *= 1 - s.lr * s.weight_decay;
        m[i] = s.beta1 * m[i] + (1 - s.beta1) * g[i];
        v[i] = s.beta2 * v[i] + (1 - s.beta2) * g[i] * g[i];
        const double mhat = m[i] / (1 - std::pow(s.beta1, step));
        const double vhat = v[i] / (1 - std::pow(s.beta2, step));
        p[i] -= s.lr * mhat / (std::sqrt(vhat) + s.eps);
      }
    }
    CHECK_CLOSE(param.to_doubles(), p, 10 * tol(dt));
    CHECK_CLOSE(mt.to_doubles(), m, 10 * tol(dt));
    CHECK_CLOSE(vt.to_doubles(), v, 10 * tol(dt));
    Tensor short_v = Tensor::zeros({4}, dt);
    CHECK_THROWS_AS(be().adamw_step(param, make(p, {5}, dt), mt, short_v, s, ctx), Error);
    s.step = 0;
    CHECK_THROWS_AS(be().adamw_step(param, make(p, {5}, dt), mt, vt, s, ctx), Error);
  }
}
