#include "runtime/planner/planner.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace yolopipe {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// A throughput within this relative distance of the floor meets it, so that a floor copied from
// a plan's own prediction is met whatever order the sums were added in.
constexpr double kFloorTolerance = 1e-9;

std::string Bytes(double bytes, int decimals = 1) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  return u == 0 ? absl::StrFormat("%.0f B", bytes)
                : absl::StrFormat("%.*f %s", decimals, bytes, units[u]);
}

// ---------------------------------------------------------------------------------------------
// Per-image byte sums over every stage range [a, b] of the order: independent of the micro-batch
// size, the devices and the link, so they are built once per plan. Index a * n + b (a <= b).
struct RangeTables {
  int n = 0;
  std::vector<uint64_t> weight_prefix;  // n + 1
  std::vector<uint64_t> recv_bytes;     // node-produced tensors from before a, read in [a, b]
  std::vector<int32_t> recv_count;
  std::vector<uint64_t> send_lb_bytes;  // produced in [a, b], read after b: each counted once
  std::vector<int32_t> send_lb_count;
  std::vector<uint64_t> input_bytes;  // recv_bytes + graph inputs read in [a, b]
  std::vector<uint64_t> peak_bytes;   // liveness peak of the tensors produced in [a, b]

  size_t At(int a, int b) const { return static_cast<size_t>(a) * n + b; }
};

int FirstConsumerAtOrAfter(const CutTensor& t, int position) {
  auto it = std::lower_bound(t.consumers.begin(), t.consumers.end(), position);
  return it == t.consumers.end() ? -1 : *it;
}

RangeTables BuildRangeTables(const CutModel& cut, const proto::Profile& profile) {
  const int n = cut.num_nodes();
  const size_t nn = static_cast<size_t>(n) * n;
  RangeTables rt;
  rt.n = n;
  rt.weight_prefix.assign(n + 1, 0);
  for (int p = 0; p < n; ++p) {
    rt.weight_prefix[p + 1] = rt.weight_prefix[p] + profile.nodes(cut.order()[p]).weight_bytes();
  }
  rt.recv_bytes.assign(nn, 0);
  rt.recv_count.assign(nn, 0);
  rt.send_lb_bytes.assign(nn, 0);
  rt.send_lb_count.assign(nn, 0);
  rt.input_bytes.assign(nn, 0);
  rt.peak_bytes.assign(nn, 0);
  const std::vector<CutTensor>& tensors = cut.tensors();
  std::vector<int> graph_inputs;
  for (int t = 0; t < static_cast<int>(tensors.size()); ++t) {
    if (tensors[t].producer < 0 && !tensors[t].consumers.empty()) graph_inputs.push_back(t);
  }
  std::vector<uint64_t> bytes_at(n + 1), host_at(n + 1);
  std::vector<int32_t> count_at(n + 1);
  std::vector<int64_t> live_delta(n + 1);
  for (int a = 0; a < n; ++a) {
    // Received: a tensor crossing cut a is read by [a, b] once b reaches its first consumer >= a.
    std::fill(bytes_at.begin(), bytes_at.end(), 0);
    std::fill(host_at.begin(), host_at.end(), 0);
    std::fill(count_at.begin(), count_at.end(), 0);
    for (int t : cut.crossing(a)) {
      const int f = FirstConsumerAtOrAfter(tensors[t], a);
      bytes_at[f] += tensors[t].bytes_per_image;
      count_at[f] += 1;
    }
    for (int t : graph_inputs) {
      const int f = FirstConsumerAtOrAfter(tensors[t], a);
      if (f >= 0) host_at[f] += tensors[t].bytes_per_image;
    }
    // Liveness: a tensor produced at p >= a is alive at every position from p to its last
    // consumer; one read after the stage (or by the host) is alive to the stage's end, which is
    // at or after any position of the stage, so the live sum at position i does not depend on
    // where the stage ends.
    std::fill(live_delta.begin(), live_delta.end(), 0);
    for (const CutTensor& t : tensors) {
      if (t.producer < a) continue;
      const int end = t.graph_output
                          ? n - 1
                          : std::max(t.producer, t.consumers.empty() ? 0 : t.consumers.back());
      live_delta[t.producer] += static_cast<int64_t>(t.bytes_per_image);
      live_delta[end + 1] -= static_cast<int64_t>(t.bytes_per_image);
    }
    uint64_t recv = 0, host = 0, peak = 0;
    int32_t count = 0;
    int64_t live = 0;
    for (int b = a; b < n; ++b) {
      recv += bytes_at[b];
      host += host_at[b];
      count += count_at[b];
      live += live_delta[b];
      peak = std::max(peak, static_cast<uint64_t>(live));
      const size_t i = rt.At(a, b);
      rt.recv_bytes[i] = recv;
      rt.recv_count[i] = count;
      rt.input_bytes[i] = recv + host;
      rt.peak_bytes[i] = peak;
    }
  }
  for (int b = 0; b + 1 < n; ++b) {
    // Sent at least once: the tensors crossing cut b + 1 that were produced at or after a.
    std::fill(bytes_at.begin(), bytes_at.end(), 0);
    std::fill(count_at.begin(), count_at.end(), 0);
    for (int t : cut.crossing(b + 1)) {
      bytes_at[tensors[t].producer] += tensors[t].bytes_per_image;
      count_at[tensors[t].producer] += 1;
    }
    uint64_t bytes = 0;
    int32_t count = 0;
    for (int a = b; a >= 0; --a) {
      bytes += bytes_at[a];
      count += count_at[a];
      rt.send_lb_bytes[rt.At(a, b)] = bytes;
      rt.send_lb_count[rt.At(a, b)] = count;
    }
  }
  return rt;
}

// ---------------------------------------------------------------------------------------------
// One device as the planner prices it: node times and workspaces by position at one m.
struct DeviceTimes {
  std::vector<double> prefix_ms;  // n + 1
  // n * n: the largest workspace in [a, b]; shared by the devices that use the same profile.
  std::shared_ptr<const std::vector<uint64_t>> workspace_max;
};
using WorkspaceCache =
    std::map<const proto::Profile*, std::shared_ptr<const std::vector<uint64_t>>>;

struct ResolvedDevice {
  std::string name;
  double speed_factor = 1;
  double memory_limit = kInf;  // bytes
  const proto::Profile* profile = nullptr;
  std::vector<int> node_index;  // position -> index into profile->nodes()
};

std::vector<int> ProfiledSizes(const proto::Profile& profile) {
  std::vector<int> sizes(profile.microbatch_sizes().begin(), profile.microbatch_sizes().end());
  if (sizes.empty() && profile.nodes_size() > 0) {
    for (const proto::NodeTiming& t : profile.nodes(0).timings()) sizes.push_back(t.microbatch());
  }
  if (sizes.empty()) sizes.push_back(1);
  return sizes;
}

// `cache` holds the workspace tables already built at this m.
absl::StatusOr<DeviceTimes> TimesAt(const ResolvedDevice& device, int m, int n,
                                    WorkspaceCache* cache) {
  const proto::Profile& profile = *device.profile;
  const int first_size = ProfiledSizes(profile)[0];
  DeviceTimes times;
  times.prefix_ms.assign(n + 1, 0);
  std::vector<uint64_t> workspace(n, 0);
  for (int p = 0; p < n; ++p) {
    const proto::NodeProfile& node = profile.nodes(device.node_index[p]);
    double ms = -1;
    uint64_t node_workspace = 0;
    bool found = false;
    for (const proto::NodeTiming& t : node.timings()) {
      if (t.microbatch() == m) {
        ms = t.median_ms();
        node_workspace = t.workspace_bytes();
        found = true;
        break;
      }
    }
    if (!found && node.timings_size() == 0 && m == first_size) {
      ms = node.time_ms();
      node_workspace = node.workspace_bytes();
      found = true;
    }
    if (!found) {
      return absl::InvalidArgumentError(
          absl::StrCat("profile node '", node.name(), "' has no timing at micro-batch ", m));
    }
    if (!std::isfinite(ms) || ms < 0) {
      return absl::InvalidArgumentError(absl::StrCat("profile node '", node.name(), "': time ", ms,
                                                     " ms at micro-batch ", m,
                                                     " is not a finite number >= 0"));
    }
    times.prefix_ms[p + 1] = times.prefix_ms[p] + ms / device.speed_factor;
    workspace[p] = node_workspace;
  }
  std::shared_ptr<const std::vector<uint64_t>>& shared = (*cache)[&profile];
  if (shared == nullptr) {
    auto table = std::make_shared<std::vector<uint64_t>>(static_cast<size_t>(n) * n, 0);
    for (int a = 0; a < n; ++a) {
      uint64_t w = 0;
      for (int b = a; b < n; ++b) {
        w = std::max(w, workspace[b]);
        (*table)[static_cast<size_t>(a) * n + b] = w;
      }
    }
    shared = std::move(table);
  }
  times.workspace_max = shared;
  return times;
}

// ---------------------------------------------------------------------------------------------
// The cost model at one micro-batch size m, for stage positions 0..K-1 (each priced on the
// slowest of its R replica devices).
class MicrobatchCosts {
 public:
  MicrobatchCosts(const CutModel& cut, const RangeTables& rt, const LinkModel& link, int m,
                  int buffers, int k, int r, std::vector<const DeviceTimes*> times,
                  std::vector<double> limits)
      : cut_(cut),
        rt_(rt),
        link_(link),
        m_(m),
        buffers_(buffers),
        n_(cut.num_nodes()),
        k_(k),
        r_(r),
        times_(std::move(times)),
        limits_(std::move(limits)) {
    tensor_ms_.resize(cut.tensors().size());
    for (size_t t = 0; t < tensor_ms_.size(); ++t) {
      tensor_ms_[t] = link.TransferMs(static_cast<double>(cut.tensors()[t].bytes_per_image) * m);
    }
  }

  int n() const { return n_; }
  int k() const { return k_; }
  int m() const { return m_; }
  int num_devices() const { return k_ * r_; }
  double TensorMs(int t) const { return tensor_ms_[t]; }

  double DeviceCompute(int device, int a, int b) const {
    return times_[device]->prefix_ms[b + 1] - times_[device]->prefix_ms[a];
  }
  double Compute(int s, int a, int b) const {
    double ms = 0;
    for (int r = 0; r < r_; ++r) ms = std::max(ms, DeviceCompute(r * k_ + s, a, b));
    return ms;
  }
  double Recv(int a, int b) const {
    const size_t i = rt_.At(a, b);
    return Transfers(rt_.recv_bytes[i], rt_.recv_count[i]);
  }
  double SendLowerBound(int a, int b) const {
    const size_t i = rt_.At(a, b);
    return Transfers(rt_.send_lb_bytes[i], rt_.send_lb_count[i]);
  }
  uint64_t WeightBytes(int a, int b) const {
    return rt_.weight_prefix[b + 1] - rt_.weight_prefix[a];
  }
  uint64_t ActivationBytes(int a, int b) const {
    const size_t i = rt_.At(a, b);
    return static_cast<uint64_t>(buffers_) * static_cast<uint64_t>(m_) *
           (rt_.peak_bytes[i] + rt_.input_bytes[i]);
  }
  uint64_t WorkspaceBytes(int device, int a, int b) const {
    return (*times_[device]->workspace_max)[rt_.At(a, b)];
  }
  double DeviceMemory(int device, int a, int b) const {
    return static_cast<double>(WeightBytes(a, b)) + static_cast<double>(ActivationBytes(a, b)) +
           static_cast<double>(WorkspaceBytes(device, a, b));
  }
  double MaxMemory(int s, int a, int b) const {
    double bytes = 0;
    for (int r = 0; r < r_; ++r) bytes = std::max(bytes, DeviceMemory(r * k_ + s, a, b));
    return bytes;
  }
  bool Fits(int s, int a, int b) const {
    for (int r = 0; r < r_; ++r) {
      const int d = r * k_ + s;
      if (DeviceMemory(d, a, b) > limits_[d]) return false;
    }
    return true;
  }
  // A lower bound on the stage's time whatever the later cuts: every tensor read after the stage
  // is sent at least once.
  double Relaxed(int s, int a, int b) const {
    if (!Fits(s, a, b)) return kInf;
    return std::max({Compute(s, a, b), Recv(a, b), SendLowerBound(a, b)});
  }

 private:
  double Transfers(uint64_t bytes_per_image, int32_t count) const {
    return static_cast<double>(bytes_per_image) * m_ / (link_.bandwidth_gbps * 1e6) +
           count * link_.latency_us * 1e-3;
  }

  const CutModel& cut_;
  const RangeTables& rt_;
  LinkModel link_;
  int m_, buffers_, n_, k_, r_;
  std::vector<const DeviceTimes*> times_;  // R*K, replica-major
  std::vector<double> limits_;             // R*K, bytes (kInf: none)
  std::vector<double> tensor_ms_;
};

// ---------------------------------------------------------------------------------------------
// The exact costs of one split (ends[s] = last position of stage s).
struct SplitCosts {
  std::vector<int> ends;
  std::vector<double> compute, send, recv;  // per stage position (slowest replica)
  double bottleneck = 0;
  double latency = 0;
  bool fits = true;
  struct Route {
    int tensor;
    int from;
    std::vector<int> to;
  };
  std::vector<Route> routes;
};

SplitCosts Evaluate(const MicrobatchCosts& costs, const CutModel& cut,
                    const std::vector<int>& ends) {
  const int k = costs.k(), n = costs.n();
  SplitCosts out;
  out.ends = ends;
  out.compute.assign(k, 0);
  out.send.assign(k, 0);
  out.recv.assign(k, 0);
  std::vector<int> stage_of(n);
  for (int s = 0, a = 0; s < k; a = ends[s] + 1, ++s) {
    for (int p = a; p <= ends[s]; ++p) stage_of[p] = s;
    out.compute[s] = costs.Compute(s, a, ends[s]);
    out.fits = out.fits && costs.Fits(s, a, ends[s]);
  }
  const std::vector<CutTensor>& tensors = cut.tensors();
  for (int p = 0; p < n; ++p) {
    for (int t : cut.produced(p)) {
      SplitCosts::Route route{t, stage_of[p], {}};
      for (int c : tensors[t].consumers) {
        const int s = stage_of[c];
        if (s != route.from && (route.to.empty() || route.to.back() != s)) route.to.push_back(s);
      }
      if (route.to.empty()) continue;
      for (int s : route.to) {
        out.send[route.from] += costs.TensorMs(t);
        out.recv[s] += costs.TensorMs(t);
      }
      out.routes.push_back(std::move(route));
    }
  }
  for (int s = 0; s < k; ++s) {
    out.bottleneck = std::max({out.bottleneck, out.compute[s], out.send[s], out.recv[s]});
    out.latency += out.compute[s] + out.recv[s];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Exact search for one micro-batch size.
//
// Why not a plain DP over (position, stage): a stage's compute, receive time and memory depend
// only on its own range [a, b] (a tensor is received once by each stage that reads it, whoever
// produced it), but its send time depends on how many distinct LATER stages read each of its
// tensors, i.e. on cuts not yet placed. So the search is a depth-first branch and bound over the
// stage ends, stage by stage, with these admissible (never overestimating) bounds:
//
//  * placed stages 0..s: compute and receive are exact; the send of stage j is exactly what it
//    sends to stages <= s so far, plus every tensor of j still read at or after the next cut,
//    counted once (it will reach at least one more stage, all of them later than s, so none
//    already counted);
//  * unplaced stages s+1..K-1 over [b+1, N-1]: Future[s+1][b+1], the optimum of a relaxed
//    problem solved by a suffix DP in which a stage's cost is max(compute, receive, send with
//    each crossing tensor counted once) (or infinite when it does not fit its device). Every
//    true stage cost is >= its relaxed cost, so the relaxed optimum is <= the true optimum of
//    any completion.
//
// Throughput objective: the value of a split is its bottleneck; a branch is cut when the max of
// the bounds is >= the incumbent. Latency objective: the value is sum(compute + receive), which
// is additive and depends on each stage's range only, so the bound is exact-so-far + the suffix
// DP's minimum over completions whose relaxed stage costs meet the throughput floor; the send
// constraint (send <= cap for every stage) is checked with the bounds above. Both are seeded
// with the relaxed DP's own split (evaluated exactly).
//
// Tighter send bound: a tensor read at or after the next cut by readers that no single stage can
// span (the fastest device would need at least the incumbent's value, or the throughput cap,
// to run the nodes between them) reaches at least as many later stages as a greedy interval
// cover of its readers needs (MinDestinations).
//
// Iterative deepening over the threshold: the seed can be far above the optimum (tensors that
// the relaxed problem sends once go to several stages), so the search first runs pruned at
// thresholds just above the relaxed optimum (1%, 2%, 4%, ... above it) until one round finds a
// split, then once more pruned at the incumbent alone. Rounds that find nothing are not wasted:
// what they prove is remembered (below).
//
// Memo. At a cut c, call a crossing tensor free if it has two or more reader positions >= c:
// only free tensors can still reach several later stages, so they are the only way the future
// changes the past's sends. (1) When no tensor crossing c is free, the earlier stages' sends
// are final; if a search from (stage, c) finds nothing below the limit L while the past alone
// is clearly below L, every completion of [c, N-1] is worth >= L (throughput) or >= L - past
// latency (latency), which depends only on (stage, c) and raises bound_ there for every later
// visit. (2) Otherwise the past matters only through each producing stage of free tensors: what
// that stage may still send, its budget (L - committed send, or cap - committed send). A state
// with the same stage, cut and grouping of free tensors by producing stage whose budgets (and
// objective budget) are all <= those of a state already searched in vain cannot succeed either,
// since any completion that works for it works for the other. "Clearly below": the subtree
// adds the past's sums in another order, so learning requires a relative margin of 1e-9,
// otherwise an ulp-level difference could be mistaken for the future failing.
//
// Exactness: every split is either evaluated or lies in a pruned branch whose bound was >= the
// limit at the time, and limits only decrease within a round; the last round's limit is the
// incumbent, so the final incumbent is optimal (up to ties within rounding). planner_test checks
// this against exhaustive enumeration, including graphs where the memo and the bounds do work.
// Cost: a few milliseconds for YOLOv8 graphs (planner_benchmark); exponential in the worst case
// (random 250-node graphs with many long skips over a 0.3 GB/s link take up to ~15 s at K = 16).
class SplitSearch {
 public:
  SplitSearch(const MicrobatchCosts& costs, const CutModel& cut, bool latency, double cap)
      : costs_(costs), cut_(cut), latency_(latency), cap_(cap), n_(costs.n()), k_(costs.k()) {
    const std::vector<CutTensor>& tensors = cut.tensors();
    min_prefix_.assign(n_ + 1, 0);
    for (int p = 0; p < n_; ++p) {
      double fastest = kInf;
      for (int d = 0; d < costs.num_devices(); ++d) {
        fastest = std::min(fastest, costs.DeviceCompute(d, p, p));
      }
      min_prefix_[p + 1] = min_prefix_[p] + fastest;
    }
    next_consumer_.resize(n_ + 1);
    free_.assign(n_ + 1, 0);
    free_list_.resize(n_ + 1);
    for (int c = 0; c <= n_; ++c) {
      for (int t : cut.crossing(c)) {
        next_consumer_[c].push_back(FirstConsumerAtOrAfter(tensors[t], c));
        const auto& cs = tensors[t].consumers;
        if (cs.end() - std::lower_bound(cs.begin(), cs.end(), c) >= 2) {
          free_[c] = 1;
          free_list_[c].push_back(t);
        }
      }
    }
  }

  // The best split (stage ends), or empty when none is feasible.
  std::vector<int> Run() {
    BuildBounds();
    best_ = kInf;
    best_ends_.clear();
    if (std::vector<int> seed = SeedSplit(); !seed.empty()) {
      const SplitCosts seeded = Evaluate(costs_, cut_, seed);
      const double value = latency_ ? seeded.latency : seeded.bottleneck;
      const bool ok = seeded.fits && (!latency_ || seeded.bottleneck <= cap_);
      if (ok) {
        best_ = value;
        best_ends_ = seed;
      }
    }
    stage_of_.assign(n_, 0);
    sent_.assign(k_, 0);
    pending_.assign(k_, 0);
    extra_.assign(k_, 0);
    ends_.assign(k_, 0);
    if (bound_[0][0] < kInf) {
      // Iterative deepening over the threshold: the seed can be far above the optimum, and a
      // search pruned at a threshold just above the lower bound is much smaller. Each round
      // either finds a split below its threshold (then the last round only has to close the
      // gap from a good incumbent) or proves there is none, which it remembers (bound_ and the
      // memo stay valid: they record "nothing below the limit of that time").
      const double lower = bound_[0][0];
      double gap = std::max(lower * 0.01, 1e-9);
      for (int round = 0; round < kDeepeningRounds && lower + gap < best_; ++round, gap *= 2) {
        threshold_ = lower + gap;
        limit_ = std::min(best_, threshold_);
        Dfs(0, 0, 0, 0);
        if (best_ < threshold_) break;
      }
      threshold_ = kInf;
      limit_ = best_;
      Dfs(0, 0, 0, 0);
    }
    return best_ends_;
  }
  double best_value() const { return best_; }
  int64_t nodes_visited() const { return visited_; }

 private:
  // bound_[s][a]: lower bound on the value of stages s..K-1 over [a, N-1] (relaxed suffix DP,
  // raised by the memo). choice_[s][a]: the relaxed DP's stage end, for the seed.
  void BuildBounds() {
    bound_.assign(k_ + 1, std::vector<double>(n_ + 1, kInf));
    choice_.assign(k_ + 1, std::vector<int>(n_ + 1, -1));
    bound_[k_][n_] = 0;
    for (int s = k_ - 1; s >= 0; --s) {
      const int remaining = k_ - 1 - s;  // stages after s, one node each at least
      for (int a = s; a + remaining < n_; ++a) {
        double best = kInf;
        const int first_b = s == k_ - 1 ? n_ - 1 : a;
        for (int b = first_b; b + remaining < n_; ++b) {
          const double compute = costs_.Compute(s, a, b);
          if (latency_ ? compute > cap_ : compute >= best) break;
          const double next = bound_[s + 1][b + 1];
          if (next == kInf) continue;
          const double relaxed = costs_.Relaxed(s, a, b);
          double value;
          if (latency_) {
            if (relaxed > cap_) continue;
            value = compute + costs_.Recv(a, b) + next;
          } else {
            value = std::max(relaxed, next);
          }
          if (value < best) {
            best = value;
            choice_[s][a] = b;
          }
        }
        bound_[s][a] = best;
      }
    }
  }

  std::vector<int> SeedSplit() const {
    if (bound_[0][0] == kInf) return {};
    std::vector<int> ends(k_);
    for (int s = 0, a = 0; s < k_; ++s) {
      ends[s] = choice_[s][a];
      if (ends[s] < 0) return {};
      a = ends[s] + 1;
    }
    return ends;
  }

  void Dfs(int s, int a, double fixed_max, double fixed_latency) {
    ++visited_;
    const std::vector<CutTensor>& tensors = cut_.tensors();
    const int remaining = k_ - 1 - s;
    const int first_b = s == k_ - 1 ? n_ - 1 : a;
    for (int p = a; p < first_b; ++p) stage_of_[p] = s;
    std::vector<double> saved(sent_.begin(), sent_.begin() + s + 1);
    for (int b = first_b; b + remaining < n_; ++b) {
      stage_of_[b] = s;
      const double compute = costs_.Compute(s, a, b);
      if (latency_ ? compute > cap_ : compute >= limit_) break;
      const double next_bound = bound_[s + 1][b + 1];
      if (next_bound == kInf) continue;
      const double recv = costs_.Recv(a, b);
      const double stage_max = std::max({fixed_max, compute, recv});
      const double latency = fixed_latency + compute + recv;
      if (latency_ ? (recv > cap_ || latency + next_bound >= limit_)
                   : std::max(stage_max, next_bound) >= limit_) {
        continue;
      }
      if (!costs_.Fits(s, a, b)) continue;
      // Stage s receives each tensor crossing cut a that it reads; its producer sends it here.
      std::copy(saved.begin(), saved.end(), sent_.begin());
      sent_[s] = 0;
      const std::vector<int>& in = cut_.crossing(a);
      for (size_t i = 0; i < in.size(); ++i) {
        if (next_consumer_[a][i] <= b)
          sent_[stage_of_[tensors[in[i]].producer]] += costs_.TensorMs(in[i]);
      }
      // Everything still read after b goes at least once more, to a stage after s; a tensor
      // whose later readers no single stage can span goes to several.
      std::fill(pending_.begin(), pending_.begin() + s + 1, 0.0);
      for (int t : cut_.crossing(b + 1))
        pending_[stage_of_[tensors[t].producer]] += costs_.TensorMs(t);
      double send_max = 0;
      for (int j = 0; j <= s; ++j) send_max = std::max(send_max, sent_[j] + pending_[j]);
      if (!free_list_[b + 1].empty() && (latency_ ? cap_ < kInf : true)) {
        std::copy(pending_.begin(), pending_.begin() + s + 1, extra_.begin());
        for (int t : free_list_[b + 1]) {
          const int more = MinDestinations(tensors[t], b + 1) - 1;
          if (more > 0) extra_[stage_of_[tensors[t].producer]] += more * costs_.TensorMs(t);
        }
        for (int j = 0; j <= s; ++j) send_max = std::max(send_max, sent_[j] + extra_[j]);
      }
      ends_[s] = b;
      const double past = latency_ ? latency : std::max(stage_max, send_max);
      if (latency_ ? send_max > cap_ : std::max(past, next_bound) >= limit_) continue;
      if (s == k_ - 1) {
        Record(past);
        continue;
      }
      MemoState memo;
      const bool use_memo = MemoStateAt(s + 1, b + 1, &memo);
      if (use_memo) {
        Budgets(memo, latency, &budgets_);
        if (Dominated(memo, budgets_)) continue;
      }
      Dfs(s + 1, b + 1, stage_max, latency);
      // Learn only when the past alone is clearly below the limit (throughput) or clearly within
      // the cap (latency): the subtree recomputes the past's sums in another order, and an
      // ulp-level difference must not be mistaken for the future failing.
      if (latency_ ? send_max > cap_ * (1 - kLearnMargin) : past >= limit_ * (1 - kLearnMargin)) {
        continue;
      }
      if (!free_[b + 1]) {
        bound_[s + 1][b + 1] = std::max(bound_[s + 1][b + 1], latency_ ? limit_ - latency : limit_);
      }
      if (use_memo) {
        Budgets(memo, latency, &budgets_);
        Remember(memo, budgets_);
      }
    }
    std::copy(saved.begin(), saved.end(), sent_.begin());
  }

  // A lower bound on the number of distinct stages that will read `t` at or after `cut`: every
  // stage of a completion that can beat the incumbent computes for less than it (throughput) or
  // at most the cap (latency), even on the fastest device, so one stage cannot span readers
  // further apart than that (greedy interval cover from the first reader, which is optimal).
  int MinDestinations(const CutTensor& t, int cut) const {
    const double limit = (latency_ ? cap_ : limit_) * (1 + 1e-9);  // rounding: never overcount
    auto it = std::lower_bound(t.consumers.begin(), t.consumers.end(), cut);
    int count = 0;
    while (it != t.consumers.end()) {
      const int q = *it;
      ++count;
      const double reach_to = min_prefix_[q] + limit;
      auto end = latency_ ? std::upper_bound(min_prefix_.begin(), min_prefix_.end(), reach_to)
                          : std::lower_bound(min_prefix_.begin(), min_prefix_.end(), reach_to);
      const int last = std::max(q, static_cast<int>(end - min_prefix_.begin()) - 2);
      it = std::upper_bound(it, t.consumers.end(), last);
    }
    return count;
  }

  // The memo for cuts crossed by tensors with several later consumers (see the class comment).
  // Key: (stage, cut, which of the cut's free tensors share a producing stage).
  struct MemoState {
    std::tuple<int, int, uint64_t> key;
    std::vector<double> committed;  // per group: its producing stage's send bound so far
  };

  bool MemoStateAt(int s, int cut, MemoState* memo) const {
    const std::vector<int>& free = free_list_[cut];
    if (free.empty() || free.size() > 15) return false;
    const std::vector<CutTensor>& tensors = cut_.tensors();
    std::vector<int> group_stage;
    uint64_t code = 0;
    for (int t : free) {
      const int stage = stage_of_[tensors[t].producer];
      size_t g = std::find(group_stage.begin(), group_stage.end(), stage) - group_stage.begin();
      if (g == group_stage.size()) group_stage.push_back(stage);
      code = code << 4 | g;
    }
    memo->key = {s, cut, code};
    memo->committed.clear();
    for (int stage : group_stage) memo->committed.push_back(sent_[stage] + pending_[stage]);
    return true;
  }

  // [objective budget, send budget of each group]: what a completion may still spend.
  void Budgets(const MemoState& memo, double latency, std::vector<double>* budgets) const {
    budgets->clear();
    budgets->push_back(latency_ ? limit_ - latency : limit_);
    const double limit = latency_ ? cap_ : limit_;
    for (double committed : memo.committed) budgets->push_back(limit - committed);
  }

  // A state whose every budget is <= that of a state already searched in vain cannot succeed.
  bool Dominated(const MemoState& memo, const std::vector<double>& budgets) const {
    auto it = memo_.find(memo.key);
    if (it == memo_.end()) return false;
    const std::vector<double>& records = it->second;
    const size_t width = budgets.size();
    for (size_t r = 0; r + width <= records.size(); r += width) {
      bool covered = true;
      for (size_t i = 0; i < width && covered; ++i) covered = budgets[i] <= records[r + i];
      if (covered) return true;
    }
    return false;
  }

  void Remember(const MemoState& memo, const std::vector<double>& budgets) {
    std::vector<double>& records = memo_[memo.key];
    const size_t width = budgets.size();
    std::vector<double> kept;
    for (size_t r = 0; r + width <= records.size(); r += width) {
      bool weaker = true;  // every budget <= the new one's: the new record covers it
      for (size_t i = 0; i < width && weaker; ++i) weaker = records[r + i] <= budgets[i];
      if (!weaker) kept.insert(kept.end(), records.begin() + r, records.begin() + r + width);
    }
    if (kept.size() >= kMaxMemoRecords * width) kept.erase(kept.begin(), kept.begin() + width);
    kept.insert(kept.end(), budgets.begin(), budgets.end());
    records.swap(kept);
  }

  void Record(double value) {
    best_ = value;
    limit_ = std::min(best_, threshold_);
    best_ends_ = ends_;
  }

  const MicrobatchCosts& costs_;
  const CutModel& cut_;
  const bool latency_;
  const double cap_;
  const int n_, k_;
  std::vector<std::vector<int>> next_consumer_;  // per cut, parallel to cut.crossing(c)
  std::vector<char> free_;  // per cut: a crossing tensor has >= 2 consumer positions after it
  std::vector<std::vector<int>> free_list_;      // per cut: those tensors
  static constexpr size_t kMaxMemoRecords = 32;  // per key; the oldest goes first
  absl::flat_hash_map<std::tuple<int, int, uint64_t>, std::vector<double>> memo_;
  std::vector<double> budgets_;
  std::vector<std::vector<double>> bound_;
  std::vector<std::vector<int>> choice_;
  std::vector<int> stage_of_, ends_, best_ends_;
  std::vector<double> sent_, pending_, extra_;
  std::vector<double> min_prefix_;  // prefix sums of each node's time on its fastest device
  double best_ = kInf;              // the incumbent's value
  double threshold_ = kInf;         // the current deepening round's
  double limit_ = kInf;             // min(best_, threshold_): prune what cannot get below it
  static constexpr int kDeepeningRounds = 12;
  static constexpr double kLearnMargin = 1e-9;
  int64_t visited_ = 0;
};

// Min over splits of the max per-device memory of a stage (memory is local to a stage's range).
double SmallestMaxMemory(const MicrobatchCosts& costs) {
  const int n = costs.n(), k = costs.k();
  std::vector<std::vector<double>> best(k + 1, std::vector<double>(n + 1, kInf));
  best[k][n] = 0;
  for (int s = k - 1; s >= 0; --s) {
    for (int a = s; a + (k - 1 - s) < n; ++a) {
      for (int b = s == k - 1 ? n - 1 : a; b + (k - 1 - s) < n; ++b) {
        if (best[s + 1][b + 1] == kInf) continue;
        best[s][a] = std::min(best[s][a], std::max(costs.MaxMemory(s, a, b), best[s + 1][b + 1]));
      }
    }
  }
  return best[0][0];
}

// ---------------------------------------------------------------------------------------------
struct Candidate {
  int m = 0;
  int num_microbatches = 0;
  bool fits = false;      // a split fits memory
  bool feasible = false;  // ... and meets the objective's constraints
  SplitCosts split;
  double throughput = 0;  // img/s, all replicas
  double batch_ms = 0;
};

absl::StatusOr<std::vector<ResolvedDevice>> ResolveDevices(const proto::Profile& profile,
                                                           const CutModel& cut,
                                                           const PlannerOptions& options) {
  const int count = options.num_stages * options.replicas;
  if (!options.devices.empty() && static_cast<int>(options.devices.size()) != count) {
    return absl::InvalidArgumentError(absl::StrCat(options.devices.size(), " devices given for ",
                                                   options.replicas, " replica(s) x ",
                                                   options.num_stages, " stages; need ", count));
  }
  const std::string kind = profile.device().kind().empty() ? "device" : profile.device().kind();
  std::vector<int> main_index = cut.order();
  std::vector<ResolvedDevice> devices(count);
  for (int d = 0; d < count; ++d) {
    PlannerDevice given = options.devices.empty() ? PlannerDevice{} : options.devices[d];
    ResolvedDevice& out = devices[d];
    out.name = given.name.empty() ? absl::StrCat(kind, ":", d) : given.name;
    if (!std::isfinite(given.speed_factor) || given.speed_factor <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("device ", out.name, ": speed factor ", given.speed_factor, " must be > 0"));
    }
    out.speed_factor = given.speed_factor;
    uint64_t limit = options.memory_limit_bytes;
    if (given.memory_bytes > 0 && (limit == 0 || given.memory_bytes < limit)) {
      limit = given.memory_bytes;
    }
    out.memory_limit = limit == 0 ? kInf : static_cast<double>(limit);
    out.profile = given.profile != nullptr ? given.profile : &profile;
    if (given.profile == nullptr) {
      out.node_index = main_index;
      continue;
    }
    const proto::Profile& own = *given.profile;
    if (!own.model_fingerprint().empty() && !profile.model_fingerprint().empty() &&
        own.model_fingerprint() != profile.model_fingerprint()) {
      return absl::InvalidArgumentError(
          absl::StrCat("device ", out.name, ": its profile is of model ", own.model_fingerprint(),
                       " (", own.model(), "), the main profile of ", profile.model_fingerprint(),
                       " (", profile.model(), ")"));
    }
    std::map<std::string, int> by_name;
    for (int i = 0; i < own.nodes_size(); ++i) by_name[own.nodes(i).name()] = i;
    if (own.nodes_size() != profile.nodes_size()) {
      return absl::InvalidArgumentError(absl::StrCat("device ", out.name, ": its profile has ",
                                                     own.nodes_size(), " nodes, the main profile ",
                                                     profile.nodes_size()));
    }
    for (int p = 0; p < cut.num_nodes(); ++p) {
      const std::string& name = profile.nodes(main_index[p]).name();
      auto it = by_name.find(name);
      if (it == by_name.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("device ", out.name, ": its profile has no node '", name, "'"));
      }
      out.node_index.push_back(it->second);
    }
  }
  return devices;
}

absl::Status CheckOptions(const PlannerOptions& options) {
  if (options.num_stages < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("the number of stages must be >= 1, got ", options.num_stages));
  }
  if (options.replicas < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("the number of replicas must be >= 1, got ", options.replicas));
  }
  if (options.batch < 1) {
    return absl::InvalidArgumentError(absl::StrCat("batch must be >= 1, got ", options.batch));
  }
  if (options.batch < options.replicas) {
    return absl::InvalidArgumentError(absl::StrCat("batch ", options.batch, " is smaller than ",
                                                   options.replicas,
                                                   " replicas: some replica would get no image"));
  }
  if (options.buffers_in_flight < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("buffers in flight must be >= 1, got ", options.buffers_in_flight));
  }
  if (!std::isfinite(options.link.bandwidth_gbps) || options.link.bandwidth_gbps <= 0 ||
      !std::isfinite(options.link.latency_us) || options.link.latency_us < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("link ", LinkToString(options.link), ": bandwidth must be > 0, latency >= 0"));
  }
  if (!std::isfinite(options.min_throughput) || options.min_throughput < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_throughput must be >= 0 img/s, got ", options.min_throughput));
  }
  return absl::OkStatus();
}

std::string SplitName(const proto::Profile& profile, const PlannerOptions& options) {
  std::string name = profile.model().empty() ? "the model" : profile.model();
  std::string what =
      absl::StrCat(options.num_stages, options.num_stages == 1 ? " stage" : " stages");
  if (options.replicas > 1) absl::StrAppend(&what, " x ", options.replicas, " replicas");
  return absl::StrCat(name, " into ", what);
}

}  // namespace

absl::StatusOr<proto::Plan> PlanPipeline(const proto::Profile& profile,
                                         const PlannerOptions& options) {
  if (absl::Status s = CheckOptions(options); !s.ok()) return s;
  absl::StatusOr<CutModel> cut_or = CutModel::Build(profile, options.node_order);
  if (!cut_or.ok()) return cut_or.status();
  const CutModel& cut = *cut_or;
  const int n = cut.num_nodes(), k = options.num_stages, r = options.replicas;
  if (k > n) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot split ", n, " nodes into ", k, " stages (each stage needs a node)"));
  }
  absl::StatusOr<std::vector<ResolvedDevice>> devices_or = ResolveDevices(profile, cut, options);
  if (!devices_or.ok()) return devices_or.status();
  const std::vector<ResolvedDevice>& devices = *devices_or;

  // Micro-batch candidates.
  const int replica_batch = (options.batch + r - 1) / r;
  const std::vector<int> profiled = ProfiledSizes(profile);
  for (int size : profiled) {
    if (size < 1) {
      return absl::InvalidArgumentError(absl::StrCat("the profile lists micro-batch size ", size));
    }
  }
  std::vector<int> candidates = options.microbatch_candidates;
  if (candidates.empty()) {
    for (int size : profiled) {
      if (size <= replica_batch) candidates.push_back(size);
    }
    if (candidates.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the profile has micro-batch sizes ", absl::StrJoin(profiled, ", "),
          ", none <= ", replica_batch, " images per replica (batch ", options.batch, ")"));
    }
  }
  for (int m : candidates) {
    if (m < 1 || m > replica_batch) {
      return absl::InvalidArgumentError(absl::StrCat("micro-batch ", m, " must be 1 .. ",
                                                     replica_batch, " (images per replica)"));
    }
    if (std::find(profiled.begin(), profiled.end(), m) == profiled.end()) {
      return absl::InvalidArgumentError(absl::StrCat("micro-batch ", m, " was not profiled (",
                                                     "profiled: ", absl::StrJoin(profiled, ", "),
                                                     ")"));
    }
  }
  std::sort(candidates.begin(), candidates.end());
  candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());

  const RangeTables tables = BuildRangeTables(cut, profile);
  std::vector<double> limits;
  for (const ResolvedDevice& d : devices) limits.push_back(d.memory_limit);
  const bool latency_mode = options.objective == PlannerOptions::Objective::kLatency;

  std::vector<Candidate> results;
  std::vector<std::vector<DeviceTimes>> all_times;  // per candidate, per device
  double smallest_max_memory = kInf;
  int smallest_max_memory_m = 0;
  double best_throughput_anywhere = 0;
  int best_throughput_m = 0;
  all_times.reserve(candidates.size());
  for (int m : candidates) {
    std::vector<DeviceTimes> times;
    WorkspaceCache workspace_cache;
    for (const ResolvedDevice& d : devices) {
      absl::StatusOr<DeviceTimes> t = TimesAt(d, m, n, &workspace_cache);
      if (!t.ok()) return t.status();
      times.push_back(*std::move(t));
    }
    all_times.push_back(std::move(times));
    std::vector<const DeviceTimes*> pointers;
    for (const DeviceTimes& t : all_times.back()) pointers.push_back(&t);
    MicrobatchCosts costs(cut, tables, options.link, m, options.buffers_in_flight, k, r, pointers,
                          limits);
    Candidate c;
    c.m = m;
    c.num_microbatches = (replica_batch + m - 1) / m;
    SplitSearch throughput_search(costs, cut, /*latency=*/false, kInf);
    std::vector<int> ends = throughput_search.Run();
    c.fits = !ends.empty();
    if (!c.fits) {
      if (smallest_max_memory == kInf) {
        smallest_max_memory = SmallestMaxMemory(costs);
        smallest_max_memory_m = m;
      }
      results.push_back(std::move(c));
      continue;
    }
    SplitCosts best = Evaluate(costs, cut, ends);
    const double best_throughput = r * m * 1000.0 / best.bottleneck;
    if (best_throughput > best_throughput_anywhere) {
      best_throughput_anywhere = best_throughput;
      best_throughput_m = m;
    }
    if (latency_mode) {
      const double cap = options.min_throughput > 0
                             ? r * m * 1000.0 / options.min_throughput * (1 + kFloorTolerance)
                             : kInf;
      SplitSearch latency_search(costs, cut, /*latency=*/true, cap);
      std::vector<int> latency_ends = latency_search.Run();
      if (latency_ends.empty()) {
        c.split = std::move(best);  // for the record: the best this m can do
        c.throughput = best_throughput;
        c.batch_ms = (c.num_microbatches + k - 1) * c.split.bottleneck;
        results.push_back(std::move(c));
        continue;
      }
      best = Evaluate(costs, cut, latency_ends);
    }
    c.feasible = true;
    c.split = std::move(best);
    c.throughput = r * m * 1000.0 / c.split.bottleneck;
    c.batch_ms = (c.num_microbatches + k - 1) * c.split.bottleneck;
    results.push_back(std::move(c));
  }

  int chosen = -1;
  for (int i = 0; i < static_cast<int>(results.size()); ++i) {
    const Candidate& c = results[i];
    if (!c.feasible) continue;
    if (chosen < 0) {
      chosen = i;
      continue;
    }
    const Candidate& b = results[chosen];
    const bool better = latency_mode
                            ? (c.split.latency < b.split.latency ||
                               (c.split.latency == b.split.latency && c.throughput > b.throughput))
                            : (c.batch_ms < b.batch_ms ||
                               (c.batch_ms == b.batch_ms && c.split.latency < b.split.latency));
    if (better) chosen = i;
  }
  if (chosen < 0) {
    const bool any_fit =
        std::any_of(results.begin(), results.end(), [](const Candidate& c) { return c.fits; });
    if (!any_fit) {
      std::set<double> distinct(limits.begin(), limits.end());
      std::string limit_text;
      if (distinct.size() == 1) {
        limit_text = absl::StrCat(Bytes(*distinct.begin(), 2), " per device");
      } else {
        std::vector<std::string> parts;
        for (const ResolvedDevice& d : devices) {
          parts.push_back(absl::StrCat(
              d.name, " ",
              d.memory_limit == kInf ? std::string("unlimited") : Bytes(d.memory_limit, 2)));
        }
        limit_text = absl::StrCat("the devices' memory (", absl::StrJoin(parts, ", "), ")");
      }
      return absl::ResourceExhaustedError(
          absl::StrCat("no split of ", SplitName(profile, options), " fits ", limit_text,
                       " (micro-batch ", smallest_max_memory_m, ", ", options.buffers_in_flight,
                       " activation buffers in flight); the smallest feasible maximum is ",
                       Bytes(smallest_max_memory, 2), " per device"));
    }
    return absl::ResourceExhaustedError(absl::StrFormat(
        "no split of %s reaches the throughput floor of %g img/s; the best is %.1f img/s "
        "(micro-batch %d)",
        SplitName(profile, options), options.min_throughput, best_throughput_anywhere,
        best_throughput_m));
  }

  // Fill the plan.
  const Candidate& c = results[chosen];
  const int chosen_index = chosen;
  const std::vector<DeviceTimes>& times = all_times[chosen_index];
  std::vector<const DeviceTimes*> pointers;
  for (const DeviceTimes& t : times) pointers.push_back(&t);
  MicrobatchCosts costs(cut, tables, options.link, c.m, options.buffers_in_flight, k, r, pointers,
                        limits);
  const SplitCosts& split = c.split;

  proto::Plan plan;
  plan.set_model(profile.model());
  plan.set_model_fingerprint(profile.model_fingerprint());
  plan.set_objective(latency_mode ? "latency" : "throughput");
  plan.set_num_stages(k);
  plan.set_replicas(r);
  plan.set_batch(options.batch);
  plan.set_microbatch(c.m);
  plan.set_num_microbatches(c.num_microbatches);
  for (int p = 0; p < n; ++p) plan.add_node_order(profile.nodes(cut.order()[p]).name());
  for (int rep = 0; rep < r; ++rep) {
    for (int s = 0, a = 0; s < k; a = split.ends[s] + 1, ++s) {
      const int b = split.ends[s];
      const int d = rep * k + s;
      proto::StagePlan* stage = plan.add_stages();
      stage->set_index(s);
      stage->set_device(devices[d].name);
      stage->set_speed_factor(devices[d].speed_factor);
      for (int p = a; p <= b; ++p) stage->add_nodes(plan.node_order(p));
      stage->set_first_node(a);
      stage->set_last_node(b);
      stage->set_compute_ms(costs.DeviceCompute(d, a, b));
      stage->set_send_ms(split.send[s]);
      stage->set_recv_ms(split.recv[s]);
      stage->set_weight_bytes(costs.WeightBytes(a, b));
      stage->set_activation_bytes(costs.ActivationBytes(a, b));
      stage->set_workspace_bytes(costs.WorkspaceBytes(d, a, b));
      stage->set_memory_bytes(stage->weight_bytes() + stage->activation_bytes() +
                              stage->workspace_bytes());
      stage->set_replica(rep);
    }
  }
  for (const SplitCosts::Route& route : split.routes) {
    proto::Transfer* transfer = plan.add_transfers();
    const CutTensor& t = cut.tensors()[route.tensor];
    transfer->set_tensor(t.name);
    transfer->set_from_stage(route.from);
    for (int to : route.to) transfer->add_to_stages(to);
    transfer->set_bytes(t.bytes_per_image * static_cast<uint64_t>(c.m));
    transfer->set_ms(costs.TensorMs(route.tensor));
  }
  proto::LinkSpec* link = plan.mutable_link();
  link->set_name(options.link.name);
  link->set_bandwidth_gbps(options.link.bandwidth_gbps);
  link->set_latency_us(options.link.latency_us);
  for (const ResolvedDevice& d : devices) plan.add_devices(d.name);
  plan.set_predicted_throughput(c.throughput);
  plan.set_predicted_latency_ms(split.latency);
  plan.set_predicted_batch_ms(c.batch_ms);
  plan.set_bubble_fraction(static_cast<double>(k - 1) / (c.num_microbatches + k - 1));
  plan.set_bottleneck_ms(split.bottleneck);
  plan.set_memory_limit_bytes(options.memory_limit_bytes);
  plan.set_created_by("yolopipe plan");
  plan.set_buffers_in_flight(options.buffers_in_flight);
  plan.set_min_throughput(options.min_throughput);
  plan.set_node_order_method(NodeOrderName(cut.order_kind()));
  for (const Candidate& other : results) {
    proto::MicrobatchChoice* choice = plan.add_microbatch_choices();
    choice->set_microbatch(other.m);
    choice->set_num_microbatches(other.num_microbatches);
    choice->set_feasible(other.feasible);
    if (!other.fits) continue;
    choice->set_bottleneck_ms(other.split.bottleneck);
    choice->set_predicted_throughput(other.throughput);
    choice->set_predicted_batch_ms(other.batch_ms);
    choice->set_predicted_latency_ms(other.split.latency);
  }
  return plan;
}

// ---------------------------------------------------------------------------------------------
std::string FormatPlanTable(const proto::Plan& plan) {
  std::string out;
  const int k = plan.num_stages(), r = std::max(1, plan.replicas());
  absl::StrAppendFormat(&out, "plan: %s", plan.model().empty() ? "(model)" : plan.model());
  if (!plan.model_fingerprint().empty()) absl::StrAppend(&out, " [", plan.model_fingerprint(), "]");
  absl::StrAppendFormat(&out, ", %d stage%s", k, k == 1 ? "" : "s");
  if (r > 1) absl::StrAppendFormat(&out, " x %d replicas", r);
  absl::StrAppend(&out, " on ", absl::StrJoin(plan.devices(), ", "), "\n");
  absl::StrAppendFormat(
      &out, "objective %s; batch %d = %d micro-batch%s of %d%s; link %s (%g GB/s, %g us)",
      plan.objective(), plan.batch(), plan.num_microbatches(),
      plan.num_microbatches() == 1 ? "" : "es", plan.microbatch(), r > 1 ? " per replica" : "",
      plan.link().name(), plan.link().bandwidth_gbps(), plan.link().latency_us());
  if (plan.memory_limit_bytes() > 0) {
    absl::StrAppend(&out, "; memory limit ", Bytes(static_cast<double>(plan.memory_limit_bytes())),
                    " per device");
  }
  if (plan.objective() == "latency" && plan.min_throughput() > 0) {
    absl::StrAppendFormat(&out, "; throughput floor %g img/s", plan.min_throughput());
  }
  if (!plan.node_order_method().empty()) {
    absl::StrAppend(&out, "; node order ", plan.node_order_method());
  }
  absl::StrAppend(&out, "\n\n");

  // Rows.
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"stage", "device", "nodes", "first .. last", "compute ms", "send ms", "recv ms",
                  "memory", "weights", "activations", "workspace"});
  for (const proto::StagePlan& s : plan.stages()) {
    std::string stage = r > 1 ? absl::StrCat(s.replica(), ".", s.index()) : absl::StrCat(s.index());
    std::string range = absl::StrCat(s.first_node(), "-", s.last_node(), " (", s.nodes_size(), ")");
    std::string names = s.nodes_size() == 0
                            ? std::string()
                            : absl::StrCat(s.nodes(0), " .. ", s.nodes(s.nodes_size() - 1));
    rows.push_back({stage, s.device(), range, names, absl::StrFormat("%.3f", s.compute_ms()),
                    absl::StrFormat("%.3f", s.send_ms()), absl::StrFormat("%.3f", s.recv_ms()),
                    Bytes(static_cast<double>(s.memory_bytes())),
                    Bytes(static_cast<double>(s.weight_bytes())),
                    Bytes(static_cast<double>(s.activation_bytes())),
                    Bytes(static_cast<double>(s.workspace_bytes()))});
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      const bool numeric = i >= 4;
      const std::string pad(width[i] - row[i].size(), ' ');
      absl::StrAppend(&line, i == 0 ? "" : "  ", numeric ? pad + row[i] : row[i] + pad);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    absl::StrAppend(&out, line, "\n");
  }

  // Transfers.
  uint64_t total = 0;
  int messages = 0;
  for (const proto::Transfer& t : plan.transfers()) {
    total += t.bytes() * static_cast<uint64_t>(t.to_stages_size());
    messages += t.to_stages_size();
  }
  absl::StrAppendFormat(&out, "\ntransfers per micro-batch%s: %d tensor%s, %d message%s, %s\n",
                        r > 1 ? " (each replica)" : "", plan.transfers_size(),
                        plan.transfers_size() == 1 ? "" : "s", messages, messages == 1 ? "" : "s",
                        Bytes(static_cast<double>(total)));
  constexpr int kMaxListed = 12;
  for (int i = 0; i < plan.transfers_size() && i < kMaxListed; ++i) {
    const proto::Transfer& t = plan.transfers(i);
    absl::StrAppendFormat(&out, "  %-28s stage %d -> %s  %s, %.3f ms each\n", t.tensor(),
                          t.from_stage(), absl::StrJoin(t.to_stages(), ", "),
                          Bytes(static_cast<double>(t.bytes())), t.ms());
  }
  if (plan.transfers_size() > kMaxListed) {
    absl::StrAppendFormat(&out, "  ... and %d more\n", plan.transfers_size() - kMaxListed);
  }

  // Bottleneck and predictions.
  std::string where;
  for (const proto::StagePlan& s : plan.stages()) {
    const std::pair<double, const char*> parts[] = {
        {s.compute_ms(), "compute"}, {s.send_ms(), "send"}, {s.recv_ms(), "receive"}};
    for (const auto& [ms, what] : parts) {
      if (where.empty() && ms == plan.bottleneck_ms()) {
        where = r > 1 ? absl::StrCat("stage ", s.replica(), ".", s.index(), " ", what)
                      : absl::StrCat("stage ", s.index(), " ", what);
      }
    }
  }
  const int m_count = plan.num_microbatches();
  absl::StrAppendFormat(&out, "\nbottleneck %.3f ms per micro-batch%s\n", plan.bottleneck_ms(),
                        where.empty() ? "" : absl::StrCat(" (", where, ")"));
  absl::StrAppendFormat(&out, "bubble %.1f%% = (K-1)/(M+K-1) = %d/%d under fill-and-drain\n",
                        100.0 * plan.bubble_fraction(), k - 1, m_count + k - 1);
  absl::StrAppendFormat(&out,
                        "predicted: %.1f img/s steady state; latency %.3f ms per micro-batch; "
                        "%.3f ms per batch of %d\n",
                        plan.predicted_throughput(), plan.predicted_latency_ms(),
                        plan.predicted_batch_ms(), plan.batch());
  if (plan.microbatch_choices_size() > 1) {
    std::vector<std::string> parts;
    for (const proto::MicrobatchChoice& ch : plan.microbatch_choices()) {
      std::string text = absl::StrCat("m=", ch.microbatch(), ": ");
      if (ch.bottleneck_ms() == 0 && !ch.feasible()) {
        absl::StrAppend(&text, "does not fit");
      } else {
        absl::StrAppendFormat(&text, "%.1f img/s, %.1f ms/batch", ch.predicted_throughput(),
                              ch.predicted_batch_ms());
        if (!ch.feasible()) absl::StrAppend(&text, " (below the floor)");
      }
      if (ch.microbatch() == plan.microbatch()) absl::StrAppend(&text, " (chosen)");
      parts.push_back(text);
    }
    absl::StrAppend(&out, "micro-batch sizes priced: ", absl::StrJoin(parts, "; "), "\n");
  }
  return out;
}

}  // namespace yolopipe
