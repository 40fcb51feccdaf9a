#pragma once
// Shared by build/examples/hydra_node and `hydra node`: the node's flags, and the shared secret
// read from a file or $HYDRA_NODE_SECRET (never from the command line: other users can read it).
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "actors/cluster/node.hpp"
#include "examples/example_cli.hpp"

namespace examples {

// The secret in `file` (trailing newlines dropped), else $HYDRA_NODE_SECRET. `flag` names the
// flag in errors.
inline std::string read_node_secret(const std::string& file, const std::string& flag) {
  std::string secret;
  if (!file.empty()) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw UsageError(flag + ": cannot read '" + file + "'");
    std::stringstream ss;
    ss << in.rdbuf();
    secret = ss.str();
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r'))
      secret.pop_back();
  } else if (const char* env = std::getenv("HYDRA_NODE_SECRET")) {
    secret = env;
  }
  if (secret.empty())
    throw UsageError("no shared secret: give " + flag +
                     " PATH or set HYDRA_NODE_SECRET (non-empty)");
  return secret;
}

// "A,B,C" -> {"A", "B", "C"} (the coordinator's --nodes).
inline std::vector<std::string> split_nodes(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream ss(list);
  for (std::string s; std::getline(ss, s, ',');) {
    if (s.empty()) throw UsageError("--nodes: empty entry in '" + list + "' (HOST:PORT,...)");
    out.push_back(s);
  }
  return out;
}

// Parses the node's flags (argv[0]: the program name) and serves; returns the exit status.
inline int node_main(const char* program, int argc, char** argv) {
  struct Options {
    std::string listen = "127.0.0.1:0";
    std::string secret_file, tls_cert, tls_key, tls_ca;
    long long devices = 1;
    long long device_memory_mib = 0;
    double exit_after = 0;
    double link_timeout = 3;
    long long crash_after_tasks = 0;
  };
  auto parse = [program](int ac, char** av, Options& o) {
    Flags f(program,
            "Hosts this machine's devices for Hydra coordinators (RuntimeOptions::nodes).");
    f.add_string("--listen", &o.listen, "HOST:PORT",
                 "address to accept coordinators on; loopback unless told otherwise (port 0: any "
                 "free port, printed)");
    f.add_string("--secret-file", &o.secret_file, "PATH",
                 "file holding the shared secret (default: $HYDRA_NODE_SECRET)");
    f.add_string("--tls-cert", &o.tls_cert, "PATH",
                 "mutual TLS (with --tls-key and --tls-ca): this node's certificate (PEM); the "
                 "port then speaks TLS only");
    f.add_string("--tls-key", &o.tls_key, "PATH", "its private key (PEM, unencrypted)");
    f.add_string("--tls-ca", &o.tls_ca, "PATH",
                 "the CA certificate (PEM) that must have signed a coordinator's certificate");
    f.add_int("--devices", &o.devices, 1, 64, "N", "virtual CPU devices cpu:0..N-1 to host");
    f.add_int("--device-memory", &o.device_memory_mib, 0, 1 << 20, "MiB",
              "memory budget of every device (0: unlimited)");
    f.add_double("--link-timeout", &o.link_timeout, 0.1, 3600, "SECONDS",
                 "a coordinator link silent this long is closed (default 3; give the coordinator "
                 "the same --node-link-timeout)");
    f.add_double("--exit-after", &o.exit_after, 0, 1e7, "SECONDS",
                 "shut down after this long (0: run until killed)");
    f.add_int("--crash-after-tasks", &o.crash_after_tasks, 0, 1 << 30, "N",
              "fault injection for tests: kill this process (SIGKILL) when the N-th task arrives");
    return f.parse(ac, av);
  };
  return run_program<Options>(program, argc, argv, parse, [](const Options& o) {
    hydra::cluster::NodeOptions n;
    const auto colon = o.listen.rfind(':');
    if (colon == std::string::npos || colon == 0)
      throw UsageError("--listen: expected HOST:PORT, got '" + o.listen + "'");
    n.host = o.listen.substr(0, colon);
    const std::string port = o.listen.substr(colon + 1);
    char* end = nullptr;
    const long p = std::strtol(port.c_str(), &end, 10);
    if (port.empty() || *end != '\0' || p < 0 || p > 65535)
      throw UsageError("--listen: port must be in [0, 65535], got '" + port + "'");
    n.port = static_cast<std::uint16_t>(p);
    n.secret = read_node_secret(o.secret_file, "--secret-file");
    n.tls = {o.tls_cert, o.tls_key, o.tls_ca};
    if (n.tls.enabled() && (o.tls_cert.empty() || o.tls_key.empty() || o.tls_ca.empty()))
      throw UsageError("--tls-cert, --tls-key and --tls-ca go together");
    n.devices.clear();
    for (long long i = 0; i < o.devices; ++i)
      n.devices.push_back({hydra::Device::cpu(static_cast<int>(i)),
                           static_cast<std::size_t>(o.device_memory_mib) << 20});
    n.exit_after_seconds = o.exit_after;
    n.link_timeout_seconds = o.link_timeout;
    n.crash_after_tasks = static_cast<int>(o.crash_after_tasks);
    hydra::cluster::run_node(n);
    return 0;
  });
}

}  // namespace examples
