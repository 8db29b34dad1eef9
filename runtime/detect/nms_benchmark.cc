// Times Postprocess on one image's YOLOv8 output (84, 8400): 80 classes, 640x640 anchors, with a
// realistic score distribution (most anchors near zero, a few hundred above 0.25 in clusters).
#include <random>
#include <vector>

#include "benchmark/benchmark.h"
#include "runtime/detect/nms.h"

namespace yolopipe {
namespace {

std::vector<float> RealisticOutput(int nc, int anchors, int objects, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> pos(0, 640), size(8, 200), unit(0, 1);
  std::vector<float> out((4 + nc) * static_cast<size_t>(anchors));
  for (int a = 0; a < anchors; ++a) {
    out[a] = pos(rng);
    out[anchors + a] = pos(rng);
    out[2 * anchors + a] = size(rng);
    out[3 * anchors + a] = size(rng);
    for (int c = 0; c < nc; ++c) {
      const float u = unit(rng);
      out[(4 + c) * static_cast<size_t>(anchors) + a] = u * u * u * 0.05f;  // background noise
    }
  }
  // `objects` objects, each seen by ~20 neighbouring anchors with jittered boxes.
  std::normal_distribution<float> jitter(0, 4);
  for (int o = 0; o < objects; ++o) {
    const float cx = pos(rng), cy = pos(rng), w = size(rng), h = size(rng);
    const int cls = static_cast<int>(rng() % nc);
    for (int k = 0; k < 20; ++k) {
      const int a = static_cast<int>(rng() % anchors);
      out[a] = cx + jitter(rng);
      out[anchors + a] = cy + jitter(rng);
      out[2 * anchors + a] = w + jitter(rng);
      out[3 * anchors + a] = h + jitter(rng);
      out[(4 + cls) * static_cast<size_t>(anchors) + a] = 0.3f + 0.65f * unit(rng);
    }
  }
  return out;
}

void BM_Postprocess(benchmark::State& state) {
  const int nc = 80, anchors = 8400;
  const int objects = static_cast<int>(state.range(0));
  const float conf = state.range(1) / 100.f;
  const std::vector<float> out = RealisticOutput(nc, anchors, objects, 1);
  PostprocessOptions options;
  options.conf = conf;
  size_t kept = 0;
  for (auto _ : state) {
    auto r = Postprocess(out.data(), 4 + nc, anchors, options);
    kept = r->size();
    benchmark::DoNotOptimize(kept);
  }
  state.counters["detections"] = static_cast<double>(kept);
}
// Args: objects in the image, conf x 100 (conf 0.01 lets most noise anchors through).
BENCHMARK(BM_Postprocess)->Args({10, 25})->Args({50, 25})->Args({50, 1})->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace yolopipe
