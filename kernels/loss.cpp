#include "kernels/loss.hpp"

#include <cmath>

#include "kernels/backend.hpp"

namespace hydra {

LossResult softmax_cross_entropy(ExecContext& ctx, const Tensor& logits, const Tensor& labels,
                                 bool with_grad) {
  const std::string op = "softmax_cross_entropy";
  check(logits.defined() && logits.rank() >= 1 && logits.dim(-1) > 0,
        op + ": logits must be [..., classes], got " + logits.str());
  const std::int64_t classes = logits.dim(-1), n = logits.numel() / classes;
  const Shape rows(logits.shape().begin(), logits.shape().end() - 1);
  check(labels.defined() && labels.dtype() == DType::i32 &&
            (labels.shape() == rows || labels.shape() == Shape{n}),
        op + ": labels must be i32 " + shape_str(rows) + " for logits " + logits.str() + ", got " +
            labels.str());
  check(n > 0, op + ": no rows in " + logits.str());
  // Labels are validated (and the correct count computed) on the host. Device-to-host copies
  // run on the device's default stream, so finish the work queued on ctx.stream first.
  if (!labels.device().host_accessible()) ctx.synchronize();
  const std::vector<std::int32_t> host_labels = labels.to_ints();
  for (std::int64_t i = 0; i < n; ++i)
    if (host_labels[i] < 0 || host_labels[i] >= classes)
      throw Error(op + ": label " + std::to_string(host_labels[i]) + " at row " +
                  std::to_string(i) + " is outside [0, " + std::to_string(classes) + ")");

  Backend& be = ctx.backend();
  const Tensor logits2 = logits.view({n, classes}), labels1 = labels.view({n});
  Tensor losses = Tensor::empty({n}, logits.dtype(), ctx.device);
  Tensor probs = Tensor::empty({n, classes}, logits.dtype(), ctx.device);
  be.cross_entropy_forward(losses, probs, logits2, labels1, ctx);

  LossResult r;
  r.count = n;
  r.loss = be.sum(losses, ctx) / static_cast<double>(n);
  if (std::isnan(r.loss)) throw Error(op + ": loss is NaN");
  if (std::isinf(r.loss)) throw Error(op + ": loss is inf");
  Tensor pred = Tensor::empty({n}, DType::i32, ctx.device);
  be.argmax_rows(pred, logits2, ctx);
  ctx.synchronize();
  const std::vector<std::int32_t> host_pred = pred.to_ints();
  for (std::int64_t i = 0; i < n; ++i)
    r.correct += host_pred[i] == host_labels[i];
  if (with_grad) {
    r.dlogits = Tensor::empty(logits.shape(), logits.dtype(), ctx.device);
    Tensor d2 = r.dlogits.view({n, classes});
    be.cross_entropy_backward(d2, probs, labels1, 1.0 / static_cast<double>(n), ctx);
  }
  return r;
}

}  // namespace hydra
