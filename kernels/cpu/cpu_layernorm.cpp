// Layer normalisation over the last dimension (cols = gamma.numel()), biased variance.
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cpu/cpu_common.hpp"

namespace hydra {

void CpuBackend::layernorm_forward(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x,
                                   const Tensor& gamma, const Tensor& beta, double eps,
                                   ExecContext& ctx) {
  const char* op = "layernorm_forward";
  cpu::check_floats(op, ctx, {&y, &mean, &rstd, &x, &gamma, &beta});
  const std::int64_t cols = gamma.numel();
  const std::int64_t rows = cpu::rows_of(op, x, cols, "input");
  op_checks::same_numel(op, y, x);
  op_checks::numel_is(op, beta, cols, "beta");
  op_checks::numel_is(op, mean, rows, "mean");
  op_checks::numel_is(op, rstd, rows, "rstd");
  op_checks::that(eps >= 0, op, "eps must not be negative");
  cpu::check_same_or_disjoint(op, y, x);
  cpu::check_disjoint(op, mean, {&x, &y, &gamma, &beta, &rstd});
  cpu::check_disjoint(op, rstd, {&x, &y, &gamma, &beta});
  cpu::dispatch(x, [&](auto tag) {
    using T = decltype(tag);
    const T* g = gamma.data_as<T>();
    const T* bt = beta.data_as<T>();
    const T* xp = x.data_as<T>();
    T* yp = y.data_as<T>();
    T* mp = mean.data_as<T>();
    T* rp = rstd.data_as<T>();
    for (std::int64_t r = 0; r < rows; ++r) {
      const T* xr = xp + r * cols;
      T* yr = yp + r * cols;
      double mu = 0, var = 0;
      for (std::int64_t j = 0; j < cols; ++j)
        mu += xr[j];
      mu /= static_cast<double>(cols);
      for (std::int64_t j = 0; j < cols; ++j)
        var += (xr[j] - mu) * (xr[j] - mu);
      var /= static_cast<double>(cols);
      const double rs = 1.0 / std::sqrt(var + eps);
      for (std::int64_t j = 0; j < cols; ++j)
        yr[j] = static_cast<T>((xr[j] - mu) * rs * g[j] + bt[j]);
      mp[r] = static_cast<T>(mu);
      rp[r] = static_cast<T>(rs);
    }
  });
}

// With xhat = (x - mean) * rstd and g = dy * gamma:
// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)); dgamma += sum_r dy * xhat; dbeta += sum_r dy.
void CpuBackend::layernorm_backward(Tensor& dx, Tensor& dgamma, Tensor& dbeta, const Tensor& dy,
                                    const Tensor& x, const Tensor& mean, const Tensor& rstd,
                                    const Tensor& gamma, ExecContext& ctx) {
  const char* op = "layernorm_backward";
  cpu::check_floats(op, ctx, {&dx, &dgamma, &dbeta, &dy, &x, &mean, &rstd, &gamma});
  const std::int64_t cols = gamma.numel();
  const std::int64_t rows = cpu::rows_of(op, x, cols, "input");
  op_checks::same_numel(op, dx, x);
  op_checks::same_numel(op, dy, x);
  op_checks::numel_is(op, dgamma, cols, "dgamma");
  op_checks::numel_is(op, dbeta, cols, "dbeta");
  op_checks::numel_is(op, mean, rows, "mean");
  op_checks::numel_is(op, rstd, rows, "rstd");
  cpu::check_same_or_disjoint(op, dx, dy);
  cpu::check_disjoint(op, dx, {&x, &mean, &rstd, &gamma, &dgamma, &dbeta});
  cpu::check_disjoint(op, dgamma, dbeta);
  cpu::dispatch(x, [&](auto tag) {
    using T = decltype(tag);
    const T* g = gamma.data_as<T>();
    const T* xp = x.data_as<T>();
    const T* dyp = dy.data_as<T>();
    const T* mp = mean.data_as<T>();
    const T* rp = rstd.data_as<T>();
    T* dxp = dx.data_as<T>();
    std::vector<double> dg(static_cast<std::size_t>(cols), 0.0), db(dg);
    for (std::int64_t r = 0; r < rows; ++r) {
      const T* xr = xp + r * cols;
      const T* dyr = dyp + r * cols;
      T* dxr = dxp + r * cols;
      const double mu = mp[r], rs = rp[r];
      double sum_g = 0, sum_gx = 0;
      for (std::int64_t j = 0; j < cols; ++j) {
        const double xhat = (xr[j] - mu) * rs, gj = static_cast<double>(dyr[j]) * g[j];
        sum_g += gj;
        sum_gx += gj * xhat;
        dg[j] += dyr[j] * xhat;
        db[j] += dyr[j];
      }
      const double mean_g = sum_g / static_cast<double>(cols);
      const double mean_gx = sum_gx / static_cast<double>(cols);
      for (std::int64_t j = 0; j < cols; ++j) {
        const double xhat = (xr[j] - mu) * rs;
        dxr[j] =
            static_cast<T>(rs * (static_cast<double>(dyr[j]) * g[j] - mean_g - xhat * mean_gx));
      }
    }
    T* dgp = dgamma.data_as<T>();
    T* dbp = dbeta.data_as<T>();
    for (std::int64_t j = 0; j < cols; ++j) {
      dgp[j] += static_cast<T>(dg[j]);
      dbp[j] += static_cast<T>(db[j]);
    }
  });
}

}  // namespace hydra
