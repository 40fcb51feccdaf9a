// Kernel throughput beside what the hardware reaches: GEMM (f32) through the Hydra backend vs
// the vendor BLAS called directly on the same sizes (OpenBLAS cblas_sgemm on the CPU, cuBLAS on
// a GPU), and one MLP training step (forward + backward + optimizer, FLOPs = 3 x forward) vs
// the same GEMMs called directly. Both sides run in this process, alternating round by round, so
// each ratio comes from one run under the same machine conditions; each figure is the best
// round.
//
//   build/bench/kernel_bench            # about half a minute on 2 cores
//   build/bench/kernel_bench --quick    # fewer rounds and sizes
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "kernels/backend.hpp"
#include "kernels/core/cuda_api.hpp"
#include "kernels/loss.hpp"
#include "kernels/model_zoo.hpp"
#include "kernels/optim/adamw.hpp"

#ifdef HYDRA_WITH_CUDA
#include <cublas_v2.h>
#include <cuda_runtime.h>
#endif

extern "C" int openblas_get_num_threads(void);
extern "C" char* openblas_get_config(void);

using namespace hydra;

namespace {

struct Settings {
  int rounds = 5;
  double round_seconds = 0.15;  // target time of one timed block of calls
  bool quick = false;
};

using Clock = std::chrono::steady_clock;

double seconds_of(const std::function<void()>& f, int reps, const std::function<void()>& sync) {
  const auto t0 = Clock::now();
  for (int i = 0; i < reps; ++i)
    f();
  sync();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Best seconds per call of `a` and of `b`: one warm-up call each, a calibration that sizes a block
// to about s.round_seconds, then s.rounds blocks of each, alternating a, b, a, b, ...
std::pair<double, double> race(const std::function<void()>& a, const std::function<void()>& b,
                               const std::function<void()>& sync, const Settings& s) {
  const double ta = seconds_of(a, 1, sync), tb = seconds_of(b, 1, sync);  // warm-up
  auto reps_for = [&](double t) {
    return static_cast<int>(std::clamp(s.round_seconds / std::max(t, 1e-7), 1.0, 10000.0));
  };
  const int ra = reps_for(std::min(ta, seconds_of(a, 1, sync)));
  const int rb = reps_for(std::min(tb, seconds_of(b, 1, sync)));
  double best_a = 1e30, best_b = 1e30;
  for (int r = 0; r < s.rounds; ++r) {
    best_a = std::min(best_a, seconds_of(a, ra, sync) / ra);
    best_b = std::min(best_b, seconds_of(b, rb, sync) / rb);
  }
  return {best_a, best_b};
}

void print_header(const char* reference) {
  std::printf("%-44s %14s %16s %8s\n", "case", "Hydra GFLOP/s", reference, "ratio");
}

void print_row(const std::string& name, double flops, std::pair<double, double> t) {
  const double hydra = flops / t.first * 1e-9, ref = flops / t.second * 1e-9;
  std::printf("%-44s %14.1f %16.1f %7.0f%%\n", name.c_str(), hydra, ref, 100.0 * hydra / ref);
  std::fflush(stdout);
}

struct GemmCase {
  std::int64_t m, n, k;
  bool ta, tb;
  const char* what;
};

std::string gemm_name(const GemmCase& g) {
  return "gemm " + std::to_string(g.m) + "x" + std::to_string(g.n) + "x" + std::to_string(g.k) +
         " " + (g.ta ? "T" : "N") + (g.tb ? "T" : "N") + (g.what[0] ? std::string(" ") : "") +
         g.what;
}

// Operands of one GEMM case on `device`, filled with small constants.
struct GemmOperands {
  Tensor a, b, c;
  GemmDesc desc;
};

GemmOperands make_operands(const GemmCase& g, ExecContext& ctx) {
  GemmOperands o;
  o.a = g.ta ? Tensor::empty({g.k, g.m}, DType::f32, ctx.device)
             : Tensor::empty({g.m, g.k}, DType::f32, ctx.device);
  o.b = g.tb ? Tensor::empty({g.n, g.k}, DType::f32, ctx.device)
             : Tensor::empty({g.k, g.n}, DType::f32, ctx.device);
  o.c = Tensor::empty({g.m, g.n}, DType::f32, ctx.device);
  Backend& be = ctx.backend();
  be.fill(o.a, 0.01, ctx);
  be.fill(o.b, 0.02, ctx);
  be.fill(o.c, 0.0, ctx);
  o.desc.trans_a = g.ta;
  o.desc.trans_b = g.tb;
  o.desc.m = g.m;
  o.desc.n = g.n;
  o.desc.k = g.k;
  return o;
}

// The GEMMs of one training step of an MLP (per Linear in -> out on a batch B): forward
// y = x W^T, input grad dx = dy W, weight grad dW += dy^T x.
std::vector<GemmCase> mlp_gemms(std::int64_t batch, std::int64_t in,
                                const std::vector<std::int64_t>& hidden, std::int64_t classes) {
  std::vector<GemmCase> out;
  std::vector<std::int64_t> widths{in};
  widths.insert(widths.end(), hidden.begin(), hidden.end());
  widths.push_back(classes);
  for (std::size_t i = 0; i + 1 < widths.size(); ++i) {
    const std::int64_t a = widths[i], b = widths[i + 1];
    out.push_back({batch, b, a, false, true, "fwd"});
    out.push_back({batch, a, b, false, false, "dx"});
    out.push_back({b, a, batch, true, false, "dW"});
  }
  return out;
}

struct MlpSpec {
  std::int64_t batch, in;
  std::vector<std::int64_t> hidden;
  std::int64_t classes;
  std::string name() const {
    std::string s = "mlp step " + std::to_string(in);
    for (auto h : hidden)
      s.append("-").append(std::to_string(h));
    s.append("-").append(std::to_string(classes));
    s.append(" batch ").append(std::to_string(batch));
    return s;
  }
};

// Benchmarks one MLP training step with AdamW against `direct` running the step's GEMMs.
void bench_mlp(const MlpSpec& spec, ExecContext& ctx, const Settings& s,
               const std::function<void(const std::vector<GemmOperands>&)>& direct) {
  Model model = make_mlp(spec.in, spec.hidden, spec.classes);
  model.init(1);
  model.to(ctx.device);
  AdamW opt(1e-4);
  const std::vector<Parameter*> params = model.parameters();
  Tensor x = Tensor::empty({spec.batch, spec.in}, DType::f32, ctx.device);
  ctx.backend().fill(x, 0.5, ctx);
  std::vector<std::int32_t> labels(static_cast<std::size_t>(spec.batch));
  for (std::size_t i = 0; i < labels.size(); ++i)
    labels[i] = static_cast<std::int32_t>(i % static_cast<std::size_t>(spec.classes));
  const Tensor y = Tensor::from_ints(labels, {spec.batch}).to(ctx.device);
  std::vector<Stash> stashes;
  auto step = [&] {
    model.zero_grad(ctx);
    const Tensor logits = model.forward(ctx, x, stashes, true);
    const LossResult r = softmax_cross_entropy(ctx, logits, y);
    model.backward(ctx, r.dlogits, stashes);
    opt.step(params, ctx);
  };
  std::vector<GemmOperands> ops;
  for (const GemmCase& g : mlp_gemms(spec.batch, spec.in, spec.hidden, spec.classes))
    ops.push_back(make_operands(g, ctx));
  const double flops = 3.0 * model.forward_flops({spec.batch, spec.in});
  const auto t = race(
      step, [&] { direct(ops); }, [&] { ctx.synchronize(); }, s);
  print_row(spec.name(), flops, t);
}

// --- CPU --------------------------------------------------------------------------------------

void sgemm_direct(const GemmOperands& o) {
  const GemmDesc& d = o.desc;
  const auto m = static_cast<blasint>(d.m), n = static_cast<blasint>(d.n),
             k = static_cast<blasint>(d.k);
  cblas_sgemm(CblasRowMajor, d.trans_a ? CblasTrans : CblasNoTrans,
              d.trans_b ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, o.a.data_as<float>(),
              d.trans_a ? m : k, o.b.data_as<float>(), d.trans_b ? k : n, 0.0f,
              Tensor(o.c).data_as<float>(), n);
}

void bench_cpu(const Settings& s) {
  std::printf("CPU: %s, %d threads\n", openblas_get_config(), openblas_get_num_threads());
  print_header("OpenBLAS GFLOP/s");
  ExecContext ctx = ExecContext::on(Device::host());
  std::vector<GemmCase> cases = {{256, 256, 256, false, false, ""},
                                 {512, 512, 512, false, false, ""},
                                 {1024, 1024, 1024, false, false, ""},
                                 {256, 1024, 784, false, true, "(Linear fwd)"},
                                 {1024, 784, 256, true, false, "(Linear dW)"}};
  if (!s.quick) cases.insert(cases.begin() + 3, {2048, 2048, 2048, false, false, ""});
  for (const GemmCase& g : cases) {
    GemmOperands o = make_operands(g, ctx);
    Backend& be = ctx.backend();
    const auto t =
        race([&] { be.gemm(o.desc, o.a, o.b, o.c, ctx); }, [&] { sgemm_direct(o); }, [] {}, s);
    print_row(gemm_name(g), 2.0 * static_cast<double>(g.m * g.n * g.k), t);
  }
  print_header("GEMMs alone");
  bench_mlp({256, 784, {1024, 1024}, 10}, ctx, s, [](const std::vector<GemmOperands>& ops) {
    for (const GemmOperands& o : ops)
      sgemm_direct(o);
  });
}

// --- GPU --------------------------------------------------------------------------------------

#ifdef HYDRA_WITH_CUDA
void check_cublas_status(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS)
    throw Error(std::string(what) + " failed: cuBLAS status " + std::to_string(st));
}

// Row-major C = op(A) op(B) as the column-major C^T = op(B)^T op(A)^T, TF32 tensor cores with
// fp32 accumulation (what the Hydra CUDA backend uses for f32).
void cublas_direct(cublasHandle_t h, const GemmOperands& o) {
  const GemmDesc& d = o.desc;
  const int m = static_cast<int>(d.m), n = static_cast<int>(d.n), k = static_cast<int>(d.k);
  const float alpha = 1.0f, beta = 0.0f;
  check_cublas_status(
      cublasGemmEx(h, d.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, d.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                   n, m, k, &alpha, o.b.data(), CUDA_R_32F, d.trans_b ? k : n, o.a.data(),
                   CUDA_R_32F, d.trans_a ? m : k, &beta, Tensor(o.c).data(), CUDA_R_32F, n,
                   CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT),
      "cublasGemmEx");
}

void bench_gpu(const Settings& s) {
  const Device dev = Device::cuda(0);
  ExecContext ctx = ExecContext::on(dev);
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  std::printf("\nGPU: %s (cuda:0), f32 GEMM with TF32 tensor cores on both sides\n", prop.name);
  print_header("cuBLAS GFLOP/s");
  cublasHandle_t h = nullptr;
  check_cublas_status(cublasCreate(&h), "cublasCreate");
  check_cublas_status(cublasSetStream(h, static_cast<cudaStream_t>(ctx.stream->handle())),
                      "cublasSetStream");
  std::vector<GemmCase> cases = {{1024, 1024, 1024, false, false, ""},
                                 {4096, 4096, 4096, false, false, ""},
                                 {4096, 4096, 4096, false, true, "(Linear fwd)"},
                                 {4096, 4096, 4096, true, false, "(Linear dW)"}};
  if (!s.quick) {
    cases.insert(cases.begin() + 1, {2048, 2048, 2048, false, false, ""});
    cases.insert(cases.begin() + 3, {8192, 8192, 8192, false, false, ""});
  }
  try {
    for (const GemmCase& g : cases) {
      GemmOperands o = make_operands(g, ctx);
      Backend& be = ctx.backend();
      const auto t = race([&] { be.gemm(o.desc, o.a, o.b, o.c, ctx); },
                          [&] { cublas_direct(h, o); }, [&] { ctx.synchronize(); }, s);
      print_row(gemm_name(g), 2.0 * static_cast<double>(g.m * g.n * g.k), t);
    }
    print_header("GEMMs alone");
    bench_mlp({2048, 4096, {4096, 4096}, 1024}, ctx, s, [&](const std::vector<GemmOperands>& ops) {
      for (const GemmOperands& o : ops)
        cublas_direct(h, o);
    });
  } catch (...) {
    cublasDestroy(h);
    throw;
  }
  cublasDestroy(h);
}
#endif

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      s.quick = true;
      s.rounds = 3;
      s.round_seconds = 0.08;
    } else if (a == "--rounds" && i + 1 < argc) {
      s.rounds = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--rounds N]\n", argv[0]);
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  try {
    const auto t0 = Clock::now();
    std::printf("Hydra kernel benchmark: f32; best of %d rounds per side, sides alternating\n",
                s.rounds);
    std::printf(
        "ratio = Hydra / reference. MLP rows: FLOPs = 3 x forward FLOPs; the reference "
        "runs only the step's GEMMs (no bias, activation, loss or optimizer work)\n\n");
    bench_cpu(s);
#ifdef HYDRA_WITH_CUDA
    if (cuda::available())
      bench_gpu(s);
    else
      std::printf("\nGPU: no GPU: skipped\n");
#else
    std::printf("\nGPU: no GPU: skipped (built without CUDA)\n");
#endif
    std::printf("\ntotal %.1f s\n", std::chrono::duration<double>(Clock::now() - t0).count());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kernel_bench: %s\n", e.what());
    return 1;
  }
}
