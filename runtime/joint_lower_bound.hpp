#pragma once
// The joint lower bound over strategy assignments: given, per job, the candidate strategies the
// planner may choose (each with its device work and its chain, runtime/simulator job_bounds), the
// least T such that ONE assignment of a candidate per job has every chain <= T and
// total work / devices <= T:
//
//   B = min over assignments a of max(max_j chain(a_j), sum_j work(a_j) / D).
//
// Why it is a lower bound: every plan in the space assigns one candidate per job; its makespan is
// at least that assignment's longest chain (a job's tasks cannot finish before its critical path)
// and at least its total work / D (D devices each compute one task at a time); so it is at least
// max(chain, work / D) of its own assignment, which is at least the minimum B over all of them.
//
// Why the sweep below computes exactly that minimum: for a threshold T let W(T) = sum_j (least
// work among job j's candidates with chain <= T), defined once every job has such a candidate,
// and f(T) = max(T, W(T) / D).
//   * B <= f(T) for every T: the assignment taking each job's least-work candidate with chain
//     <= T has chains <= T and work W(T), so its value is <= max(T, W(T) / D).
//   * B >= min_T f(T): let a* attain B and T* = max_j chain(a*_j) (one of the candidates'
//     chains); each a*_j is a candidate with chain <= T*, so W(T*) <= work(a*), hence
//     f(T*) <= max(T*, work(a*) / D) = B.
// So B = min f(T) over the candidates' chain values T, found by sweeping them in increasing
// order while keeping each job's least work so far (W only falls as T rises; the sweep stops
// once T alone is at least the best f found). O(K log K) for K candidates in all.
//
// The bound holds in the model the candidates' work and chain come from (runtime/simulator
// job_bounds: compute and store seconds on the device, loads, the host all-reduce and the
// per-task submit latency on the chain); whatever that model leaves out (see job_bounds) it
// leaves out too.
#include <cstddef>
#include <vector>

namespace hydra {

struct CandidateCost {
  double work = 0;   // device seconds (compute + store) of the whole job
  double chain = 0;  // its critical path in seconds
};

struct JointBound {
  double bound = 0;                 // max(chain, work / devices) of the assignment below
  double chain = 0;                 // its longest chain (the threshold T)
  double work = 0;                  // its total work
  std::vector<std::size_t> choice;  // per job: index of its candidate (least work, chain <= T)
};

// Throws hydra::Error when devices is 0 or a job has no candidate (naming its index).
JointBound joint_lower_bound(const std::vector<std::vector<CandidateCost>>& candidates,
                             std::size_t devices);

// The default bound: max(total work / devices, longest chain) of one given assignment
// (e.g. the default strategies). Throws hydra::Error when devices is 0.
double assignment_bound(const std::vector<CandidateCost>& assignment, std::size_t devices);

}  // namespace hydra
