// Helpers shared by the pipeline tests.
#ifndef YOLOPIPE_RUNTIME_PIPELINE_TESTING_TEST_UTIL_H_
#define YOLOPIPE_RUNTIME_PIPELINE_TESTING_TEST_UTIL_H_

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "base/tensor.h"
#include "runtime/model.h"

namespace yolopipe {
namespace testing {

// Each test binary loads the same model in many cases, so it is loaded once per (name, image
// size) and kept for the binary's lifetime.
// LoadModel(name) with BuiltinModelOptions::imgsz = imgsz; a model that does not load ends the
// test binary with the error (every case depends on it). Thread-safe.
inline const Model& CachedBuiltin(const std::string& name, int64_t imgsz) {
  static std::mutex mu;
  static auto* models = new std::map<std::pair<std::string, int64_t>, Model>;
  std::lock_guard<std::mutex> lock(mu);
  auto it = models->find({name, imgsz});
  if (it == models->end()) {
    BuiltinModelOptions options;
    options.imgsz = imgsz;
    absl::StatusOr<Model> model = LoadModel(name, options);
    if (!model.ok()) {
      std::cerr << "loading the built-in " << name << " at " << imgsz << ": " << model.status()
                << "\n";
      std::abort();
    }
    it = models->emplace(std::make_pair(name, imgsz), *std::move(model)).first;
  }
  return it->second;
}

// A (n, 3, imgsz, imgsz) float32 batch whose image i is SyntheticInput with seed first_seed + i:
// every image distinct, so a reordering of micro-batches changes the output.
inline Tensor DistinctBatch(int64_t n, int64_t imgsz, uint64_t first_seed) {
  Tensor batch(DType::kFloat32, {n, 3, imgsz, imgsz});
  const size_t image_bytes = static_cast<size_t>(3 * imgsz * imgsz) * sizeof(float);
  for (int64_t i = 0; i < n; ++i) {
    const Tensor one = SyntheticInput({1, 3, imgsz, imgsz}, first_seed + i);
    std::memcpy(static_cast<char*>(batch.raw_data()) + i * image_bytes, one.raw_data(),
                image_bytes);
  }
  return batch;
}

// A copy of row `i` of a batched tensor (an image of a batch, or its output): shape (1, ...).
inline Tensor RowOf(const Tensor& batch, int64_t i) {
  Shape shape = batch.shape();
  const size_t row_bytes = batch.bytes() / static_cast<size_t>(shape[0]);
  shape[0] = 1;
  Tensor row(batch.dtype(), shape);
  std::memcpy(row.raw_data(), static_cast<const char*>(batch.raw_data()) + i * row_bytes,
              row_bytes);
  return row;
}

}  // namespace testing
}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_PIPELINE_TESTING_TEST_UTIL_H_
