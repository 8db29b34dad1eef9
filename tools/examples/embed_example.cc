// Embedding yolopipe in a C++ program: build an Engine for the built-in yolov8n, submit batches
// from two threads, print each output's shape and the best class score per image, shut down.
//
//   bazel run //tools/examples:embed_example -- [imgsz]   (default 320)
#include <cstdio>
#include <cstdlib>
#include <future>
#include <thread>
#include <vector>

#include "base/tensor.h"
#include "runtime/embed/yolopipe.h"

namespace {

// A batch of n images filled with a simple deterministic pattern in [0, 1).
yolopipe::Tensor MakeImages(int64_t n, int64_t imgsz, int seed) {
  yolopipe::Tensor images(yolopipe::DType::kFloat32, {n, 3, imgsz, imgsz});
  float* p = images.data<float>();
  const int64_t per_image = 3 * imgsz * imgsz;
  for (int64_t i = 0; i < images.num_elements(); ++i) {
    p[i] = ((i * 7 + (seed + i / per_image) * 37) % 256) / 256.f;
  }
  return images;
}

// Output (N, 4 + nc, A): rows 0-3 are boxes, rows 4.. class scores for each anchor.
void PrintResult(const char* name, const absl::StatusOr<yolopipe::Tensor>& out) {
  if (!out.ok()) {
    std::printf("%s: error: %s\n", name, out.status().ToString().c_str());
    return;
  }
  const int64_t n = out->dim(0), rows = out->dim(1), anchors = out->dim(2);
  std::printf("%s: output (%lld, %lld, %lld)\n", name, static_cast<long long>(n),
              static_cast<long long>(rows), static_cast<long long>(anchors));
  const float* data = out->data<float>();
  for (int64_t i = 0; i < n; ++i) {
    float best = 0;
    int64_t best_class = -1;
    for (int64_t c = 0; c + 4 < rows; ++c) {
      const float* scores = data + (i * rows + 4 + c) * anchors;
      for (int64_t a = 0; a < anchors; ++a) {
        if (scores[a] > best) best = scores[a], best_class = c;
      }
    }
    std::printf("  image %lld: best class %lld, score %.4f\n", static_cast<long long>(i),
                static_cast<long long>(best_class), best);
  }
}

}  // namespace

int main(int argc, char** argv) {
  yolopipe::EngineOptions options;
  options.model = "yolov8n";
  options.imgsz = argc > 1 ? std::atoll(argv[1]) : 320;
  auto engine = yolopipe::Engine::Create(options);
  if (!engine.ok()) {
    std::fprintf(stderr, "error: %s\n", engine.status().ToString().c_str());
    return 1;
  }

  // Two client threads, each submits three batches and keeps the futures.
  std::vector<std::future<absl::StatusOr<yolopipe::Tensor>>> futures[2];
  std::vector<std::thread> clients;
  for (int t = 0; t < 2; ++t) {
    clients.emplace_back([&, t] {
      for (int b = 0; b < 3; ++b) {
        futures[t].push_back((*engine)->Submit(MakeImages(1 + b, options.imgsz, t * 3 + b)));
      }
    });
  }
  for (std::thread& c : clients) c.join();
  for (int t = 0; t < 2; ++t) {
    for (size_t b = 0; b < futures[t].size(); ++b) {
      char name[64];
      std::snprintf(name, sizeof(name), "thread %d batch %zu", t, b);
      PrintResult(name, futures[t][b].get());
    }
  }

  // A blocking call, then a clean shutdown (the destructor would also finish pending work).
  PrintResult("blocking", (*engine)->Infer(MakeImages(1, options.imgsz, 99)));
  (*engine)->Shutdown(yolopipe::Engine::ShutdownMode::kFinish);
  return 0;
}
