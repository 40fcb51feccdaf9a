// Row softmax (optionally causal), softmax cross-entropy and row argmax on the CPU. Every
// exponential is taken after subtracting the row maximum.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cpu/cpu_common.hpp"

namespace hydra {

namespace {

// Number of columns: the last dimension of `t` (at least one).
std::int64_t last_dim(const char* op, const Tensor& t) {
  op_checks::that(t.rank() >= 1 && t.dim(-1) > 0, op,
                  t.str() + " needs a non-empty last dimension");
  return t.dim(-1);
}

// y[0, n) = softmax(scale * x[0, n)) (y may be x). When given, *max_out = max_j scale * x_j and
// *log_sum_out = log sum_j exp(scale * x_j - max).
template <class T>
void softmax_row(T* y, const T* x, std::int64_t n, double scale, double* max_out,
                 double* log_sum_out) {
  double mx = scale * static_cast<double>(x[0]);
  for (std::int64_t j = 1; j < n; ++j)
    mx = std::max(mx, scale * static_cast<double>(x[j]));
  double sum = 0;
  for (std::int64_t j = 0; j < n; ++j) {
    const double e = std::exp(scale * static_cast<double>(x[j]) - mx);
    y[j] = static_cast<T>(e);
    sum += e;
  }
  const double inv = 1.0 / sum;
  for (std::int64_t j = 0; j < n; ++j)
    y[j] = static_cast<T>(y[j] * inv);
  if (max_out) *max_out = mx;
  if (log_sum_out) *log_sum_out = std::log(sum);
}

}  // namespace

void CpuBackend::softmax_forward(Tensor& y, const Tensor& x, double scale, bool causal,
                                 ExecContext& ctx) {
  const char* op = "softmax_forward";
  cpu::check_floats(op, ctx, {&y, &x});
  const std::int64_t cols = last_dim(op, x);
  const std::int64_t rows = x.numel() / cols;
  op_checks::same_numel(op, y, x);
  cpu::check_same_or_disjoint(op, y, x);
  if (causal)
    op_checks::that(x.rank() >= 2 && x.dim(-2) == cols, op,
                    "causal softmax needs x of shape [..., t, t], got " + x.str());
  cpu::dispatch(x, [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data_as<T>();
    T* yp = y.data_as<T>();
    for (std::int64_t r = 0; r < rows; ++r) {
      // Causal: row r % t sees columns [0, r % t].
      const std::int64_t visible = causal ? r % cols + 1 : cols;
      softmax_row(yp + r * cols, xp + r * cols, visible, scale, nullptr, nullptr);
      for (std::int64_t j = visible; j < cols; ++j)
        yp[r * cols + j] = T(0);
    }
  });
}

void CpuBackend::softmax_backward(Tensor& dx, const Tensor& dy, const Tensor& y, double scale,
                                  ExecContext& ctx) {
  const char* op = "softmax_backward";
  cpu::check_floats(op, ctx, {&dx, &dy, &y});
  const std::int64_t cols = last_dim(op, y);
  const std::int64_t rows = y.numel() / cols;
  op_checks::same_numel(op, dx, y);
  op_checks::same_numel(op, dy, y);
  cpu::check_same_or_disjoint(op, dx, dy);
  cpu::check_same_or_disjoint(op, dx, y);
  cpu::dispatch(y, [&](auto tag) {
    using T = decltype(tag);
    const T* dyp = dy.data_as<T>();
    const T* yp = y.data_as<T>();
    T* dxp = dx.data_as<T>();
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t o = r * cols;
      double dot = 0;
      for (std::int64_t j = 0; j < cols; ++j)
        dot += static_cast<double>(dyp[o + j]) * yp[o + j];
      for (std::int64_t j = 0; j < cols; ++j)
        dxp[o + j] = static_cast<T>(scale * yp[o + j] * (dyp[o + j] - dot));
    }
  });
}

void CpuBackend::cross_entropy_forward(Tensor& losses, Tensor& probs, const Tensor& logits,
                                       const Tensor& labels, ExecContext& ctx) {
  const char* op = "cross_entropy_forward";
  cpu::check_floats(op, ctx, {&losses, &probs, &logits});
  cpu::check_ints(op, ctx, labels, "labels");
  const std::int64_t classes = last_dim(op, logits);
  const std::int64_t n = logits.numel() / classes;
  op_checks::same_numel(op, probs, logits);
  op_checks::numel_is(op, labels, n, "labels");
  op_checks::numel_is(op, losses, n, "losses");
  cpu::check_ids_below(op, labels, classes, "labels");
  cpu::check_same_or_disjoint(op, probs, logits);
  cpu::check_disjoint(op, losses, {&probs, &logits, &labels});
  cpu::check_disjoint(op, probs, labels);
  cpu::dispatch(logits, [&](auto tag) {
    using T = decltype(tag);
    const T* x = logits.data_as<T>();
    const std::int32_t* lab = labels.data_as<std::int32_t>();
    T* p = probs.data_as<T>();
    T* loss = losses.data_as<T>();
    for (std::int64_t i = 0; i < n; ++i) {
      // -log softmax(x)[l] = log sum exp(x - max) - (x[l] - max), read before p overwrites x.
      const double x_label = x[i * classes + lab[i]];
      double mx = 0, log_sum = 0;
      softmax_row(p + i * classes, x + i * classes, classes, 1.0, &mx, &log_sum);
      loss[i] = static_cast<T>(log_sum - (x_label - mx));
    }
  });
}

void CpuBackend::cross_entropy_backward(Tensor& dlogits, const Tensor& probs, const Tensor& labels,
                                        double scale, ExecContext& ctx) {
  const char* op = "cross_entropy_backward";
  cpu::check_floats(op, ctx, {&dlogits, &probs});
  cpu::check_ints(op, ctx, labels, "labels");
  const std::int64_t classes = last_dim(op, probs);
  const std::int64_t n = probs.numel() / classes;
  op_checks::same_numel(op, dlogits, probs);
  op_checks::numel_is(op, labels, n, "labels");
  cpu::check_ids_below(op, labels, classes, "labels");
  cpu::check_same_or_disjoint(op, dlogits, probs);
  cpu::check_disjoint(op, dlogits, labels);
  cpu::dispatch(probs, [&](auto tag) {
    using T = decltype(tag);
    const T* p = probs.data_as<T>();
    const std::int32_t* lab = labels.data_as<std::int32_t>();
    T* d = dlogits.data_as<T>();
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < classes; ++j) {
        const double target = j == lab[i] ? 1.0 : 0.0;
        d[i * classes + j] = static_cast<T>(scale * (p[i * classes + j] - target));
      }
  });
}

void CpuBackend::argmax_rows(Tensor& out, const Tensor& x, ExecContext& ctx) {
  const char* op = "argmax_rows";
  cpu::check_floats(op, ctx, {&x});
  cpu::check_ints(op, ctx, out, "out");
  const std::int64_t classes = last_dim(op, x);
  const std::int64_t n = x.numel() / classes;
  op_checks::numel_is(op, out, n, "out");
  cpu::check_disjoint(op, out, x);
  cpu::dispatch(x, [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data_as<T>();
    std::int32_t* o = out.data_as<std::int32_t>();
    for (std::int64_t i = 0; i < n; ++i) {
      const T* row = xp + i * classes;
      std::int64_t best = 0;
      for (std::int64_t j = 1; j < classes; ++j)
        if (row[j] > row[best]) best = j;
      o[i] = static_cast<std::int32_t>(best);
    }
  });
}

}  // namespace hydra
