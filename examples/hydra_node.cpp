// A cluster node: hosts this machine's devices for a coordinator (a training program run with
// RuntimeOptions::nodes, e.g. `build/examples/hydra run FILE --nodes HOST:PORT`). The same as
// `build/examples/hydra node`.
//
//   head -c 32 /dev/urandom | base64 > hydra.secret && chmod 600 hydra.secret
//   build/examples/hydra_node --listen 127.0.0.1:7000 --secret-file hydra.secret --devices 2
//
// Prints "hydra node listening on HOST:PORT (N devices)" once it accepts coordinators (port 0:
// the OS picks one). Refusals (wrong secret, bad MAC, malformed messages) are logged on stderr.
#include "examples/node_cli.hpp"

int main(int argc, char** argv) {
  return examples::node_main("hydra_node", argc, argv);
}
