// Cluster nodes as real processes on loopback (build/examples/hydra_node): jobs trained across
// local and remote devices match a one-process run bitwise, a node killed (SIGKILL) mid-run loses
// no job, a wrong secret is refused, and garbage or forged messages are survived. Every wait is
// bounded; every node process gets --exit-after so none outlives the test binary for long.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <caf/io/all.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "actors/cluster/protocol.hpp"
#include "actors/cluster/remote_device.hpp"
#include "actors/cluster/remote_task.hpp"
#include "actors/cluster/wire.hpp"
#include "actors/hydra.hpp"
#include "kernels/layers/all.hpp"
#include "kernels/model_spec.hpp"
#include "kernels/model_zoo.hpp"
#include "kernels/optim/sgd.hpp"
#include "kernels/random.hpp"
#include "runtime/data/dataset.hpp"

using namespace hydra;

namespace {

const char* const secret = "test-secret-4f1d9a";

// A node process; its stderr goes to a log file the test reads.
class NodeProcess {
 public:
  explicit NodeProcess(const std::string& tag, std::vector<std::string> extra = {},
                       const std::string& listen = "127.0.0.1:0") {
    log_ = (std::filesystem::temp_directory_path() /
            ("hydra_test_node_" + tag + "_" + std::to_string(::getpid()) + ".log"))
               .string();
    std::vector<std::string> args = {HYDRA_NODE_PROGRAM, "--listen", listen, "--exit-after", "120"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (std::string& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    std::string env_secret = std::string("HYDRA_NODE_SECRET=") + secret;
    std::vector<char*> envp = {env_secret.data(), nullptr};
    int out[2];
    REQUIRE(::pipe(out) == 0);
    const int err = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE(err >= 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {  // only async-signal-safe calls until exec
      ::dup2(out[1], 1);
      ::dup2(err, 2);
      ::close(out[0]);
      ::close(out[1]);
      ::close(err);
      ::execve(argv[0], argv.data(), envp.data());
      ::_exit(127);
    }
    ::close(out[1]);
    ::close(err);
    fd_ = out[0];
    // "hydra node listening on 127.0.0.1:PORT (N devices)", within 30 s.
    std::string line;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < until) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      char buf[256];
      const ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<std::size_t>(n));
    }
    const auto at = line.find("listening on ");
    REQUIRE_MESSAGE(at != std::string::npos,
                    (std::string("node did not start: ") + line + " / " + log()));
    const auto colon = line.find(':', at);
    port_ = std::atoi(line.c_str() + colon + 1);
    REQUIRE(port_ > 0);
  }
  ~NodeProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(fd_);
    std::error_code ec;
    std::filesystem::remove(log_, ec);
  }
  NodeProcess(const NodeProcess&) = delete;
  NodeProcess& operator=(const NodeProcess&) = delete;

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  // Whether the process is still running (reaps it when it ended).
  bool alive() {
    if (pid_ <= 0) return false;
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) pid_ = -1;
    return pid_ > 0;
  }
  std::string log() const {
    std::ifstream in(log_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  // Waits (at most `seconds`) until the log contains `text`.
  bool log_contains(const std::string& text, double seconds = 10) const {
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    for (;;) {  // at least once
      if (log().find(text) != std::string::npos) return true;
      if (std::chrono::steady_clock::now() >= until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  int port_ = 0;
  std::string log_;
};

// Two classes: the sign of the first feature.
DataSplits synthetic_data(std::int64_t n, std::int64_t features, std::uint64_t seed) {
  std::vector<float> x(static_cast<std::size_t>(n * features));
  for (std::size_t i = 0; i < x.size(); ++i)
    x[i] = 2.0f * uniform01(seed, i) - 1.0f;
  std::vector<std::int32_t> y(static_cast<std::size_t>(n));
  for (std::int64_t r = 0; r < n; ++r)
    y[static_cast<std::size_t>(r)] = x[static_cast<std::size_t>(r * features)] > 0 ? 1 : 0;
  Dataset all(Tensor::from_vector(x, {n, features}), Tensor::from_ints(y, {n}));
  auto [train, val] = all.split(n * 3 / 4);
  return {train, val};
}

using Params = std::map<std::string, std::vector<std::vector<float>>>;

// Four small jobs cut into two shards each (so shard state and activations cross the link).
std::vector<JobSpec> cluster_jobs(Params& out, std::mutex& mu, std::int64_t steps = 24) {
  std::vector<JobSpec> jobs;
  for (int i = 0; i < 4; ++i) {
    JobSpec j;
    j.name = "j" + std::to_string(i);
    j.model_spec = "mlp 16 32,32 2";
    const double lr = 0.05 * (i + 1);
    j.make_optimizer = [lr] { return std::make_unique<SGD>(lr, 0.9); };
    j.data = [] { return synthetic_data(512, 16, 7); };
    j.data_key = "cluster-synthetic";
    j.batch_size = 16;
    j.max_steps = steps;
    j.seed = static_cast<std::uint64_t>(i + 1);
    j.eval_every = 8;
    // Every kind of remote task: fused backward (j0), clipping with separate update tasks (j1),
    // micro-batches accumulating gradients (j2), sharded data-parallel updates of two replicas
    // over owned parameter slices (j3).
    if (i == 1) j.clip_grad_norm = 0.5;
    if (i == 2) j.micro_batches = 2;
    if (i == 3) j.replicas = 2, j.sharded_data_parallel = true;
    j.on_finish = [&out, &mu, name = j.name](Model& m) {
      std::vector<std::vector<float>> v;
      for (Parameter* p : m.parameters())
        v.push_back(p->value.to_floats());
      std::lock_guard lock(mu);
      out[name] = v;
    };
    jobs.push_back(j);
  }
  return jobs;
}

RunReport run_jobs(Params& out, const RuntimeOptions& base, std::int64_t steps = 24) {
  std::mutex mu;
  RuntimeOptions o = base;
  o.shards = 2;
  RunReport r = run(cluster_jobs(out, mu, steps), o);
  for (const JobResult& j : r.jobs)
    CHECK_MESSAGE(j.status == JobStatus::done, (j.name + ": " + j.error));
  return r;
}

Params reference(std::int64_t steps = 24) {
  Params p;
  RuntimeOptions o;
  o.devices = {{Device::cpu(0), 0}, {Device::cpu(1), 0}};
  run_jobs(p, o, steps);
  return p;
}

void check_same(const Params& got, const Params& want) {
  REQUIRE(got.size() == want.size());
  for (const auto& [name, values] : want) {
    REQUIRE(got.count(name) == 1);
    REQUIRE(got.at(name).size() == values.size());
    for (std::size_t i = 0; i < values.size(); ++i)
      CHECK_MESSAGE(got.at(name)[i] == values[i], (name + " parameter " + std::to_string(i)));
  }
}

RuntimeOptions cluster_options(std::vector<std::string> nodes, bool local_device) {
  RuntimeOptions o;
  if (local_device) o.devices = {{Device::cpu(0), 0}};
  o.nodes = std::move(nodes);
  o.node_secret = secret;
  return o;
}

}  // namespace

TEST_CASE("cluster: jobs trained on a local and a remote device match one process bitwise") {
  const Params want = reference();
  NodeProcess node("bitwise");
  Params got;
  RunReport r = run_jobs(got, cluster_options({node.address()}, true));
  check_same(got, want);
  REQUIRE(r.links.size() == 1);
  const LinkStats& l = r.links[0];
  CHECK(l.device == node.address() + "/cpu:0");
  CHECK(l.tasks > 0);  // the node really ran shard tasks
  CHECK(l.bytes_sent > 0);
  CHECK(l.bytes_received > 0);
  CHECK(l.requeued == 0);
  bool traced = false;  // its tasks appear in the trace under the remote device's name
  for (const TraceEvent& e : r.trace)
    traced = traced || (e.device == l.device && e.bytes > 0);
  CHECK(traced);
  CHECK(node.alive());
}

TEST_CASE("cluster: a node killed mid-run loses no job and the result is unchanged") {
  const Params want = reference();
  // Node A dies (SIGKILL) when its 7th task arrives, with that task in flight.
  NodeProcess a("killed", {"--crash-after-tasks", "7"});
  NodeProcess b("survivor");
  RuntimeOptions o = cluster_options({a.address(), b.address()}, false);
  o.node_rejoin = false;
  Params got;
  RunReport r = run_jobs(got, o);
  check_same(got, want);
  CHECK_FALSE(a.alive());
  CHECK(a.log_contains("crashing on purpose", 1));
  REQUIRE(r.links.size() == 2);
  CHECK(r.links[0].requeued >= 1);
  CHECK(r.scheduler.requeued >= 1);
  CHECK(r.scheduler.failed == 0);
  CHECK(r.links[1].tasks > r.links[0].tasks);
}

TEST_CASE("cluster: a node that comes back rejoins the run") {
  // Node A dies when its 5th task arrives (after answering 4). A thread restarts it on the same
  // port; job j0 pauses after 3 steps until the new process logs the coordinator's handshake
  // (bounded), so the run is still going when A is back. Then A's devices take work again.
  auto a = std::make_unique<NodeProcess>("rejoin-a",
                                         std::vector<std::string>{"--crash-after-tasks", "5"});
  NodeProcess b("rejoin-b");
  const int port = a->port();
  std::unique_ptr<NodeProcess> again;
  std::atomic<bool> restarted{false};
  std::thread restarter([&] {
    for (int i = 0; i < 600 && a->alive(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (a->alive()) return;
    again = std::make_unique<NodeProcess>("rejoin-a2", std::vector<std::string>{},
                                          "127.0.0.1:" + std::to_string(port));
    restarted = true;
  });
  Params got;
  std::mutex mu;
  std::vector<JobSpec> jobs = cluster_jobs(got, mu, 12);
  bool waited = false;
  jobs[0].program = [&](actors::JobContext& job) -> actors::Task<void> {
    DataLoader loader(job.train_data(), {.batch_size = job.spec().batch_size, .seed = 1});
    Batch batch;
    for (int step = 0; step < 12 && loader.next(batch); ++step) {
      co_await job.train_step(batch);
      if (step == 3) {  // blocks this job's actor only; the run goes on
        for (int i = 0; i < 600 && !(restarted && again->log_contains("joined", 0)); ++i)
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        waited = restarted && again->log_contains("joined", 0);
      }
    }
  };
  RuntimeOptions o = cluster_options({a->address(), b.address()}, false);
  o.shards = 2;
  RunReport r = run(jobs, o);
  restarter.join();
  for (const JobResult& j : r.jobs)
    CHECK_MESSAGE(j.status == JobStatus::done, (j.name + ": " + j.error));
  REQUIRE(waited);
  REQUIRE(r.links.size() == 2);
  CHECK(r.links[0].joins == 2);
  CHECK(r.links[0].tasks > 4);  // the restarted node ran tasks too
  CHECK(r.scheduler.failed == 0);
}

TEST_CASE("cluster: a wrong secret is refused and the node keeps serving") {
  NodeProcess node("secret");
  RuntimeOptions o = cluster_options({node.address()}, true);
  o.node_secret = "not-the-secret";
  Params got;
  std::string error;
  try {
    std::mutex mu;
    run(cluster_jobs(got, mu), o);
  } catch (const Error& e) {
    error = e.what();
  }
  CHECK_MESSAGE(error.find("wrong shared secret") != std::string::npos, error);
  CHECK(got.empty());  // nothing trained
  CHECK(node.log_contains("wrong shared secret"));
  Params good;
  run_jobs(good, cluster_options({node.address()}, false), 4);
  CHECK(good.size() == 4);
}

TEST_CASE("cluster: garbage bytes and forged messages are refused and the node keeps serving") {
  NodeProcess node("garbage");
  // Raw garbage on the port: random bytes, and a header-sized prefix announcing a huge payload.
  for (int round = 0; round < 3; ++round) {
    const int s = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(s >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(node.port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    std::string junk = cluster::random_bytes(round == 0 ? 65536 : 64);
    if (round == 1) std::memset(junk.data(), 0xff, junk.size());
    (void)!::send(s, junk.data(), junk.size(), MSG_NOSIGNAL);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ::close(s);
  }
  REQUIRE(node.alive());

  // A CAF peer that skips the handshake, forges MACs, replays, or sends other message types. Its
  // actor system ends before the run below: two systems of one process share a CAF node id, and
  // the node would route the run's results over whichever connection it knows for that id.
  {
    caf::actor_system_config cfg;
    cfg.load<caf::io::middleman>();
    cfg.set("middleman.app-identifiers", std::vector<std::string>{cluster::app_identifier});
    caf::actor_system sys{cfg};
    auto remote =
        sys.middleman().remote_actor("127.0.0.1", static_cast<std::uint16_t>(node.port()));
    REQUIRE(remote);
    caf::scoped_actor self{sys};
    self->send(*remote, cluster::task_atom::value, 0, std::uint64_t{1}, std::string("junk"),
               std::string("mac"));
    CHECK(node.log_contains("not authenticated"));
    self->send(*remote, std::string("unexpected"), 42);
    CHECK(node.log_contains("unexpected message"));
    self->send(*remote, cluster::auth_atom::value, std::string("proof without a hello"));
    CHECK(node.log_contains("no hello before it"));

    // A coordinator proof made with the wrong secret.
    std::string refusal;
    self->request(*remote, std::chrono::seconds(10), cluster::hello_atom::value,
                  cluster::random_bytes(cluster::nonce_bytes))
        .receive([](caf::atom_value, std::string&, std::string&) {},
                 [](caf::error&) { FAIL("no challenge"); });
    self->request(*remote, std::chrono::seconds(10), cluster::auth_atom::value,
                  cluster::hmac("wrong", "hydra-coordinator"))
        .receive([&](caf::atom_value k, std::string& why,
                     std::string&) { refusal = k == cluster::refused_atom::value ? why : ""; },
                 [](caf::error&) { FAIL("no answer to auth"); });
    CHECK(refusal == "wrong shared secret");
    CHECK(node.log_contains("wrong shared secret"));

    cluster::NodeLink link =
        cluster::connect_node(sys, node.address(), secret, std::chrono::seconds(10));
    REQUIRE(link.devices.size() == 1);
    self->send(*remote, cluster::task_atom::value, 0, std::uint64_t{1}, std::string("junk"),
               std::string(32, 'x'));
    CHECK(node.log_contains("bad MAC"));
    // Authenticated but malformed: an error result comes back; the node survives.
    const std::string junk = "\x01\x00\x00\x00\xff\xff\xff\x7f";
    const std::string mac = cluster::hmac(link.session, cluster::mac_input("req", 0, 5, junk));
    std::string reply_error;
    self->send(*remote, cluster::task_atom::value, 0, std::uint64_t{5}, junk, mac);
    self->receive(
        [&](cluster::result_atom, std::uint64_t seq, const std::string& result,
            const std::string&) {
          CHECK(seq == 5);
          cluster::Reader rd(result);
          reply_error = rd.str();
        },
        caf::after(std::chrono::seconds(10)) >> [] { FAIL("no answer from the node"); });
    CHECK_MESSAGE(reply_error.find("node refused the request") != std::string::npos, reply_error);
    self->send(*remote, cluster::task_atom::value, 0, std::uint64_t{5}, junk, mac);  // replayed
    CHECK(node.log_contains("replayed sequence number 5"));
    REQUIRE(node.alive());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the node sees the link close

  Params good;
  RunReport r = run_jobs(good, cluster_options({node.address()}, false), 4);
  CHECK(good.size() == 4);
  CHECK(r.links.at(0).tasks > 0);
}

TEST_CASE("cluster: bad node options are refused with clear errors") {
  RuntimeOptions o;
  o.nodes = {"no-port-here"};
  o.node_secret = secret;
  Params p;
  std::mutex mu;
  CHECK_THROWS_WITH_AS(run(cluster_jobs(p, mu), o), doctest::Contains("expected HOST:PORT"), Error);
  o.nodes = {"127.0.0.1:1"};
  o.node_secret = "";
  CHECK_THROWS_WITH_AS(run(cluster_jobs(p, mu), o), doctest::Contains("node_secret"), Error);
}

TEST_CASE("model spec: names zoo models and refuses malformed specs") {
  Model m = make_model_from_spec("mlp 16 32,8 3");
  Model ref = make_mlp(16, {32, 8}, 3);
  REQUIRE(m.size() == ref.size());
  for (std::size_t i = 0; i < m.size(); ++i)
    CHECK(m.layer(i).name() == ref.layer(i).name());
  CHECK(make_model_from_spec("mlp 4 - 2").parameter_count() == 4 * 2 + 2);
  CHECK(make_model_from_spec("cnn 1 28 10").parameter_count() ==
        make_cnn(1, 28, 10).parameter_count());
  Model conv = make_model_from_spec(
      "layers conv2d 1 8 3 1 1; relu; maxpool2d 2; flatten; linear 1568 10; gelu; layernorm 10");
  Model conv_ref;
  conv_ref.emplace<Conv2d>(1, 8, 3, 1, 1).emplace<ReLU>().emplace<MaxPool2d>(2);
  conv_ref.emplace<Flatten>().emplace<Linear>(1568, 10).emplace<GELU>().emplace<LayerNorm>(10);
  REQUIRE(conv.size() == conv_ref.size());
  for (std::size_t i = 0; i < conv.size(); ++i)
    CHECK(conv.layer(i).name() == conv_ref.layer(i).name());
  CHECK(conv.parameter_count() == conv_ref.parameter_count());
  CHECK_THROWS_WITH_AS(make_model_from_spec("layers linear 4 2; softmax"),
                       doctest::Contains("layer ' softmax'"), Error);
  CHECK_THROWS_WITH_AS(make_model_from_spec(""), doctest::Contains("is empty"), Error);
  CHECK_THROWS_WITH_AS(make_model_from_spec("mlp 16 32,x 3"),
                       doctest::Contains("hidden size must be a positive integer"), Error);
  CHECK_THROWS_WITH_AS(make_model_from_spec("mlp 16 -5 3"), doctest::Contains("hidden size"),
                       Error);
  CHECK_THROWS_WITH_AS(make_model_from_spec("resnet 50"), doctest::Contains("expected 'mlp"),
                       Error);
  CHECK_THROWS_WITH_AS(make_model_from_spec("gpt 1 2 3"), doctest::Contains("expected 'mlp"),
                       Error);
}

TEST_CASE("cluster: a model spec that differs from make_model fails the job") {
  Params p;
  std::mutex mu;
  std::vector<JobSpec> jobs = cluster_jobs(p, mu, 2);
  jobs.resize(1);
  jobs[0].make_model = [] { return make_mlp(16, {32, 32}, 2); };
  jobs[0].model_spec = "mlp 16 64 2";
  RuntimeOptions o;
  o.devices = {{Device::cpu(0), 0}};
  RunReport r = run(jobs, o);
  REQUIRE(r.jobs.size() == 1);
  CHECK(r.jobs[0].status == JobStatus::failed);
  CHECK_MESSAGE(r.jobs[0].error.find("does not describe the model") != std::string::npos,
                r.jobs[0].error);
}
