// Test helper: a prepared graph's nodes cut into contiguous stages, in the node-name lists that
// PartitionGraph (graph/partition.h) takes.
#ifndef YOLOPIPE_GRAPH_TESTING_CONTIGUOUS_STAGES_H_
#define YOLOPIPE_GRAPH_TESTING_CONTIGUOUS_STAGES_H_

#include <cstddef>
#include <string>
#include <vector>

#include "graph/ir.h"

namespace yolopipe::testing {

// `prepared`'s nodes (topological order) in contiguous chunks: stage s ends before node ends[s].
inline std::vector<std::vector<std::string>> ContiguousStages(const Graph& prepared,
                                                              const std::vector<size_t>& ends) {
  std::vector<std::vector<std::string>> stages;
  size_t begin = 0;
  for (size_t end : ends) {
    stages.emplace_back();
    for (size_t i = begin; i < end; ++i) stages.back().push_back(prepared.nodes()[i].name);
    begin = end;
  }
  return stages;
}

}  // namespace yolopipe::testing

#endif  // YOLOPIPE_GRAPH_TESTING_CONTIGUOUS_STAGES_H_
