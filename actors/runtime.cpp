#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>

#include <caf/io/all.hpp>

#include "actors/cluster/link_config.hpp"
#include "actors/cluster/protocol.hpp"
#include "actors/cluster/remote_device.hpp"
#include "actors/cluster/tls.hpp"
#include "actors/data_cache.hpp"
#include "actors/device_actor.hpp"
#include "actors/early_stopping_actor.hpp"
#include "actors/hydra.hpp"
#include "actors/job_actor.hpp"
#include "actors/plan.hpp"
#include "actors/replanner.hpp"
#include "actors/scheduler_actor.hpp"
#include "actors/strategy_switch.hpp"
#include "kernels/core/cuda_api.hpp"
#include "kernels/core/memory_pool.hpp"
#include "runtime/progress_display.hpp"
#include "runtime/results_table.hpp"
#include "runtime/scheduling_policy.hpp"
#include "runtime/svg_curves.hpp"
#include "runtime/svg_gantt.hpp"

namespace hydra {

std::vector<DeviceSpec> default_devices() {
  std::vector<DeviceSpec> out;
  const int gpus = cuda::device_count();
  for (int i = 0; i < gpus; ++i)
    out.push_back({Device::cuda(i), 0});
  if (out.empty()) out = {{Device::cpu(0), 0}, {Device::cpu(1), 0}};
  return out;
}

namespace {

// Capacities of cpu:N pools the run changed, restored when it ends.
using SavedCapacities = std::vector<std::pair<Device, std::size_t>>;

std::vector<actors::DeviceConfig> resolve_devices(const RuntimeOptions& options,
                                                  SavedCapacities& saved) {
  std::vector<DeviceSpec> specs = options.devices;
  if (specs.empty() && options.nodes.empty()) specs = default_devices();
  std::vector<actors::DeviceConfig> out;
  std::set<Device> cpus;
  std::map<int, int> per_gpu;
  for (const DeviceSpec& s : specs) {
    check(s.device.kind == DeviceKind::cpu || s.device.kind == DeviceKind::cuda,
          "RuntimeOptions: device " + s.device.str() + " cannot run tasks (use cpu:N or cuda:N)");
    actors::DeviceConfig c;
    c.index = static_cast<int>(out.size());
    c.device = s.device;
    if (s.device.kind == DeviceKind::cpu) {
      check(cpus.insert(s.device).second,
            "RuntimeOptions: virtual CPU device " + s.device.str() + " listed twice");
      MemoryPool& pool = memory_pool(s.device);
      pool.release_cached();
      if (s.memory_bytes > 0) {
        saved.emplace_back(s.device, pool.capacity());
        set_memory_capacity(s.device, s.memory_bytes);
      }
      c.name = s.device.str();
    } else {
      check(s.device.index >= 0 && s.device.index < cuda::device_count(),
            "RuntimeOptions: no CUDA device " + s.device.str() + " (" +
                std::to_string(cuda::device_count()) + " available)");
      const int k = per_gpu[s.device.index]++;
      c.name = k == 0 ? s.device.str() : s.device.str() + "/" + std::to_string(k);
    }
    c.budget = s.memory_bytes > 0 ? s.memory_bytes : memory_pool(s.device).capacity();
    out.push_back(c);
  }
  check(!out.empty() || !options.nodes.empty(), "RuntimeOptions: no devices");
  return out;
}

// RuntimeOptions::plan must be the plan of these jobs (same order and names) on as many devices
// as the run has; the re-planning limits must make sense.
void check_plan(const std::vector<JobSpec>& jobs, const RuntimeOptions& options) {
  const RuntimeOptions::Replan& r = options.replan;
  check(r.min_gain >= 0 && r.min_gain < 1,
        "RuntimeOptions::replan.min_gain must lie in [0, 1), got " + std::to_string(r.min_gain));
  check(r.min_gain_seconds >= 0, "RuntimeOptions::replan.min_gain_seconds must be >= 0, got " +
                                     std::to_string(r.min_gain_seconds));
  check(r.max_evaluations >= 1, "RuntimeOptions::replan.max_evaluations must be at least 1, got " +
                                    std::to_string(r.max_evaluations));
  check(r.time_limit_seconds > 0, "RuntimeOptions::replan.time_limit_seconds must be > 0, got " +
                                      std::to_string(r.time_limit_seconds));
  if (!options.plan) return;
  const RunPlan& p = *options.plan;
  check(p.jobs.size() == jobs.size() && p.plan.strategies.size() == jobs.size(),
        "RuntimeOptions::plan: " + std::to_string(jobs.size()) + " jobs but the plan has " +
            std::to_string(p.jobs.size()));
  for (std::size_t j = 0; j < jobs.size(); ++j)
    check(p.jobs[j].job.name == jobs[j].name, "RuntimeOptions::plan: job " + std::to_string(j) +
                                                  " is " + jobs[j].name + " but the plan's is " +
                                                  p.jobs[j].job.name);
}

}  // namespace

RunReport run(const std::vector<JobSpec>& jobs, const RuntimeOptions& options) {
  using namespace actors;
  const auto t0 = std::chrono::steady_clock::now();
  make_policy(options.policy);  // reject an unknown policy before anything starts
  check_plan(jobs, options);
  std::vector<std::string> names;
  for (const JobSpec& j : jobs)
    names.push_back(j.name);
  if (options.early_stopping) {
    std::set<std::string> seen;
    for (const std::string& n : names)
      check(seen.insert(n).second, "RuntimeOptions::early_stopping: job name '" + n +
                                       "' is used twice (the rule tells jobs apart by name)");
  }
  struct Restore {
    SavedCapacities saved;
    ~Restore() {
      for (const auto& [device, bytes] : saved) {
        memory_pool(device).release_cached();
        set_memory_capacity(device, bytes);
      }
    }
  } restore;
  if (!options.nodes.empty())
    check(options.node_link_timeout_seconds >= 0.1,
          "RuntimeOptions: node_link_timeout_seconds must be at least 0.1 (got " +
              std::to_string(options.node_link_timeout_seconds) + ")");
  check(!options.node_tls.enabled() || !options.nodes.empty(),
        "RuntimeOptions: node_tls is set but no nodes are given");
  cluster::check_tls(options.node_tls, "RuntimeOptions: node_tls");
  if (!options.nodes.empty())
    for (const JobSpec& j : jobs)
      check(!j.model_spec.empty(),
            "job " + j.name +
                ": RuntimeOptions::nodes needs a JobSpec::model_spec on every job (the model as "
                "text the nodes can build; see kernels/model_spec.hpp)");
  std::vector<DeviceConfig> devices = resolve_devices(options, restore.saved);
  set_blas_threads(1);

  RunReport report;
  auto trace = std::make_shared<Trace>();
  auto links = std::make_shared<cluster::LinkCounters>();
  {
    caf::actor_system_config cfg;
    if (!options.nodes.empty()) {
      cluster::configure_link(cfg, options.node_link_timeout_seconds, options.node_tls);
    }
    caf::actor_system sys{cfg};
    // Cluster nodes: the handshake, then one proxy per remote device after the local devices.
    const auto timeout = std::chrono::milliseconds(
        static_cast<std::int64_t>(std::max(0.1, options.node_timeout_seconds) * 1000));
    struct NodeEntry {
      std::string address;
      std::vector<cluster::RemoteDeviceConfig> remotes;
      std::vector<caf::actor> proxies;
      int live = 0;
      double last_try = 0;
    };
    std::vector<NodeEntry> nodes;
    int next_index = static_cast<int>(devices.size());
    for (const std::string& address : options.nodes) {
      cluster::NodeLink link = cluster::connect_node(sys, address, options.node_secret, timeout);
      NodeEntry e;
      e.address = address;
      for (std::size_t i = 0; i < link.devices.size(); ++i) {
        cluster::RemoteDeviceConfig rc;
        rc.index = next_index++;
        rc.name = address + "/" + link.devices[i].name;
        rc.remote = static_cast<int>(i);
        rc.link = static_cast<int>(links->links.size());
        rc.node = link;
        LinkStats ls;
        ls.device = rc.name;
        ls.node = address;
        ls.joins = 1;
        links->links.push_back(ls);
        e.remotes.push_back(rc);
      }
      nodes.push_back(std::move(e));
    }
    std::size_t smallest = SIZE_MAX;
    for (const DeviceConfig& d : devices)
      smallest = std::min(smallest, d.budget);
    for (const NodeEntry& e : nodes)
      for (const cluster::RemoteDeviceConfig& rc : e.remotes)
        smallest = std::min(smallest, rc.node.devices[static_cast<std::size_t>(rc.remote)].budget);
    // A device holds the running shard and the prefetched next one: each may use half.
    const std::size_t shard_budget = smallest == SIZE_MAX ? SIZE_MAX / 4 : smallest / 2;
    for (const DeviceConfig& d : devices)
      report.devices.push_back(d.name);
    for (const NodeEntry& e : nodes)
      for (const cluster::RemoteDeviceConfig& rc : e.remotes)
        report.devices.push_back(rc.name);

    if (options.plan)  // checked before any actor of the run exists
      check(options.plan->devices.size() == static_cast<std::size_t>(next_index),
            "RuntimeOptions::plan: planned for " + std::to_string(options.plan->devices.size()) +
                " devices, the run has " + std::to_string(next_index));
    auto scheduler =
        sys.spawn(scheduler_actor, SchedulerConfig{options.policy, options.policy_seed, trace});
    std::vector<caf::actor> device_actors;
    for (const DeviceConfig& d : devices)
      device_actors.push_back(sys.spawn(device_actor, d, scheduler, trace));
    caf::scoped_actor self{sys};
    auto start_proxies = [&](NodeEntry& e) {
      for (const cluster::RemoteDeviceConfig& rc : e.remotes) {
        caf::actor p = sys.spawn(cluster::remote_device_actor, rc, scheduler, trace, links);
        self->monitor(p);
        e.proxies.push_back(p);
        ++e.live;
      }
    };
    for (NodeEntry& e : nodes)
      start_proxies(e);
    // A node whose proxies all went down is asked to rejoin once a second.
    auto rejoin = [&] {
      if (!options.node_rejoin) return;
      for (NodeEntry& e : nodes) {
        if (e.live > 0 || trace->now() - e.last_try < 1.0) continue;
        e.last_try = trace->now();
        try {
          cluster::NodeLink link =
              cluster::connect_node(sys, e.address, options.node_secret, timeout);
          if (link.devices.size() != e.remotes.size()) {
            std::fprintf(stderr, "hydra: node %s came back with %zu devices instead of %zu\n",
                         e.address.c_str(), link.devices.size(), e.remotes.size());
            continue;
          }
          for (cluster::RemoteDeviceConfig& rc : e.remotes) {
            rc.node = link;
            std::lock_guard lock(links->mu);
            ++links->links.at(static_cast<std::size_t>(rc.link)).joins;
          }
          std::fprintf(stderr, "hydra: node %s rejoined\n", e.address.c_str());
          e.proxies.clear();
          start_proxies(e);
        } catch (const std::exception&) {
          // Not back yet: try again later.
        }
      }
    };
    auto data = std::make_shared<DataCache>();
    std::shared_ptr<ProgressDisplay> progress;
    if (options.progress) progress = std::make_shared<ProgressDisplay>();
    caf::actor early_stopping;
    if (options.early_stopping)
      early_stopping = sys.spawn(early_stopping_actor, options.early_stopping, names);
    // Re-planning: one detached actor (its search never runs on the scheduler's threads).
    auto strategy_log = std::make_shared<StrategyLog>();
    caf::actor replanner;
    if (options.plan && options.replan.enabled) {
      const RunPlan& rp = *options.plan;
      ReplannerConfig rc;
      rc.jobs = rp.jobs;
      rc.devices = rp.devices;
      rc.planner = rp.options;
      rc.planner.max_evaluations = options.replan.max_evaluations;
      rc.planner.time_limit_seconds = options.replan.time_limit_seconds;
      for (std::size_t j = 0; j < jobs.size(); ++j) {
        // The shard count the job will run with (its actor reports the partitioner's).
        std::size_t shards = jobs[j].shards > 0 ? jobs[j].shards : options.shards;
        if (shards == 0 && !rp.jobs[j].options.empty())
          shards = rp.jobs[j].options[0].shards.size();
        rc.initial.push_back(strategy_of(jobs[j], static_cast<int>(shards)));
      }
      rc.min_gain = options.replan.min_gain;
      rc.min_gain_seconds = options.replan.min_gain_seconds;
      rc.trace = trace;
      rc.log = strategy_log;
      replanner = sys.spawn<caf::detached>(replanner_actor, std::move(rc));
    }
    std::vector<caf::actor> job_actors;
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      JobSetup setup;
      setup.index = static_cast<int>(i);
      setup.spec = jobs[i];
      setup.scheduler = scheduler;
      setup.data = data;
      setup.shard_budget = shard_budget;
      setup.shards = options.shards;
      setup.num_devices = next_index;  // local and remote
      setup.out_dir = options.out_dir;
      setup.progress = progress;
      setup.early_stopping = early_stopping;
      setup.trace = trace;
      setup.replanner = replanner;
      setup.strategy_log = strategy_log;
      job_actors.push_back(sys.spawn(job_actor, std::move(setup)));
    }
    if (replanner) self->send(replanner, rp_jobs_atom::value, job_actors);
    report.jobs.resize(jobs.size());
    // Start every job, then collect the answers.
    for (auto& j : job_actors) {
      self->monitor(j);
      self->send(j, run_atom::value);
    }
    std::size_t received = 0;
    // Device lines of the live display: utilisation over the last few seconds.
    auto show_devices = [&] {
      rejoin();
      if (!progress) return;
      const double now = trace->now();
      for (const auto& [name, u] : trace->utilisation(std::max(0.0, now - 5.0), now))
        progress->update_device({name, u, ""});
      progress->render();
    };
    self->receive_while([&] { return received < job_actors.size(); })(
        [&](JobResult& r) {
          const auto sender = self->current_sender();
          for (std::size_t i = 0; i < job_actors.size(); ++i)
            if (job_actors[i].address() == sender) {
              report.jobs[i] = std::move(r);
              if (options.on_job_end) options.on_job_end(report.jobs[i]);
            }
          ++received;
        },
        [&](caf::down_msg& dm) {
          for (NodeEntry& e : nodes)
            for (const caf::actor& p : e.proxies)
              if (p.address() == dm.source) --e.live;
          // A job actor died without answering (it should not: the program's errors are caught).
          for (std::size_t i = 0; i < job_actors.size(); ++i) {
            if (job_actors[i].address() != dm.source) continue;
            report.jobs[i].name = jobs[i].name;
            report.jobs[i].config = jobs[i].config;
            report.jobs[i].status = JobStatus::failed;
            report.jobs[i].error = "job actor terminated: " + sys.render(dm.reason);
            if (options.on_job_end) options.on_job_end(report.jobs[i]);
            ++received;
          }
        },
        caf::after(std::chrono::milliseconds(250)) >> show_devices);
    if (progress) {
      show_devices();
      progress->finish();
    }
    self->request(scheduler, caf::infinite, stats_atom::value)
        .receive([&](SchedulerStats& s) { report.scheduler = s; },
                 [&](caf::error& e) { throw Error("scheduler: " + sys.render(e)); });
    for (auto& d : device_actors)
      self->send(d, stop_atom::value);
    for (NodeEntry& e : nodes)
      for (const caf::actor& p : e.proxies) {
        self->demonitor(p);
        self->send(p, stop_atom::value);
      }
    for (auto& j : job_actors) {
      self->demonitor(j);
      self->send_exit(j, caf::exit_reason::user_shutdown);
    }
    self->send_exit(scheduler, caf::exit_reason::user_shutdown);
    if (early_stopping) self->send_exit(early_stopping, caf::exit_reason::user_shutdown);
    if (replanner) self->send_exit(replanner, caf::exit_reason::user_shutdown);
    report.strategy_changes = strategy_log->changes();
    report.replans = strategy_log->replans();
    report.replan_seconds = strategy_log->search_seconds();
  }  // the actor system waits for every actor, the device threads included
  for (const DeviceConfig& d : devices)
    if (d.device.kind == DeviceKind::cpu) memory_pool(d.device).release_cached();

  report.trace = trace->events();
  report.utilisation = trace->utilisation();
  report.links = links->links;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!options.out_dir.empty()) {
    const std::filesystem::path out(options.out_dir);
    std::filesystem::create_directories(out);
    trace->write_chrome_json((out / "trace.json").string());
    write_gantt_svg(*trace, (out / "gantt.svg").string());
    for (Curve c : {Curve::train_loss, Curve::val_loss, Curve::val_accuracy})
      write_curves_svg(report.jobs, c, (out / (std::string(curve_name(c)) + ".svg")).string());
    write_results_csv(report.jobs, (out / "results.csv").string());
    write_curves_csv(report.jobs, (out / "curves.csv").string());
  }
  return report;
}

std::vector<JobResult> train(const std::vector<JobSpec>& jobs, const RuntimeOptions& options) {
  return run(jobs, options).jobs;
}

}  // namespace hydra
