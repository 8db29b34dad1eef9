#include "runtime/simulator/simulator.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace yolopipe {
namespace {

using ::testing::HasSubstr;

constexpr double kEps = 1e-9;

proto::Plan ChainPlan(const std::vector<double>& compute_ms, int microbatch, int batch) {
  proto::Plan plan;
  plan.set_model("test");
  plan.set_num_stages(static_cast<int>(compute_ms.size()));
  plan.set_replicas(1);
  plan.set_microbatch(microbatch);
  plan.set_batch(batch);
  for (size_t s = 0; s < compute_ms.size(); ++s) {
    proto::StagePlan* stage = plan.add_stages();
    stage->set_index(static_cast<int>(s));
    stage->set_device("cpu:" + std::to_string(s));
    stage->set_compute_ms(compute_ms[s]);
  }
  return plan;
}

proto::Plan UniformPlan(int k, double t, int microbatch, int batch) {
  return ChainPlan(std::vector<double>(k, t), microbatch, batch);
}

void SetLink(proto::Plan& plan, double bandwidth_gbps, double latency_us) {
  plan.mutable_link()->set_name("custom");
  plan.mutable_link()->set_bandwidth_gbps(bandwidth_gbps);
  plan.mutable_link()->set_latency_us(latency_us);
}

void AddTransfer(proto::Plan& plan, int from, const std::vector<int>& to, uint64_t bytes) {
  proto::Transfer* transfer = plan.add_transfers();
  transfer->set_tensor("t" + std::to_string(plan.transfers_size()));
  transfer->set_from_stage(from);
  for (int d : to) transfer->add_to_stages(d);
  transfer->set_bytes(bytes);
}

SimulationResult Sim(const proto::Plan& plan, SimulationOptions options = {},
                     TraceWriter* trace = nullptr) {
  auto result = Simulate(plan, options, trace);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *result : SimulationResult{};
}

// ---------------------------------------------------------------------------------------------
// Closed forms.

TEST(SimulatorTest, UniformStagesReproduceFillAndDrain) {
  const double t = 1.5;
  for (int k = 1; k <= 6; ++k) {
    for (int m : {1, 5, 12, 40}) {
      for (int buffers : {1, 2, 3}) {
        SCOPED_TRACE(testing::Message() << "K=" << k << " M=" << m << " B=" << buffers);
        const int microbatch = 4;
        SimulationOptions options;
        options.buffers_in_flight = buffers;
        const SimulationResult r = Sim(UniformPlan(k, t, microbatch, m * microbatch), options);
        EXPECT_EQ(r.num_microbatches, m);
        EXPECT_NEAR(r.makespan_ms, (m + k - 1) * t, kEps);
        EXPECT_NEAR(r.bubble_fraction, static_cast<double>(k - 1) / (m + k - 1), kEps);
        EXPECT_NEAR(r.throughput, m * microbatch * 1000.0 / ((m + k - 1) * t), 1e-6);
        ASSERT_EQ(r.stages.size(), static_cast<size_t>(k));
        for (const StageStats& stage : r.stages) {
          EXPECT_NEAR(stage.compute_ms, m * t, kEps);
          EXPECT_NEAR(stage.busy_ms, m * t, kEps);
          EXPECT_NEAR(stage.idle_ms, (k - 1) * t, kEps);
          EXPECT_NEAR(stage.utilisation, static_cast<double>(m) / (m + k - 1), kEps);
        }
      }
    }
  }
}

TEST(SimulatorTest, UniformLatencyCountsTheWaitForAnInputSlot) {
  // K = 4, M = 12, B = 2: micro-batch i is admitted when stage 0 has computed i - 2, i.e. at
  // (i - 1) t for i >= 2 (0 for i < 2), and leaves at (i + K) t.
  const int k = 4, m = 12, buffers = 2;
  const double t = 2.5;
  std::vector<double> latencies;
  for (int i = 0; i < m; ++i) {
    const double admitted = i >= buffers ? (i - buffers + 1) * t : 0.0;
    latencies.push_back((i + k) * t - admitted);
  }
  double mean = 0;
  for (double l : latencies) mean += l / m;
  std::sort(latencies.begin(), latencies.end());
  const SimulationResult r = Sim(UniformPlan(k, t, 1, m));
  EXPECT_NEAR(r.latency_ms_mean, mean, kEps);
  // Nearest rank: ceil(0.5 * 12) = the 6th, ceil(0.99 * 12) = the 12th.
  EXPECT_NEAR(r.latency_ms_p50, latencies[5], kEps);
  EXPECT_NEAR(r.latency_ms_p99, latencies[11], kEps);
  EXPECT_NEAR(r.latency_ms_min, k * t, kEps);
}

TEST(SimulatorTest, OneMicrobatchTakesThePipelineLatency) {
  proto::Plan plan = ChainPlan({1.0, 2.0, 0.5}, 8, 8);
  SetLink(plan, 2.0, 30.0);                    // 2 GB/s = 2e6 bytes per ms
  AddTransfer(plan, 0, {1}, 4'000'000);        // 2 ms + 0.03
  AddTransfer(plan, 1, {2}, 1'000'000);        // 0.5 ms + 0.03
  plan.mutable_stages(0)->set_recv_ms(0.25);   // input upload
  plan.mutable_stages(2)->set_send_ms(0.125);  // output download
  const double expected = 0.25 + 1.0 + 2.03 + 2.0 + 0.53 + 0.5 + 0.125;
  const SimulationResult r = Sim(plan);
  EXPECT_NEAR(r.makespan_ms, expected, kEps);
  EXPECT_NEAR(r.latency_ms_mean, expected, kEps);
  EXPECT_NEAR(r.latency_ms_p99, expected, kEps);
  EXPECT_TRUE(r.uses_transfer_list);
}

TEST(SimulatorTest, SteadyStateThroughputIsMicrobatchOverBottleneck) {
  const proto::Plan plan = ChainPlan({1.0, 3.0, 2.0}, 4, 4 * 2000);
  SimulationOptions open;
  open.open_stream = true;
  const SimulationResult steady = Sim(plan, open);
  EXPECT_NEAR(steady.throughput, 4 * 1000.0 / 3.0, 1e-6);
  EXPECT_NEAR(steady.stages[1].utilisation, 1.0,
              1e-9);  // the bottleneck never waits
  EXPECT_NEAR(steady.stages[0].utilisation, 1.0 / 3.0, 1e-9);
  EXPECT_NEAR(steady.stages[2].utilisation, 2.0 / 3.0, 1e-9);
  // A long finite batch: the bottleneck runs back to back after 1 ms of fill and is followed by
  // 2 ms of drain.
  const SimulationResult finite = Sim(plan);
  EXPECT_NEAR(finite.makespan_ms, 1.0 + 3.0 * 2000 + 2.0, 1e-6);
  EXPECT_NEAR(finite.throughput / (4 * 1000.0 / 3.0), 1.0, 1e-3);
}

TEST(SimulatorTest, TransferBoundPlanIsLimitedByItsTransfer) {
  proto::Plan plan = ChainPlan({1.0, 1.0}, 2, 2 * 100);
  SetLink(plan, 1.0, 100.0);             // 1e6 bytes per ms, 0.1 ms per message
  AddTransfer(plan, 0, {1}, 4'000'000);  // 4.1 ms per micro-batch
  SimulationOptions open;
  open.open_stream = true;
  EXPECT_NEAR(Sim(plan, open).throughput, 2 * 1000.0 / 4.1, 1e-6);
  const SimulationResult finite = Sim(plan);
  EXPECT_NEAR(finite.makespan_ms, 1.0 + 100 * 4.1 + 1.0, 1e-6);
  // The streams, not the compute engines, are busy: the stages are rarely idle.
  EXPECT_NEAR(finite.stages[0].send_ms, 100 * 4.1, 1e-6);
  EXPECT_NEAR(finite.stages[1].recv_ms, 100 * 4.1, 1e-6);
  EXPECT_NEAR(finite.stages[0].compute_ms, 100 * 1.0, 1e-6);
  EXPECT_LT(finite.stages[0].utilisation, 0.25);
  // Stage 0 computes or sends from 0 until its last message has left at 411 ms; it idles only while
  // stage 1 computes the last micro-batch.
  EXPECT_NEAR(finite.stages[0].idle_ms, 1.0, 1e-6);
}

TEST(SimulatorTest, SplitTransfersOfOneMessageShareOneLatency) {
  // Two tensors from stage 0 to stage 1 travel as one message: one latency, summed bytes.
  proto::Plan plan = ChainPlan({1.0, 1.0}, 1, 1);
  SetLink(plan, 1.0, 500.0);
  AddTransfer(plan, 0, {1}, 1'000'000);
  AddTransfer(plan, 0, {1}, 2'000'000);
  EXPECT_NEAR(Sim(plan).makespan_ms, 1.0 + (3.0 + 0.5) + 1.0, kEps);
}

TEST(SimulatorTest, SkipConnectionsNeedEnoughBuffers) {
  // Stage 0 sends to stages 1 and 2 (like YOLOv8's P3/P4 reuse); every message lasts 1 ms, so stage
  // 0's send stream and stage 2's receive stream each carry 2 ms per micro-batch: the steady state
  // is one micro-batch per 2 ms once buffers do not hold it back.
  proto::Plan plan = ChainPlan({1.0, 1.0, 1.0}, 1, 1);
  SetLink(plan, 1.0, 0.0);
  AddTransfer(plan, 0, {1, 2}, 1'000'000);
  AddTransfer(plan, 1, {2}, 1'000'000);
  SimulationOptions open;
  open.open_stream = true;
  open.buffers_in_flight = 3;
  EXPECT_NEAR(Sim(plan, open).throughput, 1000.0 / 2.0, 1e-6);
  open.buffers_in_flight = 1;
  EXPECT_LT(Sim(plan, open).throughput, 1000.0 / 2.0 - 1.0);
  // In-order streams give the same here: nothing queues behind a later-ready message.
  open.stream_order = StreamOrder::kInOrder;
  open.buffers_in_flight = 3;
  EXPECT_NEAR(Sim(plan, open).throughput, 1000.0 / 2.0, 1e-6);
}

TEST(SimulatorTest, InOrderStreamsBlockBehindEarlierMicrobatches) {
  // Four stages of 2 ms; 0 -> {1, 3}, 1 -> {2, 3}, 2 -> 3, every message 1 ms. Stage 3 receives
  // 3 ms per micro-batch: with ready-order streams that is the steady state.
  proto::Plan plan = ChainPlan({2.0, 2.0, 2.0, 2.0}, 1, 1);
  SetLink(plan, 1.0, 0.0);
  AddTransfer(plan, 0, {1, 3}, 1'000'000);
  AddTransfer(plan, 1, {2, 3}, 1'000'000);
  AddTransfer(plan, 2, {3}, 1'000'000);
  SimulationOptions open;
  open.open_stream = true;
  open.buffers_in_flight = 4;
  EXPECT_NEAR(Sim(plan, open).throughput, 1000.0 / 3.0, 1e-6);
  // In order, stage 3 takes micro-batch i + 1 from stage 0 only after i from stage 2, and stage 0's
  // next message to stage 1 waits behind it: the cycle 2->3 (i), 0->3 (i+1), 0->1 (i+2), compute 1,
  // 1->2, compute 2, 2->3 (i+2) takes 1+1+1+2+1+2 = 8 ms per two micro-batches.
  open.stream_order = StreamOrder::kInOrder;
  for (int buffers : {2, 4, 8}) {
    open.buffers_in_flight = buffers;
    EXPECT_NEAR(Sim(plan, open).throughput, 1000.0 / 4.0, 1e-6) << "B=" << buffers;
  }
}

TEST(SimulatorTest, BuffersDefaultToThePlansThenToDoubleBuffering) {
  proto::Plan plan = ChainPlan({1.0, 1.0, 1.0}, 1, 64);
  SetLink(plan, 1.0, 0.0);
  AddTransfer(plan, 0, {1, 2}, 1'000'000);
  AddTransfer(plan, 1, {2}, 1'000'000);
  SimulationOptions options;
  EXPECT_EQ(Sim(plan, options).buffers_in_flight, 2);
  options.buffers_in_flight = 2;
  const double two = Sim(plan, options).makespan_ms;
  options.buffers_in_flight = 1;
  const double one = Sim(plan, options).makespan_ms;
  ASSERT_GT(one, two);  // so that the next check can tell which was used
  plan.set_buffers_in_flight(1);
  options.buffers_in_flight = 0;
  const SimulationResult r = Sim(plan, options);
  EXPECT_EQ(r.buffers_in_flight, 1);
  EXPECT_DOUBLE_EQ(r.makespan_ms, one);
}

TEST(SimulatorTest, PartialLastMicrobatchScalesItsTimes) {
  // 10 images in micro-batches of 4: 4 + 4 + 2, the last at half the time.
  const SimulationResult one = Sim(ChainPlan({2.0}, 4, 10));
  EXPECT_EQ(one.num_microbatches, 3);
  EXPECT_NEAR(one.makespan_ms, 2.0 + 2.0 + 1.0, kEps);
  // Two stages: stage 1 computes the last micro-batch from 6 ms (after its second) to 7 ms.
  EXPECT_NEAR(Sim(ChainPlan({2.0, 2.0}, 4, 10)).makespan_ms, 7.0, kEps);
  // Transfers scale their bytes but not their latency.
  proto::Plan plan = ChainPlan({0.0, 0.0}, 4, 2);  // one micro-batch of 2 images = half
  SetLink(plan, 1.0, 200.0);
  AddTransfer(plan, 0, {1}, 4'000'000);
  EXPECT_NEAR(Sim(plan).makespan_ms, 2.0 + 0.2, kEps);
}

TEST(SimulatorTest, BatchOptionOverridesThePlan) {
  const proto::Plan plan = UniformPlan(2, 1.0, 2, 100);
  SimulationOptions options;
  options.batch = 6;  // 3 micro-batches
  const SimulationResult r = Sim(plan, options);
  EXPECT_EQ(r.batch, 6);
  EXPECT_EQ(r.num_microbatches, 3);
  EXPECT_NEAR(r.makespan_ms, 4.0, kEps);
}

TEST(SimulatorTest, PlanSendRecvTimesAreUsedWithoutTransferList) {
  proto::Plan plan = ChainPlan({1.0, 1.0}, 1, 1);
  plan.mutable_stages(0)->set_send_ms(3.0);
  plan.mutable_stages(1)->set_recv_ms(2.0);  // the message lasts max(3, 2)
  plan.mutable_stages(0)->set_recv_ms(0.5);  // input upload
  SimulationResult r = Sim(plan);
  EXPECT_FALSE(r.uses_transfer_list);
  EXPECT_NEAR(r.makespan_ms, 0.5 + 1.0 + 3.0 + 1.0, kEps);
  SimulationOptions open;
  open.open_stream = true;
  EXPECT_NEAR(Sim(plan, open).throughput, 1000.0 / 3.0, 1e-6);

  // With a transfer list, the list has priority over the stages' send_ms / recv_ms.
  SetLink(plan, 1.0, 0.0);
  AddTransfer(plan, 0, {1}, 500'000);  // 0.5 ms
  r = Sim(plan);
  EXPECT_TRUE(r.uses_transfer_list);
  EXPECT_NEAR(r.makespan_ms, 0.5 + 1.0 + 0.5 + 1.0, kEps);
}

TEST(SimulatorTest, HybridReplicasRunIndependently) {
  proto::Plan plan;
  plan.set_num_stages(2);
  plan.set_replicas(2);
  plan.set_microbatch(4);
  plan.set_batch(16);
  const double times[2] = {1.0, 2.0};
  for (int r = 0; r < 2; ++r) {
    for (int s = 0; s < 2; ++s) {
      proto::StagePlan* stage = plan.add_stages();
      stage->set_index(r * 2 + s);  // global numbering; positions come from the order
      stage->set_replica(r);
      stage->set_device("cuda:" + std::to_string(r * 2 + s));
      stage->set_compute_ms(times[r]);
    }
  }
  SetLink(plan, 1.0, 0.0);
  AddTransfer(plan, 0, {1}, 0);
  // 8 images each = 2 micro-batches: replica 0 ends at 3 ms, replica 1 at 6 ms.
  SimulationResult r = Sim(plan);
  EXPECT_EQ(r.num_microbatches, 4);
  EXPECT_NEAR(r.makespan_ms, 6.0, kEps);
  EXPECT_NEAR(r.throughput, 16 * 1000.0 / 6.0, 1e-6);
  ASSERT_EQ(r.stages.size(), 4u);
  EXPECT_EQ(r.stages[2].replica, 1);
  EXPECT_EQ(r.stages[3].position, 1);
  EXPECT_NEAR(r.stages[0].compute_ms, 2.0, kEps);
  EXPECT_NEAR(r.stages[0].idle_ms, 4.0, kEps);
  EXPECT_NEAR(r.stages[3].compute_ms, 4.0, kEps);
  // Steady state: the throughputs add up.
  SimulationOptions open;
  open.open_stream = true;
  EXPECT_NEAR(Sim(plan, open).throughput, 4 * 1000.0 / 1.0 + 4 * 1000.0 / 2.0, 1e-6);
  // An odd batch: 5 images per replica, the second micro-batch a quarter full.
  SimulationOptions odd;
  odd.batch = 10;
  r = Sim(plan, odd);
  EXPECT_NEAR(r.makespan_ms, 2.0 + 2.0 + 0.5, kEps);
}

TEST(SimulatorTest, OpenStreamHasNoBubbleOnUniformStages) {
  SimulationOptions open;
  open.open_stream = true;
  const SimulationResult r = Sim(UniformPlan(4, 2.0, 8, 8), open);
  EXPECT_EQ(r.num_microbatches, kOpenStreamMicrobatches);
  EXPECT_NEAR(r.throughput, 8 * 1000.0 / 2.0, 1e-6);
  EXPECT_NEAR(r.bubble_fraction, 0.0, 1e-9);
}

// ---------------------------------------------------------------------------------------------
// The trace.

TEST(SimulatorTest, TraceHasOneTrackPerStageAndOneEventPerOperation) {
  proto::Plan plan = ChainPlan({1.0, 2.0, 1.0}, 2, 8);  // 4 micro-batches
  SetLink(plan, 1.0, 10.0);
  AddTransfer(plan, 0, {1, 2}, 100'000);
  AddTransfer(plan, 1, {2}, 100'000);
  TraceWriter trace;
  SimulationOptions options;
  options.record_timeline = true;
  const SimulationResult r = Sim(plan, options, &trace);
  const std::vector<TraceEvent> events = trace.events();
  // 3 stages x 4 computes, and 3 messages x 4 micro-batches, each on a send and a recv lane.
  ASSERT_EQ(events.size(), 3u * 4 + 2 * 3 * 4);
  std::map<std::tuple<int, int, std::string>, int> lanes;  // (pid, tid, cat) -> count
  for (const TraceEvent& e : events) {
    ++lanes[{e.pid, e.tid, e.category}];
    ASSERT_FALSE(e.args.empty());
    EXPECT_EQ(e.args[0].key, "microbatch");
    const int64_t mb = std::get<int64_t>(e.args[0].value);
    EXPECT_EQ(e.name, "mb " + std::to_string(mb));
    EXPECT_GE(mb, 0);
    EXPECT_LT(mb, 4);
  }
  const int compute = static_cast<int>(TraceLane::kCompute);
  const int send = static_cast<int>(TraceLane::kSend);
  const int recv = static_cast<int>(TraceLane::kRecv);
  EXPECT_EQ((lanes[{0, compute, "compute"}]), 4);
  EXPECT_EQ((lanes[{1, compute, "compute"}]), 4);
  EXPECT_EQ((lanes[{2, compute, "compute"}]), 4);
  EXPECT_EQ((lanes[{0, send, "send"}]), 8);  // to stages 1 and 2
  EXPECT_EQ((lanes[{1, recv, "recv"}]), 4);
  EXPECT_EQ((lanes[{1, send, "send"}]), 4);
  EXPECT_EQ((lanes[{2, recv, "recv"}]), 8);
  // Event times are the timeline's, in microseconds.
  double last_end_us = 0;
  for (const TraceEvent& e : events) last_end_us = std::max(last_end_us, e.ts_us + e.dur_us);
  EXPECT_NEAR(last_end_us, r.makespan_ms * 1000.0, 1e-6);
  const std::string json = trace.ToJson();
  EXPECT_THAT(json, HasSubstr("\"stage 0 (cpu:0)\""));
  EXPECT_THAT(json, HasSubstr("\"stage 2 (cpu:2)\""));
  EXPECT_THAT(json, HasSubstr("\"to_stage\":2"));
}

// ---------------------------------------------------------------------------------------------
// Random plans, checked against the model's rules by an independent verifier.

struct RandomCase {
  proto::Plan plan;
  int buffers = 2;
};

RandomCase MakeRandomCase(std::mt19937& rng) {
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  // Few distinct values, so many events coincide.
  const double times[] = {0.0, 0.5, 1.0, 1.0, 1.5, 2.0, 3.0};
  RandomCase c;
  proto::Plan& plan = c.plan;
  const int k = pick(1, 5), replicas = pick(1, 2);
  plan.set_num_stages(k);
  plan.set_replicas(replicas);
  plan.set_microbatch(pick(1, 4));
  plan.set_batch(pick(1, 30));
  for (int r = 0; r < replicas; ++r) {
    for (int s = 0; s < k; ++s) {
      proto::StagePlan* stage = plan.add_stages();
      stage->set_index(s);
      stage->set_replica(r);
      stage->set_compute_ms(times[pick(0, 6)]);
      stage->set_send_ms(times[pick(0, 6)]);
      stage->set_recv_ms(times[pick(0, 6)]);
    }
  }
  // Make sure something takes time.
  plan.mutable_stages(0)->set_compute_ms(1.0);
  plan.mutable_stages(plan.stages_size() - 1)->set_compute_ms(1.0);
  if (k > 1 && pick(0, 3) > 0) {
    SetLink(plan, 1.0, pick(0, 1) * 250.0);
    for (int from = 0; from + 1 < k; ++from) {
      for (int tensors = pick(1, 2); tensors > 0; --tensors) {
        std::vector<int> to = {from + 1};
        for (int d = from + 2; d < k; ++d) {
          if (pick(0, 2) == 0) to.push_back(d);
        }
        AddTransfer(plan, from, to, static_cast<uint64_t>(pick(0, 4)) * 500'000);
      }
    }
  }
  c.buffers = pick(1, 4);
  return c;
}

// Checks `r.timeline` against the rules in simulator.h, re-derived here: durations, no overlap on
// any compute engine or stream, every dependency respected, no operation starting later than its
// dependencies and resources force, and the stream order: kInOrder streams serve (micro-batch,
// peer) in order; kReady never leaves an operation waiting while it is ready and its resources are
// free.
void VerifyTimeline(const proto::Plan& plan, int buffers, StreamOrder order,
                    const SimulationResult& r) {
  const int replicas = std::max(1, plan.replicas());
  const int k = plan.num_stages();
  const int batch = plan.batch(), m = plan.microbatch();
  // Stage positions: index order within each replica.
  std::vector<std::vector<const proto::StagePlan*>> stage(replicas);
  for (const auto& s : plan.stages()) stage[s.replica()].push_back(&s);
  for (auto& list : stage) {
    std::stable_sort(list.begin(), list.end(),
                     [](auto* a, auto* b) { return a->index() < b->index(); });
  }
  // Message time per (from, to) for a full micro-batch: {fixed, scaled}.
  std::map<std::pair<int, int>, std::pair<double, double>> message;
  for (const auto& t : plan.transfers()) {
    for (int to : t.to_stages()) {
      auto& ms = message[{t.from_stage(), to}];
      ms.first = plan.link().latency_us() / 1000.0;
      ms.second += t.bytes() / (plan.link().bandwidth_gbps() * 1e6);
    }
  }
  const bool listed = plan.transfers_size() > 0;
  using Key = std::tuple<int, int, int, int,
                         int>;  // kind, replica, from, to, microbatch
  std::map<Key, const SimulatedOp*> ops;
  for (const SimulatedOp& op : r.timeline) {
    const Key key{static_cast<int>(op.kind), op.replica, op.from, op.to, op.microbatch};
    ASSERT_EQ(ops.count(key), 0u) << "duplicate operation";
    ops[key] = &op;
  }
  auto find = [&](SimulatedOp::Kind kind, int rep, int from, int to, int i) -> const SimulatedOp* {
    auto it = ops.find(Key{static_cast<int>(kind), rep, from, to, i});
    return it == ops.end() ? nullptr : it->second;
  };
  using K = SimulatedOp::Kind;
  size_t expected_ops = 0;
  for (int rep = 0; rep < replicas; ++rep) {
    const int images = batch / replicas + (rep < batch % replicas ? 1 : 0);
    const int n = (images + m - 1) / m;
    std::vector<std::pair<int, int>> routes;  // (from, to)
    if (listed) {
      for (const auto& [pair, ms] : message) routes.push_back(pair);
    } else {
      for (int s = 0; s + 1 < k; ++s) routes.emplace_back(s, s + 1);
    }
    const double input = stage[rep][0]->recv_ms(), output = stage[rep][k - 1]->send_ms();
    for (int i = 0; i < n; ++i) {
      const double f = i == n - 1 ? static_cast<double>(images - (n - 1) * m) / m : 1.0;
      // Existence and durations.
      for (int s = 0; s < k; ++s) {
        const SimulatedOp* c = find(K::kCompute, rep, s, s, i);
        ASSERT_NE(c, nullptr);
        EXPECT_NEAR(c->end_ms - c->start_ms, stage[rep][s]->compute_ms() * f, kEps);
        ++expected_ops;
      }
      for (const auto& [from, to] : routes) {
        const SimulatedOp* t = find(K::kTransfer, rep, from, to, i);
        ASSERT_NE(t, nullptr);
        const double d = listed
                             ? message[{from, to}].first + message[{from, to}].second * f
                             : std::max(stage[rep][from]->send_ms(), stage[rep][to]->recv_ms()) * f;
        EXPECT_NEAR(t->end_ms - t->start_ms, d, kEps);
        ++expected_ops;
      }
      if (input > 0) {
        const SimulatedOp* in = find(K::kInput, rep, -1, 0, i);
        ASSERT_NE(in, nullptr);
        EXPECT_NEAR(in->end_ms - in->start_ms, input * f, kEps);
        ++expected_ops;
      }
      if (output > 0) {
        const SimulatedOp* out = find(K::kOutput, rep, k - 1, -1, i);
        ASSERT_NE(out, nullptr);
        EXPECT_NEAR(out->end_ms - out->start_ms, output * f, kEps);
        ++expected_ops;
      }
    }
    // Dependencies of each operation (ends it must wait for).
    auto compute_end = [&](int s, int i) {
      return i < 0 ? 0.0 : find(K::kCompute, rep, s, s, i)->end_ms;
    };
    auto sends_done = [&](int s,
                          int i) {  // all of micro-batch i has left stage s
      if (i < 0) return 0.0;
      double t = compute_end(s, i);
      for (const auto& [from, to] : routes) {
        if (from == s) t = std::max(t, find(K::kTransfer, rep, from, to, i)->end_ms);
      }
      if (s == k - 1 && output > 0) t = std::max(t, find(K::kOutput, rep, s, -1, i)->end_ms);
      return t;
    };
    // Resource of an operation: (stage, 0 compute | 1 send | 2 recv).
    std::map<std::pair<int, int>, std::vector<const SimulatedOp*>> on;
    std::map<const SimulatedOp*, std::vector<std::pair<int, int>>> resources_of;
    for (const SimulatedOp& op : r.timeline) {
      if (op.replica != rep) continue;
      switch (op.kind) {
        case K::kCompute:
          resources_of[&op] = {{op.to, 0}};
          break;
        case K::kTransfer:
          resources_of[&op] = {{op.from, 1}, {op.to, 2}};
          break;
        case K::kInput:
          resources_of[&op] = {{0, 2}};
          break;
        case K::kOutput:
          resources_of[&op] = {{k - 1, 1}};
          break;
      }
      for (const auto& res : resources_of[&op]) on[res].push_back(&op);
    }
    std::map<const SimulatedOp*, std::vector<double>> resource_ends;  // ends on shared resources
    for (auto& [res, list] : on) {
      std::sort(list.begin(), list.end(),
                [](auto* a, auto* b) { return a->start_ms < b->start_ms; });
      double busy_until = 0;
      for (const SimulatedOp* op : list) {
        if (op->end_ms > op->start_ms) {
          EXPECT_GE(op->start_ms, busy_until - kEps)
              << "overlap on stage " << res.first << " resource " << res.second;
          busy_until = std::max(busy_until, op->end_ms);
        }
      }
      for (const SimulatedOp* op : list) {
        for (const SimulatedOp* other : list) {
          if (other != op) resource_ends[op].push_back(other->end_ms);
        }
      }
    }
    for (const SimulatedOp& op : r.timeline) {
      if (op.replica != rep) continue;
      const int i = op.microbatch;
      std::vector<double> deps;
      switch (op.kind) {
        case K::kCompute: {
          const int s = op.to;
          if (s == 0 && input > 0) deps.push_back(find(K::kInput, rep, -1, 0, i)->end_ms);
          for (const auto& [from, to] : routes) {
            if (to == s) deps.push_back(find(K::kTransfer, rep, from, to, i)->end_ms);
          }
          deps.push_back(compute_end(s, i - 1));
          deps.push_back(compute_end(s, i - buffers));  // input slot
          deps.push_back(sends_done(s, i - buffers));   // output slot
          break;
        }
        case K::kTransfer:
          deps.push_back(compute_end(op.from, i));
          deps.push_back(compute_end(op.to, i - buffers));
          if (i > 0) deps.push_back(find(K::kTransfer, rep, op.from, op.to, i - 1)->end_ms);
          break;
        case K::kInput:
          deps.push_back(compute_end(0, i - buffers));
          if (i > 0) deps.push_back(find(K::kInput, rep, -1, 0, i - 1)->end_ms);
          break;
        case K::kOutput:
          deps.push_back(compute_end(k - 1, i));
          if (i > 0) deps.push_back(find(K::kOutput, rep, k - 1, -1, i - 1)->end_ms);
          break;
      }
      for (double d : deps) EXPECT_GE(op.start_ms, d - kEps) << "dependency not respected";
      // Tight: the start is 0, a dependency's end, or the end of another operation on one of its
      // resources.
      bool tight = std::abs(op.start_ms) < kEps;
      for (double d : deps) tight = tight || std::abs(op.start_ms - d) < kEps;
      for (double e : resource_ends[&op]) tight = tight || std::abs(op.start_ms - e) < kEps;
      EXPECT_TRUE(tight) << "operation starts at " << op.start_ms << " for no reason";
      if (order == StreamOrder::kReady) {
        // Work-conserving: from the moment it was ready until it started, one of its resources was
        // busy with other operations all along.
        double ready = 0;
        for (double d : deps) ready = std::max(ready, d);
        std::vector<std::pair<double, double>> busy;
        for (const auto& res : resources_of[&op]) {
          for (const SimulatedOp* other : on[res]) {
            if (other != &op) busy.emplace_back(other->start_ms, other->end_ms);
          }
        }
        std::sort(busy.begin(), busy.end());
        double covered_until = ready;
        for (const auto& [a, b] : busy) {
          if (a <= covered_until + kEps) covered_until = std::max(covered_until, b);
        }
        EXPECT_GE(covered_until, op.start_ms - kEps)
            << "ready at " << ready << " with free resources at " << covered_until
            << " but started at " << op.start_ms;
      }
    }
    if (order == StreamOrder::kInOrder) {
      for (auto& [res, list] : on) {
        std::vector<const SimulatedOp*> sorted = list;
        std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) {
          return std::tie(a->microbatch, a->from, a->to) < std::tie(b->microbatch, b->from, b->to);
        });
        for (size_t j = 1; j < sorted.size(); ++j) {
          EXPECT_GE(sorted[j]->start_ms, sorted[j - 1]->end_ms - kEps) << "out of order";
        }
      }
    }
  }
  EXPECT_EQ(r.timeline.size(), expected_ops);
  double makespan = 0;
  for (const SimulatedOp& op : r.timeline) makespan = std::max(makespan, op.end_ms);
  EXPECT_NEAR(r.makespan_ms, makespan, kEps);
}

TEST(SimulatorTest, RandomPlansFollowTheModelsRules) {
  std::mt19937 rng(1234);
  for (int trial = 0; trial < 300; ++trial) {
    RandomCase c = MakeRandomCase(rng);
    SCOPED_TRACE(testing::Message() << "trial " << trial << "\n"
                                    << c.plan.DebugString() << "buffers " << c.buffers);
    for (StreamOrder order : {StreamOrder::kReady, StreamOrder::kInOrder}) {
      SimulationOptions options;
      options.buffers_in_flight = c.buffers;
      options.stream_order = order;
      options.record_timeline = true;
      const SimulationResult r = Sim(c.plan, options);
      VerifyTimeline(c.plan, c.buffers, order, r);
      if (HasFailure()) return;
    }
  }
}

using OpKey = std::tuple<int, int, int, int, int>;  // kind, replica, from, to, microbatch

std::map<OpKey, double> EndTimes(const SimulationResult& r) {
  std::map<OpKey, double> ends;
  for (const SimulatedOp& op : r.timeline) {
    ends[{static_cast<int>(op.kind), op.replica, op.from, op.to, op.microbatch}] = op.end_ms;
  }
  return ends;
}

TEST(SimulatorTest, MoreBuffersAreNeverSlowerInOrder) {
  // In-order streams form a max-plus system: more buffers only remove constraints, so every
  // operation ends no later.
  std::mt19937 rng(99);
  for (int trial = 0; trial < 200; ++trial) {
    RandomCase c = MakeRandomCase(rng);
    SCOPED_TRACE(testing::Message() << "trial " << trial << "\n" << c.plan.DebugString());
    std::map<OpKey, double> previous;
    double previous_makespan = 1e300;
    for (int buffers = 1; buffers <= 5; ++buffers) {
      SimulationOptions options;
      options.stream_order = StreamOrder::kInOrder;
      options.buffers_in_flight = buffers;
      options.record_timeline = true;
      const SimulationResult r = Sim(c.plan, options);
      EXPECT_LE(r.makespan_ms, previous_makespan + kEps) << "buffers " << buffers;
      previous_makespan = r.makespan_ms;
      const std::map<OpKey, double> ends = EndTimes(r);
      if (!previous.empty()) {
        ASSERT_EQ(ends.size(), previous.size());
        for (const auto& [key, end] : ends) EXPECT_LE(end, previous[key] + kEps);
      }
      previous = ends;
    }
    if (HasFailure()) return;
  }
}

// A random plan whose every stage sends only to the next one.
proto::Plan RandomChain(std::mt19937& rng) {
  RandomCase c = MakeRandomCase(rng);
  proto::Plan& plan = c.plan;
  plan.clear_transfers();
  const int k = plan.num_stages();
  if (k > 1 && rng() % 2 == 0) {
    SetLink(plan, 2.0, (rng() % 2) * 100.0);
    for (int s = 0; s + 1 < k; ++s) AddTransfer(plan, s, {s + 1}, (rng() % 5) * 500'000);
  }
  return plan;
}

TEST(SimulatorTest, BothStreamOrdersAgreeOnChains) {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 200; ++trial) {
    const proto::Plan plan = RandomChain(rng);
    SCOPED_TRACE(testing::Message() << "trial " << trial << "\n" << plan.DebugString());
    SimulationOptions options;
    options.buffers_in_flight = 1 + trial % 4;
    options.record_timeline = true;
    options.stream_order = StreamOrder::kReady;
    const std::map<OpKey, double> ready = EndTimes(Sim(plan, options));
    options.stream_order = StreamOrder::kInOrder;
    const std::map<OpKey, double> in_order = EndTimes(Sim(plan, options));
    ASSERT_EQ(ready.size(), in_order.size());
    for (const auto& [key, end] : ready) EXPECT_NEAR(end, in_order.at(key), kEps);
    if (HasFailure()) return;
  }
}

TEST(SimulatorTest, MoreBuffersAreNeverSlowerOnChains) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 200; ++trial) {
    const proto::Plan plan = RandomChain(rng);
    SCOPED_TRACE(testing::Message() << "trial " << trial << "\n" << plan.DebugString());
    double previous_makespan = 1e300, previous_steady = 0;
    for (int buffers = 1; buffers <= 5; ++buffers) {
      SimulationOptions options;
      options.buffers_in_flight = buffers;
      EXPECT_LE(Sim(plan, options).makespan_ms, previous_makespan + kEps) << "B=" << buffers;
      previous_makespan = Sim(plan, options).makespan_ms;
      options.open_stream = true;
      const double steady = Sim(plan, options).throughput;
      EXPECT_GE(steady, previous_steady * (1 - 1e-9)) << "B=" << buffers;
      previous_steady = steady;
    }
    if (HasFailure()) return;
  }
}

TEST(SimulatorTest, ResultsDoNotDependOnTheOrderOfThePlansLists) {
  // Shuffled transfers and destinations, multi-destination transfers split into single ones, stage
  // entries in another order: the same schedule. Many equal times make many ties.
  std::mt19937 rng(7);
  for (int trial = 0; trial < 100; ++trial) {
    RandomCase c = MakeRandomCase(rng);
    proto::Plan shuffled = c.plan;
    shuffled.clear_transfers();
    std::vector<proto::Transfer> transfers;
    for (const auto& t : c.plan.transfers()) {
      if (t.to_stages_size() > 1 && rng() % 2 == 0) {
        for (int to : t.to_stages()) {
          proto::Transfer single = t;
          single.clear_to_stages();
          single.add_to_stages(to);
          transfers.push_back(single);
        }
      } else {
        proto::Transfer copy = t;
        std::vector<int> to(t.to_stages().begin(), t.to_stages().end());
        std::shuffle(to.begin(), to.end(), rng);
        copy.clear_to_stages();
        for (int d : to) copy.add_to_stages(d);
        transfers.push_back(copy);
      }
    }
    std::shuffle(transfers.begin(), transfers.end(), rng);
    for (const auto& t : transfers) *shuffled.add_transfers() = t;
    std::vector<int> order(c.plan.stages_size());
    for (size_t g = 0; g < order.size(); ++g) order[g] = static_cast<int>(g);
    std::shuffle(order.begin(), order.end(), rng);
    shuffled.clear_stages();
    for (int g : order) *shuffled.add_stages() = c.plan.stages(g);

    SimulationOptions options;
    options.buffers_in_flight = c.buffers;
    options.stream_order = trial % 2 == 0 ? StreamOrder::kReady : StreamOrder::kInOrder;
    const SimulationResult a = Sim(c.plan, options), b = Sim(shuffled, options);
    SCOPED_TRACE(testing::Message() << "trial " << trial);
    EXPECT_DOUBLE_EQ(a.makespan_ms, b.makespan_ms);
    EXPECT_DOUBLE_EQ(a.latency_ms_mean, b.latency_ms_mean);
    EXPECT_DOUBLE_EQ(a.latency_ms_p99, b.latency_ms_p99);
    EXPECT_DOUBLE_EQ(a.bubble_fraction, b.bubble_fraction);
    ASSERT_EQ(a.stages.size(), b.stages.size());
    for (size_t j = 0; j < order.size(); ++j) {
      const StageStats& x = a.stages[order[j]];
      const StageStats& y = b.stages[j];
      EXPECT_EQ(x.position, y.position);
      EXPECT_EQ(x.replica, y.replica);
      EXPECT_DOUBLE_EQ(x.busy_ms, y.busy_ms);
      EXPECT_DOUBLE_EQ(x.send_ms, y.send_ms);
      EXPECT_DOUBLE_EQ(x.recv_ms, y.recv_ms);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Rejections.

void ExpectRejected(const proto::Plan& plan, const std::string& message,
                    SimulationOptions options = {}) {
  auto result = Simulate(plan, options);
  ASSERT_FALSE(result.ok()) << "accepted; expected: " << message;
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(result.status().message()), HasSubstr(message));
}

TEST(SimulatorRejectsTest, NoStages) {
  proto::Plan plan;
  plan.set_microbatch(1);
  plan.set_batch(1);
  ExpectRejected(plan, "the plan has no stages");
}

TEST(SimulatorRejectsTest, NonPositiveMicrobatch) {
  ExpectRejected(UniformPlan(2, 1.0, 0, 4), "microbatch is 0");
  ExpectRejected(UniformPlan(2, 1.0, -2, 4), "microbatch is -2");
}

TEST(SimulatorRejectsTest, BatchBelowOne) {
  ExpectRejected(UniformPlan(2, 1.0, 1, 0), "the plan's batch is 0 and none was given");
  SimulationOptions options;
  options.batch = -3;
  ExpectRejected(UniformPlan(2, 1.0, 1, 4), "batch is -3", options);
}

TEST(SimulatorRejectsTest, NegativeBuffers) {
  SimulationOptions options;
  options.buffers_in_flight = -1;
  ExpectRejected(UniformPlan(2, 1.0, 1, 4), "buffers_in_flight is -1", options);
}

TEST(SimulatorRejectsTest, NegativeOrNonFiniteTimes) {
  proto::Plan plan = UniformPlan(3, 1.0, 1, 4);
  plan.mutable_stages(1)->set_compute_ms(-1.0);
  ExpectRejected(plan, "stage 1 (index 1, cpu:1): compute_ms is -1");
  plan = UniformPlan(3, 1.0, 1, 4);
  plan.mutable_stages(2)->set_send_ms(std::nan(""));
  ExpectRejected(plan, "stage 2 (index 2, cpu:2): send_ms is nan");
  plan = UniformPlan(3, 1.0, 1, 4);
  plan.mutable_stages(0)->set_recv_ms(-0.5);
  ExpectRejected(plan, "recv_ms is -0.5");
}

TEST(SimulatorRejectsTest, TransfersToUnknownStages) {
  proto::Plan plan = UniformPlan(3, 1.0, 1, 4);
  SetLink(plan, 1.0, 0.0);
  AddTransfer(plan, 0, {1, 7}, 10);
  ExpectRejected(plan, "transfer 0 (tensor 't1'): to_stage 7 is not a stage (0..2)");
  plan.clear_transfers();
  AddTransfer(plan, 3, {1}, 10);
  ExpectRejected(plan, "from_stage 3 is not a stage");
  plan.clear_transfers();
  AddTransfer(plan, -1, {1}, 10);
  ExpectRejected(plan, "from_stage -1 is not a stage");
}

TEST(SimulatorRejectsTest, BackwardOrMalformedTransfers) {
  proto::Plan plan = UniformPlan(3, 1.0, 1, 4);
  SetLink(plan, 1.0, 0.0);
  AddTransfer(plan, 2, {1}, 10);
  ExpectRejected(plan, "goes from stage 2 to stage 1; transfers must go to a later stage");
  plan.clear_transfers();
  AddTransfer(plan, 1, {1}, 10);
  ExpectRejected(plan, "goes from stage 1 to stage 1");
  plan.clear_transfers();
  AddTransfer(plan, 0, {}, 10);
  ExpectRejected(plan, "no to_stages");
  plan.clear_transfers();
  AddTransfer(plan, 0, {2, 2}, 10);
  ExpectRejected(plan, "lists to_stage 2 twice");
}

TEST(SimulatorRejectsTest, TransfersWithoutALink) {
  proto::Plan plan = UniformPlan(2, 1.0, 1, 4);
  AddTransfer(plan, 0, {1}, 10);
  ExpectRejected(plan, "bandwidth 0 GB/s; it must be > 0");
  SetLink(plan, 1.0, -5.0);
  ExpectRejected(plan, "latency -5 us");
}

TEST(SimulatorRejectsTest, StageCountsThatDoNotAddUp) {
  proto::Plan plan = UniformPlan(3, 1.0, 1, 4);
  plan.set_num_stages(4);
  ExpectRejected(plan, "the plan lists 3 stages, but num_stages 4 x replicas 1 = 4");
  plan = UniformPlan(4, 1.0, 1, 4);
  plan.set_replicas(2);
  plan.mutable_stages(2)->set_replica(1);
  plan.set_num_stages(2);
  ExpectRejected(plan, "replica 0 has 3 stages; every replica needs 2");
  plan.mutable_stages(1)->set_replica(5);
  ExpectRejected(plan, "replica 5 is not in [0, 2)");
  plan = UniformPlan(3, 1.0, 1, 4);
  plan.set_num_stages(0);
  plan.set_replicas(2);
  ExpectRejected(plan, "3 stages, not a multiple of its 2 replicas");
  plan.set_replicas(-1);
  ExpectRejected(plan, "replicas is -1");
}

TEST(SimulatorRejectsTest, NothingTakesTime) {
  ExpectRejected(UniformPlan(3, 0.0, 1, 4), "every compute and transfer time is zero");
}

TEST(SimulatorRejectsTest, TooManyMicrobatches) {
  ExpectRejected(UniformPlan(2, 1.0, 1, kMaxSimulatedMicrobatches + 1),
                 "the simulator handles up to");
}

}  // namespace
}  // namespace yolopipe
