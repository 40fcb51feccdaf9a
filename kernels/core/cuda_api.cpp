#include "kernels/core/cuda_api.hpp"

#include <cstdio>
#include <mutex>

#include "kernels/core/error.hpp"

#ifdef HYDRA_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace hydra::cuda {

#ifdef HYDRA_WITH_CUDA

void check_status(int status, const char* what) {
  if (status != cudaSuccess)
    throw Error(std::string(what) + ": " + cudaGetErrorString(static_cast<cudaError_t>(status)));
}

int device_count() {
  static int count = [] {
    int n = 0;
    cudaError_t st = cudaGetDeviceCount(&n);
    if (st != cudaSuccess) {
      (void)cudaGetLastError();  // clear the sticky error
      std::fprintf(stderr, "hydra: no CUDA GPU available (%s); using the CPU backend\n",
                   cudaGetErrorString(st));
      return 0;
    }
    if (n == 0)
      std::fprintf(stderr, "hydra: no CUDA GPU found; using the CPU backend\n");
    else
      std::fprintf(stderr, "hydra: %d CUDA GPU(s) found; CUDA backend enabled\n", n);
    return n;
  }();
  return count;
}

void set_device(int device) { check_status(cudaSetDevice(device), "cudaSetDevice"); }

void* malloc_device(std::size_t bytes, int device) {
  set_device(device);
  void* p = nullptr;
  check_status(cudaMalloc(&p, bytes), "cudaMalloc");
  return p;
}
void free_device(void* p, int device) {
  set_device(device);
  check_status(cudaFree(p), "cudaFree");
}
void* malloc_pinned(std::size_t bytes) {
  void* p = nullptr;
  check_status(cudaHostAlloc(&p, bytes, cudaHostAllocPortable), "cudaHostAlloc");
  return p;
}
void free_pinned(void* p) { check_status(cudaFreeHost(p), "cudaFreeHost"); }
std::size_t total_memory(int device) {
  set_device(device);
  std::size_t free_b = 0, total_b = 0;
  check_status(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
  return total_b;
}

StreamHandle stream_create(int device) {
  set_device(device);
  cudaStream_t s;
  check_status(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
  return s;
}
void stream_destroy(StreamHandle s) { cudaStreamDestroy(static_cast<cudaStream_t>(s)); }
void stream_synchronize(StreamHandle s) {
  check_status(cudaStreamSynchronize(static_cast<cudaStream_t>(s)), "cudaStreamSynchronize");
}
EventHandle event_create(int device) {
  set_device(device);
  cudaEvent_t e;
  check_status(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate");
  return e;
}
void event_destroy(EventHandle e) { cudaEventDestroy(static_cast<cudaEvent_t>(e)); }
void event_record(EventHandle e, StreamHandle s) {
  check_status(cudaEventRecord(static_cast<cudaEvent_t>(e), static_cast<cudaStream_t>(s)),
               "cudaEventRecord");
}
void stream_wait_event(StreamHandle s, EventHandle e) {
  check_status(
      cudaStreamWaitEvent(static_cast<cudaStream_t>(s), static_cast<cudaEvent_t>(e), 0),
      "cudaStreamWaitEvent");
}
void event_synchronize(EventHandle e) {
  check_status(cudaEventSynchronize(static_cast<cudaEvent_t>(e)), "cudaEventSynchronize");
}
bool event_query(EventHandle e) {
  cudaError_t st = cudaEventQuery(static_cast<cudaEvent_t>(e));
  if (st == cudaErrorNotReady) return false;
  check_status(st, "cudaEventQuery");
  return true;
}
void memcpy_async(void* dst, const void* src, std::size_t bytes, StreamHandle s) {
  check_status(
      cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, static_cast<cudaStream_t>(s)),
      "cudaMemcpyAsync");
}
void memset_async(void* dst, int value, std::size_t bytes, StreamHandle s) {
  check_status(cudaMemsetAsync(dst, value, bytes, static_cast<cudaStream_t>(s)),
               "cudaMemsetAsync");
}

#else  // built without CUDA

[[noreturn]] static void no_cuda() { throw Error("Hydra was built without the CUDA backend"); }
void check_status(int status, const char* what) {
  if (status != 0) throw Error(std::string(what) + ": CUDA error " + std::to_string(status));
}
int device_count() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::fprintf(stderr, "hydra: built without CUDA; using the CPU backend\n");
  });
  return 0;
}
void set_device(int) { no_cuda(); }
void* malloc_device(std::size_t, int) { no_cuda(); }
void free_device(void*, int) { no_cuda(); }
void* malloc_pinned(std::size_t) { no_cuda(); }
void free_pinned(void*) { no_cuda(); }
std::size_t total_memory(int) { no_cuda(); }
StreamHandle stream_create(int) { no_cuda(); }
void stream_destroy(StreamHandle) {}
void stream_synchronize(StreamHandle) { no_cuda(); }
EventHandle event_create(int) { no_cuda(); }
void event_destroy(EventHandle) {}
void event_record(EventHandle, StreamHandle) { no_cuda(); }
void stream_wait_event(StreamHandle, EventHandle) { no_cuda(); }
void event_synchronize(EventHandle) { no_cuda(); }
bool event_query(EventHandle) { no_cuda(); }
void memcpy_async(void*, const void*, std::size_t, StreamHandle) { no_cuda(); }
void memset_async(void*, int, std::size_t, StreamHandle) { no_cuda(); }

#endif

bool available() { return device_count() > 0; }

}  // namespace hydra::cuda
