// Embedding lookup (row gather) and its gradient (row scatter-add) on the CPU.
#include <cstdint>

#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cpu/cpu_common.hpp"

namespace hydra {

namespace {

// Checks shared by both directions; returns dim. `rows` is viewed as [ids.numel(), dim].
std::int64_t check_embedding(const char* op, const ExecContext& ctx, const Tensor& table,
                             const Tensor& rows, const Tensor& ids) {
  cpu::check_floats(op, ctx, {&table, &rows});
  cpu::check_ints(op, ctx, ids, "ids");
  op_checks::that(table.rank() == 2, op, "table " + table.str() + " must be [vocab, dim]");
  const std::int64_t dim = table.dim(1);
  op_checks::numel_is(op, rows, ids.numel() * dim, "rows");
  cpu::check_ids_below(op, ids, table.dim(0), "ids");
  cpu::check_disjoint(op, table, rows);
  cpu::check_disjoint(op, ids, rows);
  return dim;
}

}  // namespace

void CpuBackend::embedding_forward(Tensor& out, const Tensor& ids, const Tensor& table,
                                   ExecContext& ctx) {
  const std::int64_t dim = check_embedding("embedding_forward", ctx, table, out, ids);
  cpu::dispatch(table, [&](auto tag) {
    using T = decltype(tag);
    const std::int32_t* id = ids.data_as<std::int32_t>();
    const T* src = table.data_as<T>();
    T* dst = out.data_as<T>();
    for (std::int64_t i = 0; i < ids.numel(); ++i)
      for (std::int64_t j = 0; j < dim; ++j)
        dst[i * dim + j] = src[id[i] * dim + j];
  });
}

void CpuBackend::embedding_backward(Tensor& dtable, const Tensor& dout, const Tensor& ids,
                                    ExecContext& ctx) {
  const std::int64_t dim = check_embedding("embedding_backward", ctx, dtable, dout, ids);
  cpu::dispatch(dtable, [&](auto tag) {
    using T = decltype(tag);
    const std::int32_t* id = ids.data_as<std::int32_t>();
    const T* src = dout.data_as<T>();
    T* dst = dtable.data_as<T>();
    for (std::int64_t i = 0; i < ids.numel(); ++i)
      for (std::int64_t j = 0; j < dim; ++j)
        dst[id[i] * dim + j] += src[i * dim + j];
  });
}

}  // namespace hydra
