// Embedding lookup (row gather) and its gradient (row scatter-add with atomics).
// Ids are validated by callers before CUDA use (the CPU backend throws instead); an id outside
// [0, vocab) never touches memory here: forward writes zeros, backward skips the row.
#include "kernels/cuda/cuda_common.cuh"

namespace hydra::cuda_impl {
namespace {

struct EmbeddingForward {
  float* out;
  const std::int32_t* ids;
  const float* table;
  std::int64_t vocab, dim;
  __device__ void operator()(std::int64_t i) const {
    const std::int64_t row = i / dim, j = i % dim;
    const std::int64_t id = ids[row];
    out[i] = (id >= 0 && id < vocab) ? table[id * dim + j] : 0.f;
  }
};

struct EmbeddingBackward {
  float* dtable;
  const std::int32_t* ids;
  const float* dout;
  std::int64_t vocab, dim;
  __device__ void operator()(std::int64_t i) const {
    const std::int64_t row = i / dim, j = i % dim;
    const std::int64_t id = ids[row];
    if (id >= 0 && id < vocab) atomicAdd(dtable + id * dim + j, dout[i]);
  }
};

// Checks shared by both directions; returns dim. `rows` is viewed as [ids.numel(), dim].
std::int64_t check_embedding(const char* op, const Tensor& table, const Tensor& rows,
                             const Tensor& ids) {
  op_checks::dtype_in(op, table, {DType::f32});
  op_checks::dtype_in(op, rows, {DType::f32});
  op_checks::dtype_in(op, ids, {DType::i32});
  op_checks::that(table.rank() == 2, op, "table " + table.str() + " must be [vocab, dim]");
  const std::int64_t dim = table.dim(1);
  op_checks::numel_is(op, rows, ids.numel() * dim, "rows");
  check_disjoint(op, table, rows);
  check_disjoint(op, ids, rows);
  check_disjoint(op, ids, table);
  return dim;
}

}  // namespace

void CudaBackend::embedding_forward(Tensor& out, const Tensor& ids, const Tensor& table,
                                    ExecContext& ctx) {
  const char* op = "embedding_forward";
  cudaStream_t s = begin(op, ctx, {&out, &ids, &table});
  const std::int64_t dim = check_embedding(op, table, out, ids);
  launch_for_each(out.numel(), s, op,
                  EmbeddingForward{f32(out), i32(ids), f32(table), table.dim(0), dim});
}

void CudaBackend::embedding_backward(Tensor& dtable, const Tensor& dout, const Tensor& ids,
                                     ExecContext& ctx) {
  const char* op = "embedding_backward";
  cudaStream_t s = begin(op, ctx, {&dtable, &dout, &ids});
  const std::int64_t dim = check_embedding(op, dtable, dout, ids);
  launch_for_each(dout.numel(), s, op,
                  EmbeddingBackward{f32(dtable), i32(ids), f32(dout), dtable.dim(0), dim});
}

}  // namespace hydra::cuda_impl
