// OpenBLAS' thread control, declared here rather than through <cblas.h> so the actors library
// does not need OpenBLAS' include path; the symbol comes from libopenblas, which the kernels
// library links.
extern "C" void openblas_set_num_threads(int num_threads);

#include "actors/hydra.hpp"

namespace hydra {

void set_blas_threads(int threads) {
  openblas_set_num_threads(threads < 1 ? 1 : threads);
}

}  // namespace hydra
