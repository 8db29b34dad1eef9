// Writes the generated part of the seed corpora (see fuzz/BUILD for where every seed comes
// from): small ONNX models (the miniature YOLOv8-style detector of graph/testing, both export
// styles, several opsets) and .npy files from the project's own writer. Run once by hand:
//   bazel run //fuzz:make_seeds -- $PWD/fuzz/corpus
#include <cstdint>
#include <fstream>
#include <iostream>
#include <string>

#include "base/dtype.h"
#include "base/tensor.h"
#include "graph/testing/mini_detector.h"
#include "runtime/npy.h"

namespace yolopipe::fuzz {
namespace {

bool WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(out);
}

template <typename T>
Tensor Filled(DType dtype, const Shape& shape, T first, T step) {
  Tensor t(dtype, shape);
  T* p = t.data<T>();
  T v = first;
  for (int64_t i = 0; i < t.num_elements(); ++i, v = static_cast<T>(v + step)) p[i] = v;
  return t;
}

int Run(const std::string& dir) {
  using testing::ExportStyle;
  using testing::MiniDetector;
  struct OnnxSeed {
    const char* name;
    ExportStyle style;
    int64_t opset;
  };
  for (const OnnxSeed& s : {OnnxSeed{"mini_static_op17.onnx", ExportStyle::kStatic, 17},
                            OnnxSeed{"mini_dynamic_op17.onnx", ExportStyle::kDynamic, 17},
                            OnnxSeed{"mini_static_op11.onnx", ExportStyle::kStatic, 11},
                            OnnxSeed{"mini_dynamic_op13.onnx", ExportStyle::kDynamic, 13}}) {
    if (!WriteFile(dir + "/onnx_import/" + s.name, MiniDetector(s.style, s.opset).Bytes())) {
      std::cerr << "cannot write " << s.name << "\n";
      return 1;
    }
  }
  struct NpySeed {
    const char* name;
    Tensor tensor;
  };
  const NpySeed npys[] = {
      {"image_f32_1x3x4x4.npy", Filled<float>(DType::kFloat32, {1, 3, 4, 4}, 0.0f, 0.125f)},
      {"scalar_f64.npy", Filled<double>(DType::kFloat64, {}, 3.5, 0.0)},
      {"vector_i64.npy", Filled<int64_t>(DType::kInt64, {5}, -2, 1)},
      {"matrix_i32_2x3.npy", Filled<int32_t>(DType::kInt32, {2, 3}, 7, -3)},
      {"bytes_u8_4x2.npy", Filled<uint8_t>(DType::kUInt8, {4, 2}, 250, 1)},
      {"mask_bool_2.npy", Filled<uint8_t>(DType::kBool, {2}, 0, 1)},
      {"empty_f32_0x3.npy", Tensor(DType::kFloat32, {0, 3})},
  };
  for (const NpySeed& s : npys) {
    absl::Status status = WriteNpyFile(dir + "/npy/" + s.name, s.tensor);
    if (!status.ok()) {
      std::cerr << status << "\n";
      return 1;
    }
  }
  return 0;
}

}  // namespace
}  // namespace yolopipe::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_seeds CORPUS_DIR (with onnx_import/ and npy/ inside)\n";
    return 2;
  }
  return yolopipe::fuzz::Run(argv[1]);
}
