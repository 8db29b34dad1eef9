// Partitioning: cuts a prepared graph into the subgraphs of pipeline stages (DESIGN.md, "Cuts").
//
// Each stage gets its own runnable Graph plus the list of tensors it receives and sends. A tensor
// produced in stage s and read by stage t > s goes straight from s to t (never relayed through the
// stages in between), and t receives it once however many of its nodes read it. Model inputs come
// from the host (from_stage -1); model outputs go to the host (-1 in to_stages).
//
// This layer knows nothing of plans or devices: callers turn a Plan (runtime/) into the per-stage
// node-name lists this takes.
#ifndef YOLOPIPE_GRAPH_PARTITION_H_
#define YOLOPIPE_GRAPH_PARTITION_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/ir.h"

namespace yolopipe {

// One stage's share of the graph.
struct StageGraph {
  int stage = 0;
  // The stage's nodes (same names, in the prepared graph's topological order), the initializers
  // they read (sharing the prepared graph's buffers), a Value with the prepared dtype and shape
  // for every tensor they use, and the prepared graph's metadata. Name: "<graph name>.stage<s>".
  // inputs  = the tensor names of `receives`, in that order;
  // outputs = the tensor names of `sends`, in that order.
  // Passes Graph::Validate() and can be given to an Executor as is.
  Graph graph;

  struct Receive {
    std::string tensor;
    int from_stage = 0;  // -1: a model input (from the host)
  };
  struct Send {
    std::string tensor;
    // Every later stage that reads the tensor, ascending, then -1 if it is a model output.
    std::vector<int> to_stages;
  };
  // Order of first use by the stage's nodes.
  std::vector<Receive> receives;
  // Production order (the stage's nodes in order, each node's outputs in order).
  std::vector<Send> sends;
};

// `stage_nodes[s]` lists the node names of stage s: stages in pipeline order, every node of
// `prepared` in exactly one stage, in any order within a stage (the graph's topological order is
// kept inside each stage). `prepared` is a graph from PrepareForExecution (graph/prepare.h): every
// tensor has a Value; it is not modified.
//
// InvalidArgument, naming the node, tensor and stages, for: no stages; an empty stage; an unknown
// node name; a node listed twice (in one stage or in two); a node in no stage; a stage reading a
// tensor that a later stage produces (the split is not in a topological order); a tensor without
// a Value. Fails as Validate()/TopologicalOrder() do for a malformed `prepared`.
//
// A model output that is itself a model input or an initializer is produced by no stage and
// appears in no stage's sends.
absl::StatusOr<std::vector<StageGraph>> PartitionGraph(
    const Graph& prepared, const std::vector<std::vector<std::string>>& stage_nodes);

}  // namespace yolopipe

#endif  // YOLOPIPE_GRAPH_PARTITION_H_
