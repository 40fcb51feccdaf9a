#pragma once
// A TCP relay for tests: it listens on 127.0.0.1 (an OS-chosen port) and forwards every
// connection to 127.0.0.1:target, both ways, on a thread of its own. The test puts it between a
// coordinator and a node and then breaks the link under the running processes:
//   - cut: every connection is reset (RST) and new ones are accepted and reset at once (the link
//     is down: connection refused);
//   - freeze: nothing is forwarded any more, but the sockets stay open (packets black-holed, no
//     FIN, no RST); bytes that arrive are dropped, new connections are accepted and never served;
//   - restore: frozen connections are closed and new connections are forwarded again.
// Either break can be armed to trip by itself when the client (coordinator) has sent
// `after_bytes` and then sends a chunk of at least `min_chunk` bytes (a task's request, not a
// heartbeat): that chunk is never delivered, so the task is in flight when the link breaks.
// Every wait is bounded; the destructor stops the thread and closes every socket.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kernels/core/error.hpp"

namespace hydra::test {

class TcpRelay {
 public:
  enum class Break { none, cut, freeze };

  explicit TcpRelay(int target_port) : target_(target_port) {
    listen_ = ::socket(AF_INET, SOCK_STREAM, 0);
    check(listen_ >= 0, "relay: socket");
    const int one = 1;
    ::setsockopt(listen_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a = loopback(0);
    check(::bind(listen_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0, "relay: bind");
    check(::listen(listen_, 16) == 0, "relay: listen");
    socklen_t len = sizeof a;
    ::getsockname(listen_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    nonblocking(listen_);
    thread_ = std::thread([this] { loop(); });
  }
  ~TcpRelay() {
    stop_ = true;
    thread_.join();
    for (Pair& p : pairs_)
      close_pair(p, false);
    ::close(listen_);
  }
  TcpRelay(const TcpRelay&) = delete;
  TcpRelay& operator=(const TcpRelay&) = delete;

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // Arms a break that trips by itself (see above).
  void arm(Break b, std::size_t after_bytes, std::size_t min_chunk) {
    std::lock_guard lock(mu_);
    armed_ = b;
    after_ = sent_total_ + after_bytes;
    min_chunk_ = min_chunk;
  }
  // Restores forwarding for new connections (frozen ones are closed).
  void restore() {
    std::lock_guard lock(mu_);
    for (Pair& p : pairs_)
      close_pair(p, false);
    pairs_.clear();
    mode_ = Break::none;
    armed_ = Break::none;
    restored_ = true;
    to_client_since_restore_ = 0;
  }

  bool tripped() const { return tripped_; }
  // Waits at most `seconds` for `pred` (polled every 20 ms).
  template <class F>
  static bool wait_for(F pred, double seconds) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (!pred()) {
      if (std::chrono::steady_clock::now() >= until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
  }
  // Frozen: seconds from the trip until the coordinator's and the node's side of the frozen
  // connection closed it (negative: not yet).
  double client_gave_up_after() const { return client_gave_up_; }
  double node_gave_up_after() const { return node_gave_up_; }
  std::uint64_t accepted() const { return accepted_; }
  // Bytes the node sent to the coordinator since restore() (results, heartbeats).
  std::uint64_t to_client_since_restore() const { return to_client_since_restore_; }

 private:
  struct Pair {
    int client = -1, node = -1;  // node: -1 while frozen or cut (never connected)
    std::string to_client, to_node;
    bool frozen = false;
    bool client_eof = false, node_eof = false;
  };

  static sockaddr_in loopback(int port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
  }
  static void nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }
  static void reset(int fd) {  // close with RST instead of FIN
    linger l{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(fd);
  }
  static void close_pair(Pair& p, bool rst) {
    for (int* fd : {&p.client, &p.node})
      if (*fd >= 0) {
        if (rst)
          reset(*fd);
        else
          ::close(*fd);
        *fd = -1;
      }
  }
  double since_trip() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - trip_time_).count();
  }

  void trip() {
    tripped_ = true;
    trip_time_ = std::chrono::steady_clock::now();
    mode_ = armed_;
    armed_ = Break::none;
    if (mode_ == Break::cut) {
      for (Pair& p : pairs_)
        close_pair(p, true);  // (dropped from pairs_ by the loop)
    } else {
      for (Pair& p : pairs_) {
        p.frozen = true;
        p.to_client.clear();
        p.to_node.clear();
      }
    }
  }

  void accept_new() {
    for (;;) {
      const int c = ::accept(listen_, nullptr, nullptr);
      if (c < 0) return;
      ++accepted_;
      nonblocking(c);
      if (mode_ == Break::cut) {
        reset(c);
        continue;
      }
      Pair p;
      p.client = c;
      if (mode_ == Break::freeze) {
        p.frozen = true;
      } else {
        p.node = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a = loopback(target_);
        if (p.node < 0 || ::connect(p.node, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
          close_pair(p, true);  // the node is not there: refuse
          continue;
        }
        nonblocking(p.node);
      }
      pairs_.push_back(std::move(p));
    }
  }

  // Reads what `fd` has; false at end of stream or on an error.
  static bool drain(int fd, std::string& into) {
    char buf[65536];
    for (;;) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0) {
        into.append(buf, static_cast<std::size_t>(n));
        if (into.size() > (1u << 22)) return true;  // backpressure: write first
        continue;
      }
      if (n == 0) return false;
      return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    }
  }
  static bool flush(int fd, std::string& out) {
    while (!out.empty()) {
      const ssize_t n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        out.erase(0, static_cast<std::size_t>(n));
        continue;
      }
      return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
    }
    return true;
  }

  void step(Pair& p) {
    if (p.frozen) {  // black hole: read and drop, note when a side gave up
      std::string sink;
      if (p.client >= 0 && !p.client_eof && !drain(p.client, sink)) {
        p.client_eof = true;
        if (client_gave_up_ < 0 && tripped_) client_gave_up_ = since_trip();
      }
      sink.clear();
      if (p.node >= 0 && !p.node_eof && !drain(p.node, sink)) {
        p.node_eof = true;
        if (node_gave_up_ < 0 && tripped_) node_gave_up_ = since_trip();
      }
      return;
    }
    if (p.client < 0 || p.node < 0) return;  // reset by a cut
    std::string in;
    const bool client_open = drain(p.client, in);
    if (!in.empty()) {
      if (armed_ != Break::none && sent_total_ + in.size() > after_ && in.size() >= min_chunk_) {
        trip();  // this chunk is never delivered
        return;
      }
      sent_total_ += in.size();
      p.to_node += in;
    }
    std::string back;
    const bool node_open = drain(p.node, back);
    if (restored_) to_client_since_restore_ += back.size();
    p.to_client += back;
    const bool ok = flush(p.node, p.to_node) && flush(p.client, p.to_client);
    if (!client_open || !node_open || !ok) {
      flush(p.client, p.to_client);  // what the node said last still goes
      close_pair(p, false);
    }
  }

  void loop() {
    while (!stop_) {
      std::vector<pollfd> fds{{listen_, POLLIN, 0}};
      {
        std::lock_guard lock(mu_);
        for (const Pair& p : pairs_) {
          if (p.client >= 0 && !p.client_eof)
            fds.push_back(
                {p.client, static_cast<short>(POLLIN | (p.to_client.empty() ? 0 : POLLOUT)), 0});
          if (p.node >= 0 && !p.node_eof)
            fds.push_back(
                {p.node, static_cast<short>(POLLIN | (p.to_node.empty() ? 0 : POLLOUT)), 0});
        }
      }
      ::poll(fds.data(), fds.size(), 20);
      std::lock_guard lock(mu_);
      accept_new();
      for (Pair& p : pairs_)
        step(p);
      std::vector<Pair> keep;
      for (Pair& p : pairs_)
        if (p.client >= 0 || p.node >= 0) keep.push_back(std::move(p));
      pairs_.swap(keep);
    }
  }

  int target_, listen_ = -1, port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<Pair> pairs_;
  std::atomic<bool> stop_{false}, tripped_{false};
  Break mode_ = Break::none, armed_ = Break::none;
  std::size_t after_ = 0, min_chunk_ = 0, sent_total_ = 0;
  bool restored_ = false;
  std::chrono::steady_clock::time_point trip_time_;
  std::atomic<double> client_gave_up_{-1}, node_gave_up_{-1};
  std::atomic<std::uint64_t> accepted_{0}, to_client_since_restore_{0};
};

}  // namespace hydra::test
