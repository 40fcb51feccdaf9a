// A cluster node: hosts this machine's devices for a coordinator (a training program run with
// RuntimeOptions::nodes, e.g. `build/examples/train_cluster --nodes HOST:PORT`).
//
//   printf 'my long random secret' > /tmp/hydra.secret && chmod 600 /tmp/hydra.secret
//   build/examples/hydra_node --listen 127.0.0.1:7000 --secret-file /tmp/hydra.secret --devices 2
//
// Prints "hydra node listening on HOST:PORT (N devices)" once it accepts coordinators (port 0:
// the OS picks one). The secret comes from --secret-file or the HYDRA_NODE_SECRET environment
// variable, never from the command line (other users can read that). Binds loopback unless
// --listen names another address; refusals (wrong secret, bad MAC, malformed messages) are
// logged on stderr.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "actors/cluster/node.hpp"
#include "actors/cluster/remote_device.hpp"
#include "examples/example_cli.hpp"

namespace {

struct Options {
  std::string listen = "127.0.0.1:0";
  std::string secret_file;
  long long devices = 1;
  long long device_memory_mib = 0;
  double exit_after = 0;
  long long crash_after_tasks = 0;
};

bool parse(int argc, char** argv, Options& o) {
  examples::Flags f("hydra_node", "Hosts this machine's devices for a Hydra coordinator.");
  f.add_string("--listen", &o.listen, "HOST:PORT",
               "address to accept coordinators on (port 0: any free port, printed)");
  f.add_string("--secret-file", &o.secret_file, "PATH",
               "file holding the shared secret (default: $HYDRA_NODE_SECRET)");
  f.add_int("--devices", &o.devices, 1, 64, "N", "virtual CPU devices cpu:0..N-1 to host");
  f.add_int("--device-memory", &o.device_memory_mib, 0, 1 << 20, "MiB",
            "memory budget of every device (0: unlimited)");
  f.add_double("--exit-after", &o.exit_after, 0, 1e7, "SECONDS",
               "shut down after this long (0: run until killed)");
  f.add_int("--crash-after-tasks", &o.crash_after_tasks, 0, 1 << 30, "N",
            "fault injection for tests: kill this process (SIGKILL) when the N-th task arrives");
  return f.parse(argc, argv);
}

std::string read_secret(const Options& o) {
  std::string secret;
  if (!o.secret_file.empty()) {
    std::ifstream in(o.secret_file, std::ios::binary);
    if (!in) throw examples::UsageError("--secret-file: cannot read '" + o.secret_file + "'");
    std::stringstream ss;
    ss << in.rdbuf();
    secret = ss.str();
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r'))
      secret.pop_back();
  } else if (const char* env = std::getenv("HYDRA_NODE_SECRET")) {
    secret = env;
  }
  if (secret.empty())
    throw examples::UsageError(
        "no shared secret: give --secret-file PATH or set HYDRA_NODE_SECRET (non-empty)");
  return secret;
}

}  // namespace

int main(int argc, char** argv) {
  return examples::run_program<Options>("hydra_node", argc, argv, parse, [](const Options& o) {
    hydra::cluster::NodeOptions n;
    const auto colon = o.listen.rfind(':');
    if (colon == std::string::npos || colon == 0)
      throw examples::UsageError("--listen: expected HOST:PORT, got '" + o.listen + "'");
    n.host = o.listen.substr(0, colon);
    const std::string port = o.listen.substr(colon + 1);
    char* end = nullptr;
    const long p = std::strtol(port.c_str(), &end, 10);
    if (port.empty() || *end != '\0' || p < 0 || p > 65535)
      throw examples::UsageError("--listen: port must be in [0, 65535], got '" + port + "'");
    n.port = static_cast<std::uint16_t>(p);
    n.secret = read_secret(o);
    n.devices.clear();
    for (long long i = 0; i < o.devices; ++i)
      n.devices.push_back({hydra::Device::cpu(static_cast<int>(i)),
                           static_cast<std::size_t>(o.device_memory_mib) << 20});
    n.exit_after_seconds = o.exit_after;
    n.crash_after_tasks = static_cast<int>(o.crash_after_tasks);
    hydra::cluster::run_node(n);
    return 0;
  });
}
