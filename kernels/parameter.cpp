#include "kernels/parameter.hpp"

namespace hydra {

std::size_t Parameter::bytes() const {
  std::size_t n = (value.defined() ? value.nbytes() : 0) + (grad.defined() ? grad.nbytes() : 0);
  for (const Tensor& s : state)
    n += s.defined() ? s.nbytes() : 0;
  return n;
}

}  // namespace hydra
