// Pipeline schedule simulator: plays a Plan's schedule forward in time, micro-batch by
// micro-batch, and reports what it achieves: throughput, latency, idle time per stage, and
// optionally a Chrome trace of every operation. It answers "what would this split give on these
// devices and links" without the hardware: plan from a profile with a link preset, then simulate.
//
// Model (one replica of K stages; hybrid plans run R such replicas independently):
//   * Each stage has three resources: a compute engine, a send stream and a receive stream.
//     Transfers run on the streams and overlap compute.
//   * Micro-batch i on stage s: receive every tensor it needs from earlier stages, compute, then
//     send to each consuming stage. All tensors that stage s sends to stage d for micro-batch i
//     travel as one message (DESIGN.md, "Cuts"), which occupies s's send stream and d's receive
//     stream together for bytes / bandwidth + latency: a stream carries one message at a time.
//     Messages between one pair of stages keep micro-batch order; a stage computes its
//     micro-batches in order.
//   * Buffers in flight (B = buffers_in_flight): a stage cannot receive micro-batch i + B before
//     it has finished computing i (input slots), and cannot compute i + B before every message of
//     i has left it (output slots). B = 2 is double buffering.
//   * Which message a free stream carries next (SimulationOptions::stream_order):
//     kReady (default): the ready message of the oldest micro-batch (then the lowest pair of
//       stages), as an executor with a channel per peer stage behaves. This is the overlap the
//       planner's cost model assumes. Time advances from one operation's end to the next, and
//       every decision at an instant is made from the state at that instant (what has ended,
//       which resources are free), so the order in which simultaneous ends are noticed cannot
//       change the result. Like any greedy list scheduler it is not strictly monotone: on random
//       DAG plans about 0.5% of (B -> B+1) steps finished a batch later, by up to 10%, because a
//       younger micro-batch's message took a stream just before an older one became ready. On
//       chains it equals kInOrder and is monotone.
//     kInOrder: each stream serves its messages strictly in (micro-batch, peer stage) order, as
//       an executor that issues all of a stage's transfers on one in-order stream behaves. A
//       message into stage d from a far-back stage then waits behind the previous micro-batch's
//       message from d's neighbour: with skip connections (YOLOv8's P3/P4 reuse) this
//       head-of-line blocking can cost much throughput. Computed without an event queue: every
//       operation starts at the later of its inputs being ready and its resources being free, in
//       an order that respects every dependency (a max-plus recurrence), so more buffers can
//       never make it slower.
//     On a plain chain (every stage sends only to the next) both orders give the same schedule.
//
// Where the times come from:
//   * compute: StagePlan.compute_ms (per full micro-batch, device speed already applied).
//   * transfers: when Plan.transfers is not empty it has priority: messages follow its routes
//     (from_stage -> each of to_stages; stage numbers are positions 0..K-1 within a replica) and
//     last bytes / Plan.link.bandwidth_gbps + Plan.link.latency_us, one latency per message
//     (Transfer.ms is not read). Only when the plan lists no transfers are the stages' own
//     send_ms / recv_ms used: a chain s -> s + 1 whose message lasts
//     max(send_ms[s], recv_ms[s + 1]).
//   * In both cases the first stage's recv_ms is simulated as the input upload and the last
//     stage's send_ms as the output download (each on that stage's stream), when non-zero.
//   * A finite batch is fill-and-drain: M = ceil(images / microbatch) micro-batches per replica,
//     all available at t = 0. A last, partial micro-batch of k images scales its compute time and
//     the bytes part of its transfers by k / microbatch (latency does not scale); with send_ms /
//     recv_ms the whole message time scales. Linear scaling is an approximation: real kernels are
//     less efficient on small batches.
//   * Hybrid (Plan.replicas = R > 1): the batch is split as evenly as possible (replica r gets
//     floor(B/R) images, plus one for r < B mod R); replicas share nothing. A replica's stages
//     are the StagePlans with that `replica`, in order of `index`.
//
// Stateless and thread-safe.
#ifndef YOLOPIPE_RUNTIME_SIMULATOR_SIMULATOR_H_
#define YOLOPIPE_RUNTIME_SIMULATOR_SIMULATOR_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/proto/plan.pb.h"
#include "runtime/trace/trace.h"

namespace yolopipe {

enum class StreamOrder {
  kReady,    // a free stream carries the ready message of the oldest micro-batch
  kInOrder,  // a stream carries its messages strictly in (micro-batch, peer stage) order
};

struct SimulationOptions {
  // Images in the batch, all replicas together; 0 = the plan's batch.
  int batch = 0;
  // Micro-batch slots per stage (see the model above). 0: the plan's buffers_in_flight (what its
  // memory figures assume), or 2 (double buffering) when the plan does not say.
  int buffers_in_flight = 0;
  // false: one finite batch, fill and drain, figures over [0, makespan].
  // true: an endless stream. Every replica runs n = max(M, kOpenStreamMicrobatches, 8·K·(B+1))
  // full micro-batches, and throughput, latency, busy/idle time and bubble describe the steady
  // state: the window between the completions of micro-batches n/4 and n/2, past the fill and
  // before any stage runs out of work.
  bool open_stream = false;
  StreamOrder stream_order = StreamOrder::kReady;
  // Keep every simulated operation in SimulationResult::timeline.
  bool record_timeline = false;
};

inline constexpr int kOpenStreamMicrobatches = 512;
// Largest number of micro-batches simulated per replica.
inline constexpr int kMaxSimulatedMicrobatches = 1 << 16;

// One simulated operation.
struct SimulatedOp {
  enum class Kind {
    kCompute,   // on stage `to`'s compute engine (from == to)
    kTransfer,  // a message from stage `from` (send stream) to stage `to` (receive stream)
    kInput,     // the input upload into stage 0's receive stream (from = -1, to = 0)
    kOutput,    // the output download from the last stage's send stream (from = K-1, to = -1)
  };
  Kind kind = Kind::kCompute;
  int replica = 0;
  int from = 0;  // stage positions within the replica, 0..K-1
  int to = 0;
  int microbatch = 0;  // within the replica, 0-based
  double start_ms = 0.0;
  double end_ms = 0.0;
};

// Per stage, over the measurement window ([0, makespan], or the steady-state window of an open
// stream). All times in ms.
struct StageStats {
  int replica = 0;
  int position = 0;  // 0..K-1 within the replica
  std::string device;
  double busy_ms = 0.0;      // time when compute, send or receive is active (their union)
  double idle_ms = 0.0;      // window - busy_ms: the stage does nothing at all
  double compute_ms = 0.0;   // time the compute engine is busy
  double send_ms = 0.0;      // time the send stream is busy
  double recv_ms = 0.0;      // time the receive stream is busy
  double utilisation = 0.0;  // compute_ms / window, in [0, 1]
};

struct SimulationResult {
  int batch = 0;       // images simulated, all replicas (open stream: the whole stream)
  int microbatch = 0;  // images per full micro-batch
  int replicas = 1;
  int stages_per_replica = 0;
  int num_microbatches = 0;   // simulated, all replicas together
  int buffers_in_flight = 0;  // the number used
  bool open_stream = false;
  bool uses_transfer_list = false;  // times from Plan.transfers (else stages' send_ms / recv_ms)

  double makespan_ms = 0.0;  // the end of the last operation (open stream: of the whole stream)
  // Images per second: batch / makespan (open stream: the steady state, summed over replicas).
  double throughput = 0.0;
  // Per micro-batch, from the start of its first operation on the first stage (its input upload,
  // or when none, the moment a slot for it frees there) to the end of its last operation, all
  // replicas together (open stream: the window's micro-batches). Percentiles by nearest rank.
  double latency_ms_mean = 0.0;
  double latency_ms_p50 = 0.0;
  double latency_ms_p99 = 0.0;
  double latency_ms_min = 0.0;  // the fastest micro-batch: the pipeline's latency without queueing
  // Idle share of stage-time: sum of idle_ms / sum of window lengths over all stages. For K
  // uniform stages without transfer time this is (K-1)/(M+K-1).
  double bubble_fraction = 0.0;
  std::vector<StageStats> stages;  // in Plan.stages order
  // record_timeline only: every operation, in the order the simulation fixed its start.
  std::vector<SimulatedOp> timeline;
};

// Simulates `plan`. When `trace` is not null, records one track per stage (pid = the stage's
// position in Plan.stages) with compute / send / recv lanes and one event per operation, named
// "mb <i>" with args {microbatch: i, ...}; zero-length operations are left out.
//
// Errors (InvalidArgument, naming the stage or transfer): no stages; stage count not
// num_stages x replicas, or a replica without exactly num_stages stages; microbatch < 1;
// batch < 1 (neither the options nor the plan give one); buffers_in_flight < 0; negative or
// non-finite times; a transfer from or to an unknown stage, or not strictly forward; a transfer
// without a positive link bandwidth; more than kMaxSimulatedMicrobatches micro-batches; a plan
// in which nothing takes any time.
absl::StatusOr<SimulationResult> Simulate(const proto::Plan& plan, const SimulationOptions& options,
                                          TraceWriter* trace = nullptr);

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_SIMULATOR_SIMULATOR_H_
