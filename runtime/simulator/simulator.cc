#include "runtime/simulator/simulator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace yolopipe {
namespace {

// One message route between two stages of a replica, for a full micro-batch.
struct Route {
  int peer = 0;            // the other stage's position
  double fixed_ms = 0.0;   // does not scale with the micro-batch's size (link latency)
  double scaled_ms = 0.0;  // scales with it (bytes / bandwidth)
  double bytes = 0.0;      // for the trace; 0 when the plan gives times only
};

// One replica's pipeline, with everything the simulation needs, validated.
struct ReplicaModel {
  int replica = 0;
  std::vector<int> plan_index;            // position -> index into Plan.stages
  std::vector<double> compute_ms;         // per full micro-batch
  double input_ms = 0.0;                  // upload into the first stage
  double output_ms = 0.0;                 // download from the last stage
  std::vector<std::vector<Route>> sends;  // [sender]: destinations, ascending
  std::vector<std::vector<Route>> recvs;  // [receiver]: sources, ascending
};

// Busy intervals of one stage's three resources.
struct StageIntervals {
  std::vector<std::pair<double, double>> compute, send, recv;
};

struct ReplicaRun {
  std::vector<double> admission_ms;  // per micro-batch
  std::vector<double> exit_ms;
  std::vector<StageIntervals> intervals;  // per position
  double makespan_ms = 0.0;
};

std::string StageName(const proto::Plan& plan, int g) {
  const proto::StagePlan& stage = plan.stages(g);
  std::string name = absl::StrCat("stage ", g, " (index ", stage.index());
  if (plan.replicas() > 1) absl::StrAppend(&name, ", replica ", stage.replica());
  if (!stage.device().empty()) absl::StrAppend(&name, ", ", stage.device());
  return name + ")";
}

absl::Status CheckTime(double value, const std::string& what) {
  if (!std::isfinite(value) || value < 0.0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is ", value, "; times must be finite and >= 0"));
  }
  return absl::OkStatus();
}

// Validates the plan's structure and builds one model per replica.
absl::StatusOr<std::vector<ReplicaModel>> BuildModels(const proto::Plan& plan,
                                                      bool* uses_transfer_list) {
  if (plan.stages_size() == 0) {
    return absl::InvalidArgumentError("the plan has no stages");
  }
  if (plan.replicas() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("replicas is ", plan.replicas(), "; it must be >= 1 (or 0 for 1)"));
  }
  const int replicas = std::max(1, plan.replicas());
  if (plan.num_stages() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_stages is ", plan.num_stages(), "; it must be >= 1"));
  }
  if (plan.num_stages() == 0 && plan.stages_size() % replicas != 0) {
    return absl::InvalidArgumentError(absl::StrCat("the plan has ", plan.stages_size(),
                                                   " stages, not a multiple of its ", replicas,
                                                   " replicas"));
  }
  const int k = plan.num_stages() > 0 ? plan.num_stages() : plan.stages_size() / replicas;
  if (plan.stages_size() != int64_t{k} * replicas) {
    return absl::InvalidArgumentError(absl::StrCat("the plan lists ", plan.stages_size(),
                                                   " stages, but num_stages ", k, " x replicas ",
                                                   replicas, " = ", int64_t{k} * replicas));
  }

  std::vector<std::vector<int>> members(replicas);
  for (int g = 0; g < plan.stages_size(); ++g) {
    const proto::StagePlan& stage = plan.stages(g);
    if (stage.replica() < 0 || stage.replica() >= replicas) {
      return absl::InvalidArgumentError(absl::StrCat(
          StageName(plan, g), ": replica ", stage.replica(), " is not in [0, ", replicas, ")"));
    }
    absl::Status status = CheckTime(stage.compute_ms(), StageName(plan, g) + ": compute_ms");
    if (status.ok()) status = CheckTime(stage.send_ms(), StageName(plan, g) + ": send_ms");
    if (status.ok()) status = CheckTime(stage.recv_ms(), StageName(plan, g) + ": recv_ms");
    if (!status.ok()) return status;
    members[stage.replica()].push_back(g);
  }
  for (int r = 0; r < replicas; ++r) {
    if (static_cast<int>(members[r].size()) != k) {
      return absl::InvalidArgumentError(absl::StrCat("replica ", r, " has ", members[r].size(),
                                                     " stages; every replica needs ", k));
    }
    // Pipeline order: by StagePlan.index, plan order breaking ties.
    std::stable_sort(members[r].begin(), members[r].end(),
                     [&](int a, int b) { return plan.stages(a).index() < plan.stages(b).index(); });
  }

  // Messages per (from, to) pair, for one replica.
  std::map<std::pair<int, int>, Route> messages;
  *uses_transfer_list = plan.transfers_size() > 0;
  if (*uses_transfer_list) {
    const double bandwidth = plan.link().bandwidth_gbps();
    const double latency_us = plan.link().latency_us();
    if (!std::isfinite(bandwidth) || bandwidth <= 0.0) {
      return absl::InvalidArgumentError(
          absl::StrCat("the plan lists ", plan.transfers_size(), " transfers but its link '",
                       plan.link().name(), "' has bandwidth ", bandwidth, " GB/s; it must be > 0"));
    }
    if (!std::isfinite(latency_us) || latency_us < 0.0) {
      return absl::InvalidArgumentError(absl::StrCat("link '", plan.link().name(), "' has latency ",
                                                     latency_us, " us; it must be >= 0"));
    }
    for (int t = 0; t < plan.transfers_size(); ++t) {
      const proto::Transfer& transfer = plan.transfers(t);
      const std::string name = absl::StrCat("transfer ", t, " (tensor '", transfer.tensor(), "')");
      if (transfer.from_stage() < 0 || transfer.from_stage() >= k) {
        return absl::InvalidArgumentError(absl::StrCat(name, ": from_stage ", transfer.from_stage(),
                                                       " is not a stage (0..", k - 1, ")"));
      }
      if (transfer.to_stages_size() == 0) {
        return absl::InvalidArgumentError(absl::StrCat(name, ": no to_stages"));
      }
      std::set<int> seen;
      for (int to : transfer.to_stages()) {
        if (to < 0 || to >= k) {
          return absl::InvalidArgumentError(
              absl::StrCat(name, ": to_stage ", to, " is not a stage (0..", k - 1, ")"));
        }
        if (to <= transfer.from_stage()) {
          return absl::InvalidArgumentError(absl::StrCat(name, ": goes from stage ",
                                                         transfer.from_stage(), " to stage ", to,
                                                         "; transfers must go to a later stage"));
        }
        if (!seen.insert(to).second) {
          return absl::InvalidArgumentError(absl::StrCat(name, ": lists to_stage ", to, " twice"));
        }
        Route& route = messages[{transfer.from_stage(), to}];
        route.bytes += static_cast<double>(transfer.bytes());
      }
    }
    for (auto& [pair, route] : messages) {
      route.fixed_ms = latency_us * 1e-3;
      route.scaled_ms = route.bytes / (bandwidth * 1e6);  // GB/s = 1e6 bytes per ms
    }
  }

  std::vector<ReplicaModel> models(replicas);
  for (int r = 0; r < replicas; ++r) {
    ReplicaModel& model = models[r];
    model.replica = r;
    model.plan_index = members[r];
    model.sends.resize(k);
    model.recvs.resize(k);
    for (int s = 0; s < k; ++s) model.compute_ms.push_back(plan.stages(members[r][s]).compute_ms());
    model.input_ms = plan.stages(members[r][0]).recv_ms();
    model.output_ms = plan.stages(members[r][k - 1]).send_ms();
    if (*uses_transfer_list) {
      for (const auto& [pair, route] : messages) {  // ordered by (from, to)
        Route out = route, in = route;
        out.peer = pair.second;
        in.peer = pair.first;
        model.sends[pair.first].push_back(out);
        model.recvs[pair.second].push_back(in);
      }
    } else {
      for (int s = 0; s + 1 < k; ++s) {
        Route route;
        route.scaled_ms = std::max(plan.stages(members[r][s]).send_ms(),
                                   plan.stages(members[r][s + 1]).recv_ms());
        Route out = route, in = route;
        out.peer = s + 1;
        in.peer = s;
        model.sends[s].push_back(out);
        model.recvs[s + 1].push_back(in);
      }
    }
    for (auto& list : model.recvs) {
      std::sort(list.begin(), list.end(),
                [](const Route& a, const Route& b) { return a.peer < b.peer; });
    }
    bool any_time = model.input_ms > 0.0 || model.output_ms > 0.0;
    for (int s = 0; s < k; ++s) {
      any_time = any_time || model.compute_ms[s] > 0.0;
      for (const Route& route : model.sends[s]) {
        any_time = any_time || route.fixed_ms + route.scaled_ms > 0.0;
      }
    }
    if (!any_time) {
      return absl::InvalidArgumentError(absl::StrCat(
          "replica ", r, ": every compute and transfer time is zero; nothing to simulate"));
    }
  }
  return models;
}

// Records the trace event and the timeline entry of one operation.
class Recorder {
 public:
  Recorder(TraceWriter* trace, std::vector<SimulatedOp>* timeline)
      : trace_(trace), timeline_(timeline) {}

  void Op(const ReplicaModel& model, SimulatedOp::Kind kind, int from, int to, int microbatch,
          double start_ms, double end_ms, double bytes) {
    if (timeline_ != nullptr) {
      timeline_->push_back(
          SimulatedOp{kind, model.replica, from, to, microbatch, start_ms, end_ms});
    }
    if (trace_ == nullptr || end_ms <= start_ms) return;
    const std::string name = absl::StrCat("mb ", microbatch);
    const double ts = start_ms * 1e3, dur = (end_ms - start_ms) * 1e3;
    switch (kind) {
      case SimulatedOp::Kind::kCompute:
        trace_->Add(name, "compute", model.plan_index[to], TraceLane::kCompute, ts, dur,
                    {{"microbatch", microbatch}});
        break;
      case SimulatedOp::Kind::kInput:
        trace_->Add(name, "recv", model.plan_index[to], TraceLane::kRecv, ts, dur,
                    {{"microbatch", microbatch}, {"from", "input"}});
        break;
      case SimulatedOp::Kind::kOutput:
        trace_->Add(name, "send", model.plan_index[from], TraceLane::kSend, ts, dur,
                    {{"microbatch", microbatch}, {"to", "output"}});
        break;
      case SimulatedOp::Kind::kTransfer: {
        std::vector<TraceArg> send_args = {{"microbatch", microbatch}, {"to_stage", to}};
        std::vector<TraceArg> recv_args = {{"microbatch", microbatch}, {"from_stage", from}};
        if (bytes > 0.0) {
          send_args.emplace_back("bytes", bytes);
          recv_args.emplace_back("bytes", bytes);
        }
        trace_->Add(name, "send", model.plan_index[from], TraceLane::kSend, ts, dur,
                    std::move(send_args));
        trace_->Add(name, "recv", model.plan_index[to], TraceLane::kRecv, ts, dur,
                    std::move(recv_args));
        break;
      }
    }
  }

 private:
  TraceWriter* trace_;
  std::vector<SimulatedOp>* timeline_;
};

// Simulates `n` micro-batches through one replica with StreamOrder::kInOrder; the last one has
// `last_fraction` of the full micro-batch's images. Every resource serves its operations in the
// order (micro-batch, peer stage), and this loop visits them in an order in which every operation's
// inputs were computed before it, so each start time is final: no event queue, and no tie to break.
ReplicaRun RunReplicaInOrder(const ReplicaModel& model, int n, double last_fraction, int buffers,
                             Recorder& recorder) {
  const int k = static_cast<int>(model.compute_ms.size());
  ReplicaRun run;
  run.admission_ms.assign(n, 0.0);
  run.exit_ms.assign(n, 0.0);
  run.intervals.resize(k);
  std::vector<double> compute_end(static_cast<size_t>(n) * k, 0.0);
  std::vector<double> sends_done(static_cast<size_t>(n) * k,
                                 0.0);  // all of (i, s) has left s
  std::vector<double> compute_free(k, 0.0), send_free(k, 0.0), recv_free(k, 0.0);
  const auto at = [k](int i, int s) { return static_cast<size_t>(i) * k + s; };

  for (int i = 0; i < n; ++i) {
    const double fraction = i == n - 1 ? last_fraction : 1.0;
    double exit = 0.0;
    for (int s = 0; s < k; ++s) {
      // Input slot: micro-batch i - B must have been computed here.
      const double slot = i >= buffers ? compute_end[at(i - buffers, s)] : 0.0;
      double inputs_ready = slot;
      if (s == 0) {
        run.admission_ms[i] = slot;
        if (model.input_ms > 0.0) {
          const double start = std::max(slot, recv_free[0]);
          const double end = start + model.input_ms * fraction;
          recv_free[0] = end;
          run.admission_ms[i] = start;
          inputs_ready = end;
          run.intervals[0].recv.emplace_back(start, end);
          recorder.Op(model, SimulatedOp::Kind::kInput, -1, 0, i, start, end, 0.0);
        }
      }
      for (const Route& route : model.recvs[s]) {
        const int from = route.peer;
        const double start =
            std::max({compute_end[at(i, from)], send_free[from], recv_free[s], slot});
        const double end = start + route.fixed_ms + route.scaled_ms * fraction;
        send_free[from] = end;
        recv_free[s] = end;
        sends_done[at(i, from)] = std::max(sends_done[at(i, from)], end);
        inputs_ready = std::max(inputs_ready, end);
        run.intervals[from].send.emplace_back(start, end);
        run.intervals[s].recv.emplace_back(start, end);
        recorder.Op(model, SimulatedOp::Kind::kTransfer, from, s, i, start, end,
                    route.bytes * fraction);
      }
      // Output slot: every message of micro-batch i - B must have left this stage.
      const double out_slot = i >= buffers ? sends_done[at(i - buffers, s)] : 0.0;
      const double start = std::max({inputs_ready, compute_free[s], out_slot});
      const double end = start + model.compute_ms[s] * fraction;
      compute_free[s] = end;
      compute_end[at(i, s)] = end;
      sends_done[at(i, s)] = end;
      run.intervals[s].compute.emplace_back(start, end);
      recorder.Op(model, SimulatedOp::Kind::kCompute, s, s, i, start, end, 0.0);
      exit = std::max(exit, end);
      if (s == k - 1 && model.output_ms > 0.0) {
        const double out_start = std::max(end, send_free[s]);
        const double out_end = out_start + model.output_ms * fraction;
        send_free[s] = out_end;
        sends_done[at(i, s)] = out_end;
        run.intervals[s].send.emplace_back(out_start, out_end);
        recorder.Op(model, SimulatedOp::Kind::kOutput, s, -1, i, out_start, out_end, 0.0);
        exit = std::max(exit, out_end);
      }
    }
    // The micro-batch leaves when the last of its operations ends (its messages included).
    for (int s = 0; s < k; ++s) exit = std::max(exit, sends_done[at(i, s)]);
    run.exit_ms[i] = exit;
    run.makespan_ms = std::max(run.makespan_ms, exit);
  }
  return run;
}

// Simulates `n` micro-batches through one replica with StreamOrder::kReady: whenever a resource is
// free it starts the ready operation of the oldest micro-batch (then the lowest (from, to) stage
// pair). Messages between one pair of stages stay in micro-batch order (a FIFO channel), and each
// stage computes its micro-batches in order.
//
// Time advances from one operation end to the next. At each instant every decision is made from the
// state alone (what has ended by now, which resources are free), never from the order in which
// simultaneous ends were noticed, so ties cannot change the result.
absl::StatusOr<ReplicaRun> RunReplicaReady(const ReplicaModel& model, int n, double last_fraction,
                                           int buffers, Recorder& recorder) {
  constexpr double kNotYet = std::numeric_limits<double>::infinity();
  const int k = static_cast<int>(model.compute_ms.size());
  struct Channel {
    int from, to;
    Route route;
  };
  std::vector<Channel> channels;  // ascending (from, to)
  for (int from = 0; from < k; ++from) {
    for (const Route& route : model.sends[from]) channels.push_back({from, route.peer, route});
  }
  const int e = static_cast<int>(channels.size());
  std::vector<std::vector<int>> channels_into(k), channels_from(k);
  for (int c = 0; c < e; ++c) {
    channels_into[channels[c].to].push_back(c);
    channels_from[channels[c].from].push_back(c);
  }
  const bool has_input = model.input_ms > 0.0, has_output = model.output_ms > 0.0;

  ReplicaRun run;
  run.admission_ms.assign(n, 0.0);
  run.exit_ms.assign(n, 0.0);
  run.intervals.resize(k);
  if (n == 0) return run;
  std::vector<double> compute_end(static_cast<size_t>(n) * k, kNotYet);
  std::vector<double> message_end(static_cast<size_t>(n) * e, kNotYet);
  std::vector<double> input_end(n, kNotYet), output_end(n, kNotYet);
  const auto at = [k](int i, int s) { return static_cast<size_t>(i) * k + s; };
  const auto msg = [e](int i, int c) { return static_cast<size_t>(i) * e + c; };
  // When everything micro-batch i did on stage s (its compute and sends) had ended.
  const auto sends_done = [&](int i, int s) {
    if (i < 0) return 0.0;
    double t = compute_end[at(i, s)];
    for (int c : channels_from[s]) t = std::max(t, message_end[msg(i, c)]);
    if (s == k - 1 && has_output) t = std::max(t, output_end[i]);
    return t;
  };
  const auto compute_done = [&](int i, int s) { return i < 0 ? 0.0 : compute_end[at(i, s)]; };
  const auto fraction = [&](int i) { return i == n - 1 ? last_fraction : 1.0; };

  std::vector<int> next_compute(k, 0), next_message(e, 0);
  int next_input = has_input ? 0 : n, next_output = has_output ? 0 : n;
  std::vector<double> compute_free(k, 0.0), send_free(k, 0.0), recv_free(k, 0.0);
  int64_t remaining =
      static_cast<int64_t>(n) * (k + e) + (has_input ? n : 0) + (has_output ? n : 0);

  // A candidate: the next operation of one in-order queue.
  enum class Queue { kInput, kMessage, kCompute, kOutput };
  struct Candidate {
    int microbatch;
    int from, to;  // stage pair (priority among equal micro-batches)
    Queue queue;
    int index;  // stage or channel
  };
  double now = 0.0;
  while (remaining > 0) {
    while (true) {
      // Collect the operations that are ready and whose resources are free now.
      std::vector<Candidate> ready;
      if (next_input < n) {
        const int i = next_input;
        const double r = std::max(i > 0 ? input_end[i - 1] : 0.0, compute_done(i - buffers, 0));
        if (r <= now && recv_free[0] <= now) ready.push_back({i, -1, 0, Queue::kInput, 0});
      }
      for (int c = 0; c < e; ++c) {
        const int i = next_message[c];
        if (i >= n) continue;
        const Channel& ch = channels[c];
        const double r =
            std::max({compute_end[at(i, ch.from)], i > 0 ? message_end[msg(i - 1, c)] : 0.0,
                      compute_done(i - buffers, ch.to)});
        if (r <= now && send_free[ch.from] <= now && recv_free[ch.to] <= now) {
          ready.push_back({i, ch.from, ch.to, Queue::kMessage, c});
        }
      }
      for (int s = 0; s < k; ++s) {
        const int i = next_compute[s];
        if (i >= n) continue;
        double r = std::max(compute_done(i - 1, s), sends_done(i - buffers, s));
        if (s == 0 && has_input) r = std::max(r, input_end[i]);
        for (int c : channels_into[s]) r = std::max(r, message_end[msg(i, c)]);
        if (r <= now && compute_free[s] <= now) ready.push_back({i, s, s, Queue::kCompute, s});
      }
      if (next_output < n) {
        const int i = next_output;
        const double r = std::max(compute_end[at(i, k - 1)], i > 0 ? output_end[i - 1] : 0.0);
        if (r <= now && send_free[k - 1] <= now) {
          ready.push_back({i, k - 1, k, Queue::kOutput, 0});
        }
      }
      if (ready.empty()) break;
      // Start the first in priority order, then look again: what it starts may change what is ready
      // (a zero-length operation ends at once) and which resources are free.
      const Candidate c =
          *std::min_element(ready.begin(), ready.end(), [](const Candidate& a, const Candidate& b) {
            return std::tie(a.microbatch, a.from, a.to) < std::tie(b.microbatch, b.from, b.to);
          });
      {
        const int i = c.microbatch;
        const double f = fraction(i);
        switch (c.queue) {
          case Queue::kInput: {
            const double end = now + model.input_ms * f;
            recv_free[0] = end;
            input_end[i] = end;
            run.admission_ms[i] = now;
            run.intervals[0].recv.emplace_back(now, end);
            recorder.Op(model, SimulatedOp::Kind::kInput, -1, 0, i, now, end, 0.0);
            ++next_input;
            --remaining;
            break;
          }
          case Queue::kMessage: {
            const Channel& ch = channels[c.index];
            const double end = now + ch.route.fixed_ms + ch.route.scaled_ms * f;
            send_free[ch.from] = end;
            recv_free[ch.to] = end;
            message_end[msg(i, c.index)] = end;
            run.intervals[ch.from].send.emplace_back(now, end);
            run.intervals[ch.to].recv.emplace_back(now, end);
            recorder.Op(model, SimulatedOp::Kind::kTransfer, ch.from, ch.to, i, now, end,
                        ch.route.bytes * f);
            ++next_message[c.index];
            --remaining;
            break;
          }
          case Queue::kCompute: {
            const int s = c.index;
            const double end = now + model.compute_ms[s] * f;
            compute_free[s] = end;
            compute_end[at(i, s)] = end;
            run.intervals[s].compute.emplace_back(now, end);
            recorder.Op(model, SimulatedOp::Kind::kCompute, s, s, i, now, end, 0.0);
            ++next_compute[s];
            --remaining;
            break;
          }
          case Queue::kOutput: {
            const double end = now + model.output_ms * f;
            send_free[k - 1] = end;
            output_end[i] = end;
            run.intervals[k - 1].send.emplace_back(now, end);
            recorder.Op(model, SimulatedOp::Kind::kOutput, k - 1, -1, i, now, end, 0.0);
            ++next_output;
            --remaining;
            break;
          }
        }
      }
    }
    if (remaining == 0) break;
    // Nothing more can start now: advance to the next end of a running operation.
    double next = kNotYet;
    for (int s = 0; s < k; ++s) {
      for (double t : {compute_free[s], send_free[s], recv_free[s]}) {
        if (t > now) next = std::min(next, t);
      }
    }
    if (next == kNotYet) {
      return absl::InternalError(
          absl::StrCat("replica ", model.replica, ": the simulation stalled at ", now, " ms"));
    }
    now = next;
  }

  for (int i = 0; i < n; ++i) {
    if (!has_input) run.admission_ms[i] = compute_done(i - buffers, 0);
    double exit = 0.0;
    for (int s = 0; s < k; ++s) exit = std::max(exit, sends_done(i, s));
    run.exit_ms[i] = exit;
    run.makespan_ms = std::max(run.makespan_ms, exit);
  }
  return run;
}

// Total length of `intervals` inside [lo, hi].
double ClippedLength(const std::vector<std::pair<double, double>>& intervals, double lo,
                     double hi) {
  double total = 0.0;
  for (const auto& [a, b] : intervals) total += std::max(0.0, std::min(b, hi) - std::max(a, lo));
  return total;
}

// Length of the union of all intervals inside [lo, hi].
double UnionLength(const StageIntervals& stage, double lo, double hi) {
  std::vector<std::pair<double, double>> all;
  for (const auto* list : {&stage.compute, &stage.send, &stage.recv}) {
    for (const auto& [a, b] : *list) {
      const double x = std::max(a, lo), y = std::min(b, hi);
      if (y > x) all.emplace_back(x, y);
    }
  }
  std::sort(all.begin(), all.end());
  double total = 0.0, cur_start = 0.0, cur_end = -1.0;
  bool open = false;
  for (const auto& [a, b] : all) {
    if (!open || a > cur_end) {
      if (open) total += cur_end - cur_start;
      cur_start = a;
      cur_end = b;
      open = true;
    } else {
      cur_end = std::max(cur_end, b);
    }
  }
  if (open) total += cur_end - cur_start;
  return total;
}

// Nearest-rank percentile of sorted values.
double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0.0;
  const size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size(), std::max<size_t>(rank, 1)) - 1];
}

}  // namespace

absl::StatusOr<SimulationResult> Simulate(const proto::Plan& plan, const SimulationOptions& options,
                                          TraceWriter* trace) {
  bool uses_transfer_list = false;
  auto models_or = BuildModels(plan, &uses_transfer_list);
  if (!models_or.ok()) return models_or.status();
  const std::vector<ReplicaModel>& models = *models_or;
  const int replicas = static_cast<int>(models.size());
  const int k = static_cast<int>(models[0].compute_ms.size());

  if (plan.microbatch() < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("the plan's microbatch is ", plan.microbatch(), "; it must be >= 1 image"));
  }
  if (options.batch < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch is ", options.batch, "; it must be >= 1 image"));
  }
  const int batch = options.batch > 0 ? options.batch : plan.batch();
  if (batch < 1) {
    return absl::InvalidArgumentError(absl::StrCat("batch must be >= 1 image: the plan's batch is ",
                                                   plan.batch(), " and none was given"));
  }
  if (options.buffers_in_flight < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "buffers_in_flight is ", options.buffers_in_flight, "; it must be >= 1 (0: the plan's)"));
  }
  int buffers = options.buffers_in_flight;
  if (buffers == 0) buffers = plan.buffers_in_flight() > 0 ? plan.buffers_in_flight() : 2;
  const int64_t microbatch = plan.microbatch();

  // Images and micro-batches per replica.
  std::vector<int64_t> images(replicas);
  std::vector<int> count(replicas);
  std::vector<double> last_fraction(replicas, 1.0);
  for (int r = 0; r < replicas; ++r) {
    images[r] = batch / replicas + (r < batch % replicas ? 1 : 0);
    int64_t m = (images[r] + microbatch - 1) / microbatch;
    if (options.open_stream) {
      // Enough that the pipeline is still full at the end of the measurement window (a stage holds
      // at most 2B micro-batches, its input and output slots).
      m = std::max<int64_t>({m, kOpenStreamMicrobatches, int64_t{8} * k * (buffers + 1)});
    } else if (m > 0) {
      last_fraction[r] =
          static_cast<double>(images[r] - (m - 1) * microbatch) / static_cast<double>(microbatch);
    }
    if (m > kMaxSimulatedMicrobatches) {
      return absl::InvalidArgumentError(absl::StrCat(
          "batch ", batch, " in micro-batches of ", microbatch, " makes ", m,
          " micro-batches per replica; the simulator handles up to ", kMaxSimulatedMicrobatches));
    }
    count[r] = static_cast<int>(m);
  }

  SimulationResult result;
  result.microbatch = static_cast<int>(microbatch);
  result.replicas = replicas;
  result.stages_per_replica = k;
  result.buffers_in_flight = buffers;
  result.open_stream = options.open_stream;
  result.uses_transfer_list = uses_transfer_list;

  if (trace != nullptr) {
    for (const ReplicaModel& model : models) {
      for (int s = 0; s < k; ++s) {
        const int g = model.plan_index[s];
        std::string name = replicas > 1 ? absl::StrCat("replica ", model.replica, " stage ", s)
                                        : absl::StrCat("stage ", s);
        if (!plan.stages(g).device().empty())
          absl::StrAppend(&name, " (", plan.stages(g).device(), ")");
        trace->AddDeviceTrack(g, name);
      }
    }
  }
  Recorder recorder(trace, options.record_timeline ? &result.timeline : nullptr);

  std::vector<ReplicaRun> runs;
  runs.reserve(replicas);
  for (int r = 0; r < replicas; ++r) {
    if (options.stream_order == StreamOrder::kInOrder) {
      runs.push_back(RunReplicaInOrder(models[r], count[r], last_fraction[r], buffers, recorder));
    } else {
      auto run = RunReplicaReady(models[r], count[r], last_fraction[r], buffers, recorder);
      if (!run.ok()) return run.status();
      runs.push_back(*std::move(run));
    }
    result.num_microbatches += count[r];
    result.makespan_ms = std::max(result.makespan_ms, runs.back().makespan_ms);
  }

  // Measurement windows and the micro-batches whose latency counts.
  std::vector<double> window_lo(replicas, 0.0), window_hi(replicas, result.makespan_ms);
  std::vector<double> latencies;
  if (options.open_stream) {
    result.batch = 0;
    for (int r = 0; r < replicas; ++r) {
      const int n = count[r];
      // Between the completions of micro-batches n/4 and n/2: past the fill, and every stage still
      // has work (the drain starts when the first stage runs out, after n/2).
      const int first = n / 4, last = n / 2;
      window_lo[r] = runs[r].exit_ms[first];
      window_hi[r] = runs[r].exit_ms[last];
      if (!(window_hi[r] > window_lo[r])) {
        return absl::InternalError(absl::StrCat("replica ", r, ": empty steady-state window"));
      }
      result.batch += static_cast<int>(
          std::min<int64_t>(static_cast<int64_t>(n) * microbatch, std::numeric_limits<int>::max()));
      result.throughput +=
          static_cast<double>((last - first) * microbatch) * 1e3 / (window_hi[r] - window_lo[r]);
      for (int i = first + 1; i <= last; ++i) {
        latencies.push_back(runs[r].exit_ms[i] - runs[r].admission_ms[i]);
      }
    }
  } else {
    result.batch = batch;
    result.throughput = static_cast<double>(batch) * 1e3 / result.makespan_ms;
    for (int r = 0; r < replicas; ++r) {
      for (int i = 0; i < count[r]; ++i) {
        latencies.push_back(runs[r].exit_ms[i] - runs[r].admission_ms[i]);
      }
    }
  }

  std::sort(latencies.begin(), latencies.end());
  if (!latencies.empty()) {
    result.latency_ms_mean =
        std::accumulate(latencies.begin(), latencies.end(), 0.0) / latencies.size();
    result.latency_ms_p50 = Percentile(latencies, 0.50);
    result.latency_ms_p99 = Percentile(latencies, 0.99);
    result.latency_ms_min = latencies.front();
  }

  result.stages.resize(plan.stages_size());
  double idle_total = 0.0, window_total = 0.0;
  for (int r = 0; r < replicas; ++r) {
    const double lo = window_lo[r], hi = window_hi[r], window = hi - lo;
    for (int s = 0; s < k; ++s) {
      const int g = models[r].plan_index[s];
      const StageIntervals& intervals = runs[r].intervals[s];
      StageStats& stats = result.stages[g];
      stats.replica = r;
      stats.position = s;
      stats.device = plan.stages(g).device();
      stats.compute_ms = ClippedLength(intervals.compute, lo, hi);
      stats.send_ms = ClippedLength(intervals.send, lo, hi);
      stats.recv_ms = ClippedLength(intervals.recv, lo, hi);
      stats.busy_ms = UnionLength(intervals, lo, hi);
      stats.idle_ms = std::max(0.0, window - stats.busy_ms);
      stats.utilisation = window > 0.0 ? stats.compute_ms / window : 0.0;
      idle_total += stats.idle_ms;
      window_total += window;
    }
  }
  result.bubble_fraction = window_total > 0.0 ? idle_total / window_total : 0.0;
  return result;
}

}  // namespace yolopipe
