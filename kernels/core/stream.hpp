#pragma once
// An ordered queue of work on one device. On CUDA devices a Stream owns a cudaStream_t and work
// is asynchronous; on host and virtual CPU devices work runs inline and a Stream is a marker.
// Events order work between streams (e.g. a prefetch stream and a compute stream).
#include "kernels/core/cuda_api.hpp"
#include "kernels/core/device.hpp"

namespace hydra {

class Stream {
 public:
  explicit Stream(Device device);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  Stream(Stream&& other) noexcept;
  Stream& operator=(Stream&& other) noexcept;

  Device device() const { return device_; }
  cuda::StreamHandle handle() const { return handle_; }  // nullptr for CPU streams
  void synchronize();

 private:
  Device device_;
  cuda::StreamHandle handle_ = nullptr;
};

class Event {
 public:
  explicit Event(Device device);
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  void record(Stream& stream);
  void wait(Stream& stream);  // work queued on `stream` after this call waits for the event
  void synchronize();
  bool ready();

 private:
  Device device_;
  cuda::EventHandle handle_ = nullptr;
};

// A synchronous stream for `device` shared by code that has none of its own (one per device).
Stream& default_stream(Device device);

}  // namespace hydra
