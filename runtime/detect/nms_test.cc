#include "runtime/detect/nms.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace yolopipe {
namespace {

struct Anchor {
  float cx, cy, w, h;
  std::vector<float> scores;  // one per class
};

// (4 + nc, A) row-major, as the model writes one image's output.
std::vector<float> Pack(const std::vector<Anchor>& anchors, int nc) {
  const size_t a = anchors.size();
  std::vector<float> out((4 + nc) * a, 0.f);
  for (size_t i = 0; i < a; ++i) {
    out[0 * a + i] = anchors[i].cx;
    out[1 * a + i] = anchors[i].cy;
    out[2 * a + i] = anchors[i].w;
    out[3 * a + i] = anchors[i].h;
    for (int c = 0; c < nc; ++c) out[(4 + c) * a + i] = anchors[i].scores[c];
  }
  return out;
}

// A box given as x1, y1, x2, y2 with one class scoring `score`.
Anchor Box(float x1, float y1, float x2, float y2, int cls, float score, int nc = 3) {
  Anchor a{(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, std::vector<float>(nc, 0.f)};
  a.scores[cls] = score;
  return a;
}

// Naive reference, written from YOLOV8.md independently of nms.cc: per anchor the best class
// (lowest id on ties), keep score > conf, the max_candidates best (ties: lower anchor first),
// then repeatedly take the best remaining box and drop every remaining box of its class whose
// IoU (double precision) with it exceeds iou; stop at max_det.
struct Ref {
  double x1, y1, x2, y2, score;
  int cls, anchor;
};

double RefIou(const Ref& a, const Ref& b) {
  const double iw = std::max(0.0, std::min(a.x2, b.x2) - std::max(a.x1, b.x1));
  const double ih = std::max(0.0, std::min(a.y2, b.y2) - std::max(a.y1, b.y1));
  const double inter = iw * ih;
  const double uni = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter;
  return uni > 0 ? inter / uni : 0.0;
}

std::vector<Ref> NaiveNms(const std::vector<Anchor>& anchors, const PostprocessOptions& o) {
  std::vector<Ref> cand;
  for (size_t i = 0; i < anchors.size(); ++i) {
    const Anchor& a = anchors[i];
    int best = 0;
    for (size_t c = 1; c < a.scores.size(); ++c) {
      if (a.scores[c] > a.scores[best]) best = static_cast<int>(c);
    }
    if (!(a.scores[best] > o.conf)) continue;
    // Same float arithmetic as the definition cx - w/2 etc.
    cand.push_back({a.cx - a.w / 2, a.cy - a.h / 2, a.cx + a.w / 2, a.cy + a.h / 2,
                    a.scores[best], best, static_cast<int>(i)});
  }
  // Selection of the max_candidates best by repeated extraction.
  std::vector<Ref> top;
  std::vector<bool> used(cand.size(), false);
  while (top.size() < static_cast<size_t>(o.max_candidates)) {
    int pick = -1;
    for (size_t i = 0; i < cand.size(); ++i) {
      if (used[i]) continue;
      if (pick < 0 || cand[i].score > cand[pick].score) pick = static_cast<int>(i);
    }
    if (pick < 0) break;
    used[pick] = true;
    top.push_back(cand[pick]);
  }
  std::vector<Ref> kept;
  std::vector<bool> dead(top.size(), false);
  for (size_t i = 0; i < top.size() && kept.size() < static_cast<size_t>(o.max_det); ++i) {
    if (dead[i]) continue;
    kept.push_back(top[i]);
    for (size_t j = i + 1; j < top.size(); ++j) {
      if (!dead[j] && top[j].cls == top[i].cls && RefIou(top[i], top[j]) > o.iou) dead[j] = true;
    }
  }
  return kept;
}

std::vector<Detection> RunPostprocess(const std::vector<Anchor>& anchors, int nc,
                           const PostprocessOptions& o) {
  const std::vector<float> out = Pack(anchors, nc);
  auto r = Postprocess(out.data(), 4 + nc, static_cast<int64_t>(anchors.size()), o);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : std::vector<Detection>{};
}

void ExpectMatchesNaive(const std::vector<Anchor>& anchors, int nc, const PostprocessOptions& o) {
  const std::vector<Detection> got = RunPostprocess(anchors, nc, o);
  const std::vector<Ref> want = NaiveNms(anchors, o);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_FLOAT_EQ(got[i].x1, static_cast<float>(want[i].x1)) << i;
    EXPECT_FLOAT_EQ(got[i].y1, static_cast<float>(want[i].y1)) << i;
    EXPECT_FLOAT_EQ(got[i].x2, static_cast<float>(want[i].x2)) << i;
    EXPECT_FLOAT_EQ(got[i].y2, static_cast<float>(want[i].y2)) << i;
    EXPECT_FLOAT_EQ(got[i].score, static_cast<float>(want[i].score)) << i;
    EXPECT_EQ(got[i].class_id, want[i].cls) << i;
  }
}

TEST(PostprocessTest, SameClassOverlapSuppressedOtherClassKept) {
  // Boxes 0 and 1 overlap with IoU 81/100 (same class): 1 suppressed. Box 2 is the same place in
  // class 1: kept. Box 3 is far away: kept.
  const std::vector<Anchor> anchors = {
      Box(0, 0, 10, 10, 0, 0.9f), Box(1, 1, 10, 10, 0, 0.8f), Box(0, 0, 10, 10, 1, 0.7f),
      Box(50, 50, 60, 60, 0, 0.6f)};
  const std::vector<Detection> got = RunPostprocess(anchors, 3, {});
  ASSERT_EQ(got.size(), 3u);
  EXPECT_FLOAT_EQ(got[0].score, 0.9f);
  EXPECT_EQ(got[0].class_id, 0);
  EXPECT_FLOAT_EQ(got[1].score, 0.7f);
  EXPECT_EQ(got[1].class_id, 1);
  EXPECT_FLOAT_EQ(got[2].score, 0.6f);
  EXPECT_FLOAT_EQ(got[2].x1, 50.f);
  EXPECT_FLOAT_EQ(got[2].y2, 60.f);
  ExpectMatchesNaive(anchors, 3, {});
}

TEST(PostprocessTest, IouExactlyAtThresholdIsKept) {
  // [0,3]x[0,1] and [1,4]x[0,1]: intersection 2, union 4, IoU exactly 0.5.
  const std::vector<Anchor> anchors = {Box(0, 0, 3, 1, 2, 0.9f), Box(1, 0, 4, 1, 2, 0.8f)};
  PostprocessOptions at;
  at.iou = 0.5f;
  EXPECT_EQ(RunPostprocess(anchors, 3, at).size(), 2u);
  PostprocessOptions below;
  below.iou = 0.49f;
  EXPECT_EQ(RunPostprocess(anchors, 3, below).size(), 1u);
}

TEST(PostprocessTest, ConfIsStrictAndBestClassWins) {
  Anchor a = Box(0, 0, 4, 4, 0, 0.25f);  // exactly conf: dropped
  Anchor b{20, 20, 4, 4, {0.3f, 0.6f, 0.6f}};  // tie between classes 1 and 2: class 1
  const std::vector<Detection> got = RunPostprocess({a, b}, 3, {});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].class_id, 1);
  EXPECT_FLOAT_EQ(got[0].score, 0.6f);
  EXPECT_FLOAT_EQ(got[0].x1, 18.f);
  EXPECT_FLOAT_EQ(got[0].y2, 22.f);
}

TEST(PostprocessTest, EqualScoresKeepAnchorOrder) {
  const std::vector<Anchor> anchors = {Box(0, 0, 10, 10, 0, 0.5f), Box(0, 0, 10, 10, 0, 0.5f),
                                       Box(30, 0, 40, 10, 0, 0.5f)};
  const std::vector<Detection> got = RunPostprocess(anchors, 3, {});
  ASSERT_EQ(got.size(), 2u);  // the second identical box is suppressed by the first
  EXPECT_FLOAT_EQ(got[0].x1, 0.f);
  EXPECT_FLOAT_EQ(got[1].x1, 30.f);
  ExpectMatchesNaive(anchors, 3, {});
}

TEST(PostprocessTest, ZeroAreaBoxesNeverSuppress) {
  const std::vector<Anchor> anchors = {Box(5, 5, 5, 5, 0, 0.9f), Box(5, 5, 5, 5, 0, 0.8f),
                                       Box(0, 0, 10, 0, 0, 0.7f)};
  EXPECT_EQ(RunPostprocess(anchors, 3, {}).size(), 3u);
  ExpectMatchesNaive(anchors, 3, {});
}

TEST(PostprocessTest, EmptyAndNothingAboveConf) {
  EXPECT_TRUE(RunPostprocess({}, 3, {}).empty());
  EXPECT_TRUE(RunPostprocess({Box(0, 0, 1, 1, 0, 0.1f)}, 3, {}).empty());
}

TEST(PostprocessTest, MaxDetAndMaxCandidatesCap) {
  std::vector<Anchor> anchors;
  for (int i = 0; i < 10; ++i) {
    anchors.push_back(Box(i * 20.f, 0, i * 20.f + 10, 10, 0, 0.3f + 0.05f * i));
  }
  PostprocessOptions o;
  o.max_det = 4;
  const std::vector<Detection> got = RunPostprocess(anchors, 3, o);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_FLOAT_EQ(got[0].score, 0.3f + 0.05f * 9);
  EXPECT_FLOAT_EQ(got[3].score, 0.3f + 0.05f * 6);
  PostprocessOptions c;
  c.max_candidates = 3;
  const std::vector<Detection> capped = RunPostprocess(anchors, 3, c);
  ASSERT_EQ(capped.size(), 3u);
  EXPECT_FLOAT_EQ(capped[2].score, 0.3f + 0.05f * 7);
}

TEST(PostprocessTest, RandomBoxesMatchNaiveReference) {
  for (uint32_t seed : {1u, 2u, 3u, 4u, 5u}) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> pos(0, 200), size(1, 60), score(0, 1);
    const int nc = 1 + static_cast<int>(seed % 4);
    std::vector<Anchor> anchors(400);
    for (Anchor& a : anchors) {
      a = {pos(rng), pos(rng), size(rng), size(rng), std::vector<float>(nc)};
      for (float& s : a.scores) s = score(rng) * score(rng);
      // Some exact score ties.
      if (rng() % 10 == 0) a.scores[0] = 0.5f;
    }
    for (float iou : {0.3f, 0.7f}) {
      PostprocessOptions o;
      o.conf = 0.05f;
      o.iou = iou;
      o.max_det = seed == 3 ? 20 : 300;
      o.max_candidates = seed == 4 ? 50 : 30000;
      SCOPED_TRACE(testing::Message() << "seed " << seed << " iou " << iou);
      ExpectMatchesNaive(anchors, nc, o);
    }
  }
}

TEST(PostprocessTest, TensorOverloadAndRejections) {
  const std::vector<Anchor> anchors = {Box(0, 0, 10, 10, 1, 0.9f)};
  const std::vector<float> packed = Pack(anchors, 3);
  auto r3 = Postprocess(Tensor::FromFloats({1, 7, 1}, packed), {});
  ASSERT_TRUE(r3.ok()) << r3.status();
  ASSERT_EQ(r3->size(), 1u);
  EXPECT_EQ((*r3)[0].class_id, 1);
  EXPECT_EQ(Postprocess(Tensor::FromFloats({7, 1}, packed), {})->size(), 1u);

  EXPECT_EQ(Postprocess(Tensor::FromFloats({2, 7, 1}, std::vector<float>(14)), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Postprocess(Tensor::FromInt64s({7, 1}, std::vector<int64_t>(7)), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Postprocess(Tensor::FromFloats({4, 1}, std::vector<float>(4)), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  PostprocessOptions bad;
  bad.conf = 1.f;
  EXPECT_EQ(ValidatePostprocessOptions(bad).code(), absl::StatusCode::kInvalidArgument);
  bad = {};
  bad.conf = NAN;
  EXPECT_EQ(ValidatePostprocessOptions(bad).code(), absl::StatusCode::kInvalidArgument);
  bad = {};
  bad.iou = 1.5f;
  EXPECT_EQ(ValidatePostprocessOptions(bad).code(), absl::StatusCode::kInvalidArgument);
  bad = {};
  bad.max_det = 0;
  EXPECT_EQ(ValidatePostprocessOptions(bad).code(), absl::StatusCode::kInvalidArgument);
  bad = {};
  bad.max_candidates = 0;
  EXPECT_EQ(Postprocess(packed.data(), 7, 1, bad).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace yolopipe
