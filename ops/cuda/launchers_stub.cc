// Default build (no --config=cuda): the launchers exist so that callers link, but callers check
// BuiltWithCuda() first and never reach them. -1 is not a cudaError_t value.
#include "ops/cuda/launchers.h"

namespace yolopipe::ops::cuda::launch {

namespace {
constexpr int kNotBuilt = -1;
}  // namespace

int MaxPool2dNhwc(ElemType, const void*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                  int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, void*, void*) {
  return kNotBuilt;
}
int ResizeNearest2xNhwc(ElemType, const void*, int64_t, int64_t, int64_t, int64_t, void*, void*) {
  return kNotBuilt;
}
int CopyStridedChannels(ElemType, const void*, int64_t, void*, int64_t, int64_t, int64_t, void*) {
  return kNotBuilt;
}
int Binary(BinaryOpCode, ElemType, const void*, const void*, void*, int64_t, void*) {
  return kNotBuilt;
}
int Unary(UnaryOpCode, ElemType, const void*, void*, int64_t, void*) { return kNotBuilt; }
int NchwFloatToNhwc(const float*, int64_t, int64_t, int64_t, int64_t, ElemType, void*, void*) {
  return kNotBuilt;
}
int NhwcToNchwFloat(ElemType, const void*, int64_t, int64_t, int64_t, int64_t, float*, void*) {
  return kNotBuilt;
}
int SoftmaxLastAxis(const float*, float*, int64_t, int64_t, void*) { return kNotBuilt; }
int DetectDecode(ElemType, const DetectLevelArgs*, int, int64_t, int64_t, int64_t, float*, void*) {
  return kNotBuilt;
}
int ConvEpilogue(ElemType, const void*, const float*, bool, const void*, int64_t, void*, int64_t,
                 int64_t, int64_t, void*) {
  return kNotBuilt;
}

}  // namespace yolopipe::ops::cuda::launch
