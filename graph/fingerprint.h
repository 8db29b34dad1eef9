// Model fingerprint: a stable digest of a model graph, so an artifact made for one model (a
// profile, a plan) is refused for another.
//
// What is covered, in this order (each item typed and length-prefixed, so no two different graphs
// encode to the same byte stream):
//   - graph inputs, in order: name, dtype, declared shape (unknown dimensions as -1);
//   - graph outputs, in order: names;
//   - nodes, in stored order: name, op type, input names (absent optional inputs as ""), output
//     names, attributes sorted by name (kind and value; floats by bit pattern; tensor attributes
//     by dtype, shape, layout and bytes);
//   - initializers, sorted by name: name, dtype, shape and every byte.
// Not covered: the graph's name, its metadata (class names, export details) and the shapes
// recorded for intermediate values, none of which change what the graph computes.
//
// Fingerprint the model as loaded (runtime/model.h `Model::graph`: imported or built, fused, not
// bound to a batch size), never a prepared graph: then the same ONNX file, or the same built-in
// name + seed + nc + imgsz, gives the same fingerprint whatever batch or micro-batch size is run.
// A prepared graph (bound to one input shape, constants folded) generally fingerprints
// differently, and graphs that differ only in their declared batch dimension are NOT made equal.
// A built-in model's declared input is (1, 3, imgsz, imgsz), so its fingerprint depends on imgsz.
//
// The algorithm is fixed (64-bit FNV-1a over the encoding above, little-endian integers), so a
// fingerprint is the same on every run, build and machine. Cost: one byte-serial pass over the
// weights, about 1 ns per byte (yolov8x, 273 MB of weights: ~0.3 s).
#ifndef YOLOPIPE_GRAPH_FINGERPRINT_H_
#define YOLOPIPE_GRAPH_FINGERPRINT_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "graph/ir.h"

namespace yolopipe {

inline constexpr uint64_t kFnv1a64Offset = 0xcbf29ce484222325ull;
inline constexpr uint64_t kFnv1a64Prime = 0x00000100000001b3ull;

// 64-bit FNV-1a of `bytes`, continuing from `state` (start from kFnv1a64Offset).
uint64_t Fnv1a64(absl::string_view bytes, uint64_t state = kFnv1a64Offset);

// 16 lowercase hex digits: the FNV-1a 64 of the graph's canonical encoding (see above).
// Thread-safe for concurrent calls on a graph nobody mutates.
std::string ModelFingerprint(const Graph& graph);

}  // namespace yolopipe

#endif  // YOLOPIPE_GRAPH_FINGERPRINT_H_
