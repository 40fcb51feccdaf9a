#pragma once
// Thin, exception-throwing wrappers over the CUDA runtime. Everything here compiles without CUDA
// (HYDRA_WITH_CUDA undefined): then cuda_device_count() is 0 and the other calls throw.
#include <cstddef>
#include <string>

namespace hydra::cuda {

// Number of usable GPUs. 0 when built without CUDA or when the driver reports no device
// (cudaErrorInsufficientDriver = 35 and cudaErrorNoDevice = 100 both mean "no GPU").
// The first call prints one line saying which backend will be used.
int device_count();
bool available();

void set_device(int device);
void* malloc_device(std::size_t bytes, int device);
void free_device(void* p, int device);
void* malloc_pinned(std::size_t bytes);
void free_pinned(void* p);
std::size_t total_memory(int device);

using StreamHandle = void*;  // cudaStream_t
using EventHandle = void*;   // cudaEvent_t
StreamHandle stream_create(int device);
void stream_destroy(StreamHandle s);
void stream_synchronize(StreamHandle s);
EventHandle event_create(int device);
void event_destroy(EventHandle e);
void event_record(EventHandle e, StreamHandle s);
void stream_wait_event(StreamHandle s, EventHandle e);
void event_synchronize(EventHandle e);
bool event_query(EventHandle e);  // true when complete

// Asynchronous copy of `bytes` between any two pointers (host, pinned or device) on stream `s`.
void memcpy_async(void* dst, const void* src, std::size_t bytes, StreamHandle s);
void memset_async(void* dst, int value, std::size_t bytes, StreamHandle s);

// Throws hydra::Error("<what>: <cuda error string>") when `status` (a cudaError_t) is not success.
void check_status(int status, const char* what);

}  // namespace hydra::cuda
