#include "actors/replica_set.hpp"

#include <cstring>

#include "actors/shard_actor.hpp"

namespace hydra::actors {

namespace {

void require_f32(const Tensor& t, const char* what) {
  check(t.dtype() == DType::f32, std::string(what) + ": replicas support f32 parameters only");
}

}  // namespace

Replica spawn_replica(caf::event_based_actor* self, JobContext::Parts& p,
                      const std::vector<ShardSpec>& plan, int replica,
                      std::shared_ptr<Model> model) {
  const JobSpec& spec = p.setup.spec;
  const auto R = static_cast<std::int64_t>(std::max<std::size_t>(1, spec.replicas));
  Replica out;
  if (model) {
    out.model = std::move(model);
  } else if (replica == 0) {
    out.model = p.model;
  } else {
    out.model = std::make_shared<Model>(build_job_model(spec));
    out.model->init(spec.seed);
    if (p.model->parameters().size() != out.model->parameters().size())
      throw Error("job " + spec.name + ": make_model built a different model for replica " +
                  std::to_string(replica));
    const Device home = home_device();
    if (home != Device::host()) out.model->to(home);
  }
  for (std::size_t s = 0; s < plan.size(); ++s) {
    auto st = std::make_shared<ShardState>();
    st->job = p.setup.index;
    st->job_name = replica == 0 ? spec.name : spec.name + "/r" + std::to_string(replica);
    st->shard = static_cast<int>(s);
    st->num_shards = static_cast<int>(plan.size());
    st->model = out.model;
    st->begin = plan[s].begin;
    st->end = plan[s].end;
    st->home = home_device();
    st->total_steps = p.total_steps;
    // Micro-batches and replicas accumulate gradients in home memory and update separately.
    st->fused_update = spec.clip_grad_norm <= 0 && R == 1 && spec.micro_batches <= 1;
    st->device_affinity = spec.device_affinity;
    st->forward_flops = plan[s].forward_flops;
    st->model_spec = spec.model_spec;
    st->stash_slots.resize(static_cast<std::size_t>(std::max<std::int64_t>(1, spec.micro_batches)));
    if (spec.sharded_data_parallel && R > 1)
      for (std::size_t k = 0; k < st->parameters().size(); ++k) {
        Parameter* q = st->parameters()[k];
        require_f32(q->value, "sharded data parallelism");
        const std::int64_t n = q->value.numel();
        const std::int64_t b = replica * n / R, e = (replica + 1) * n / R;
        if (e <= b) continue;
        Parameter slice;
        slice.name = q->name + "[" + std::to_string(b) + ":" + std::to_string(e) + "]";
        slice.value = q->value.view({-1}).slice(b, e);
        slice.grad = q->grad.view({-1}).slice(b, e);
        st->owned_slices.push_back(std::move(slice));
        st->owned_at.emplace_back(k, b);
      }
    out.states.push_back(st);
    out.shards.push_back(self->spawn(shard_actor, st, p.setup.scheduler));
  }
  std::vector<std::weak_ptr<ShardState>> siblings(out.states.begin(), out.states.end());
  for (const auto& st : out.states)
    st->siblings = siblings;
  return out;
}

void gather_slices(JobContext::Parts& p) {
  for (std::size_t s = 0; s < p.replicas[0].states.size(); ++s) {
    const std::vector<Parameter*> whole = p.replicas[0].states[s]->parameters();
    for (Parameter* q : whole)
      q->state.clear();
    for (const Replica& rep : p.replicas) {
      const ShardState& st = *rep.states[s];
      for (std::size_t i = 0; i < st.owned_slices.size(); ++i) {
        const Parameter& slice = st.owned_slices[i];
        const auto [k, begin] = st.owned_at[i];
        Parameter& q = *whole[k];
        if (q.state.empty())
          for (std::size_t j = 0; j < slice.state.size(); ++j)
            q.state.push_back(Tensor::zeros(q.value.shape(), q.value.dtype(), q.value.device()));
        check(q.state.size() == slice.state.size(),
              "sharded optimizer state: slices of " + q.name + " hold different numbers of slots");
        for (std::size_t j = 0; j < slice.state.size(); ++j) {
          Tensor part = q.state[j].view({-1}).slice(begin, begin + slice.value.numel());
          copy(part, slice.state[j]);
        }
        q.step = slice.step;
      }
    }
  }
}

void scatter_slices(JobContext::Parts& p) {
  for (std::size_t s = 0; s < p.replicas[0].states.size(); ++s) {
    const std::vector<Parameter*> whole = p.replicas[0].states[s]->parameters();
    for (const Replica& rep : p.replicas) {
      ShardState& st = *rep.states[s];
      for (std::size_t i = 0; i < st.owned_slices.size(); ++i) {
        Parameter& slice = st.owned_slices[i];
        const auto [k, begin] = st.owned_at[i];
        const Parameter& q = *whole[k];
        slice.state.clear();
        for (const Tensor& t : q.state) {
          Tensor part = Tensor::empty({slice.value.numel()}, t.dtype(), t.device());
          copy(part, t.view({-1}).slice(begin, begin + slice.value.numel()));
          slice.state.push_back(part);
        }
        slice.step = q.step;
      }
    }
  }
  // Every replica's model was loaded with the whole state: keep only the slices (1/R each).
  for (const Replica& rep : p.replicas)
    for (Parameter* q : rep.model->parameters())
      q->state.clear();
}

void copy_model_state(const Model& from, Model& to) {
  const std::vector<Parameter*> src = const_cast<Model&>(from).parameters();
  const std::vector<Parameter*> dst = to.parameters();
  check(src.size() == dst.size() && from.size() == to.size(),
        "copy_model_state: the models differ (" + std::to_string(src.size()) + " and " +
            std::to_string(dst.size()) + " parameters)");
  for (std::size_t k = 0; k < src.size(); ++k) {
    copy(dst[k]->value, src[k]->value);
    dst[k]->state.clear();
    for (const Tensor& t : src[k]->state)
      dst[k]->state.push_back(t.clone());
    dst[k]->step = src[k]->step;
  }
  for (std::size_t i = 0; i < from.size(); ++i)
    to.layer(i).restore_state(from.layer(i).save_state());
}

std::size_t all_reduce_grads(JobContext::Parts& p, int participants) {
  const std::size_t R = p.replicas.size();
  std::vector<std::vector<Parameter*>> params;
  for (const Replica& r : p.replicas)
    params.push_back(r.model->parameters());
  const float inv = 1.0f / static_cast<float>(R);
  std::size_t bytes = 0;
  for (std::size_t k = 0; k < params[0].size(); ++k) {
    Tensor& g0 = params[0][k]->grad;
    require_f32(g0, "all-reduce");
    const auto n = static_cast<std::size_t>(g0.numel());
    float* acc = g0.data_as<float>();
    for (std::size_t r = 1; r < static_cast<std::size_t>(participants); ++r) {
      const float* g = params[r][k]->grad.data_as<float>();
      for (std::size_t i = 0; i < n; ++i)
        acc[i] += g[i];
    }
    for (std::size_t i = 0; i < n; ++i)
      acc[i] *= inv;
    for (std::size_t r = 1; r < R; ++r)
      std::memcpy(params[r][k]->grad.data_as<float>(), acc, n * sizeof(float));
    bytes += (static_cast<std::size_t>(participants) + R - 1) * n * sizeof(float);
  }
  return bytes;
}

std::size_t all_gather_slices(JobContext::Parts& p) {
  std::size_t bytes = 0;
  for (std::size_t r = 0; r < p.replicas.size(); ++r)
    for (std::size_t s = 0; s < p.replicas[r].states.size(); ++s) {
      const ShardState& owner = *p.replicas[r].states[s];
      for (std::size_t j = 0; j < owner.owned_slices.size(); ++j) {
        const auto [k, offset] = owner.owned_at[j];
        const Tensor& src = owner.owned_slices[j].value;
        const auto n = static_cast<std::size_t>(src.numel());
        for (std::size_t o = 0; o < p.replicas.size(); ++o) {
          if (o == r) continue;
          float* dst = p.replicas[o].states[s]->parameters().at(k)->value.data_as<float>();
          std::memcpy(dst + offset, src.data_as<float>(), n * sizeof(float));
          bytes += 2 * n * sizeof(float);
        }
      }
    }
  return bytes;
}

bool replicas_identical(JobContext::Parts& p) {
  std::vector<Parameter*> ref = p.replicas.at(0).model->parameters();
  for (std::size_t r = 1; r < p.replicas.size(); ++r) {
    std::vector<Parameter*> other = p.replicas[r].model->parameters();
    if (other.size() != ref.size()) return false;
    for (std::size_t k = 0; k < ref.size(); ++k)
      if (ref[k]->value.nbytes() != other[k]->value.nbytes() ||
          std::memcmp(ref[k]->value.data(), other[k]->value.data(), ref[k]->value.nbytes()) != 0)
        return false;
  }
  return true;
}

std::size_t optimizer_state_bytes(const JobContext::Parts& p, int replica) {
  std::size_t bytes = 0;
  const Replica& r = p.replicas.at(static_cast<std::size_t>(replica));
  for (Parameter* q : r.model->parameters())
    for (const Tensor& t : q->state)
      bytes += t.nbytes();
  for (const auto& st : r.states)
    for (const Parameter& q : st->owned_slices)
      for (const Tensor& t : q.state)
        bytes += t.nbytes();
  return bytes;
}

}  // namespace hydra::actors
