#include "kernels/core/stream.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <utility>

namespace hydra {

Stream::Stream(Device device) : device_(device) {
  if (device.is_cuda()) handle_ = cuda::stream_create(device.index);
}
Stream::~Stream() {
  if (handle_) cuda::stream_destroy(handle_);
}
Stream::Stream(Stream&& other) noexcept
    : device_(other.device_), handle_(std::exchange(other.handle_, nullptr)) {}
Stream& Stream::operator=(Stream&& other) noexcept {
  if (this != &other) {
    if (handle_) cuda::stream_destroy(handle_);
    device_ = other.device_;
    handle_ = std::exchange(other.handle_, nullptr);
  }
  return *this;
}
void Stream::synchronize() {
  if (handle_) cuda::stream_synchronize(handle_);
}

Event::Event(Device device) : device_(device) {
  if (device.is_cuda()) handle_ = cuda::event_create(device.index);
}
Event::~Event() {
  if (handle_) cuda::event_destroy(handle_);
}
void Event::record(Stream& stream) {
  if (handle_) cuda::event_record(handle_, stream.handle());
}
void Event::wait(Stream& stream) {
  if (handle_ && stream.handle()) cuda::stream_wait_event(stream.handle(), handle_);
}
void Event::synchronize() {
  if (handle_) cuda::event_synchronize(handle_);
}
bool Event::ready() { return handle_ ? cuda::event_query(handle_) : true; }

Stream& default_stream(Device device) {
  static auto* mutex = new std::mutex;
  static auto* streams = new std::map<Device, std::unique_ptr<Stream>>;
  std::lock_guard lock(*mutex);
  auto& s = (*streams)[device];
  if (!s) s = std::make_unique<Stream>(device);
  return *s;
}

}  // namespace hydra
