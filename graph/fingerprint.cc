#include "graph/fingerprint.h"

#include <cstring>
#include <type_traits>
#include <variant>

#include "absl/strings/str_format.h"

namespace yolopipe {
namespace {

// Feeds the canonical encoding into FNV-1a. Every item starts with a tag byte and every
// variable-length item with its length, so the encoding of a graph is unambiguous.
class Encoder {
 public:
  void Tag(char tag) { state_ = Fnv1a64(absl::string_view(&tag, 1), state_); }
  void U64(uint64_t v) {
    char bytes[8];
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((v >> (8 * i)) & 0xff);
    state_ = Fnv1a64(absl::string_view(bytes, 8), state_);
  }
  void I64(int64_t v) { U64(static_cast<uint64_t>(v)); }
  void Str(absl::string_view s) {
    U64(s.size());
    state_ = Fnv1a64(s, state_);
  }
  void Dims(const Shape& shape) {
    U64(shape.size());
    for (int64_t d : shape) I64(d < 0 ? kUnknownDim : d);
  }
  void TensorData(const Tensor& t) {
    I64(static_cast<int>(t.dtype()));
    Dims(t.shape());
    I64(static_cast<int>(t.layout()));
    if (!t.defined()) {
      Tag('0');
      return;
    }
    Tag('1');
    U64(t.bytes());
    state_ = Fnv1a64(absl::string_view(static_cast<const char*>(t.raw_data()), t.bytes()), state_);
  }
  void Attribute(const AttributeValue& value) {
    I64(static_cast<int64_t>(value.index()));
    std::visit(
        [this](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, int64_t>) {
            I64(v);
          } else if constexpr (std::is_same_v<T, float>) {
            U64(FloatBits(v));
          } else if constexpr (std::is_same_v<T, std::string>) {
            Str(v);
          } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
            U64(v.size());
            for (int64_t x : v) I64(x);
          } else if constexpr (std::is_same_v<T, std::vector<float>>) {
            U64(v.size());
            for (float x : v) U64(FloatBits(x));
          } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
            U64(v.size());
            for (const std::string& x : v) Str(x);
          } else {
            static_assert(std::is_same_v<T, Tensor>);
            TensorData(v);
          }
        },
        value);
  }
  uint64_t state() const { return state_; }

 private:
  static uint64_t FloatBits(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof(bits));
    return bits;
  }
  uint64_t state_ = kFnv1a64Offset;
};

}  // namespace

uint64_t Fnv1a64(absl::string_view bytes, uint64_t state) {
  for (unsigned char c : bytes) {
    state ^= c;
    state *= kFnv1a64Prime;
  }
  return state;
}

std::string ModelFingerprint(const Graph& graph) {
  Encoder e;
  e.Str("yolopipe model fingerprint v1");
  e.Tag('I');
  e.U64(graph.inputs().size());
  for (const std::string& name : graph.inputs()) {
    e.Str(name);
    const Value* v = graph.FindValue(name);
    if (v == nullptr) {
      e.Tag('-');
      continue;
    }
    e.Tag('+');
    e.I64(static_cast<int>(v->dtype));
    e.Dims(v->shape);
  }
  e.Tag('O');
  e.U64(graph.outputs().size());
  for (const std::string& name : graph.outputs()) e.Str(name);
  e.Tag('N');
  e.U64(graph.nodes().size());
  for (const Node& node : graph.nodes()) {
    e.Str(node.name);
    e.Str(node.op_type);
    e.U64(node.inputs.size());
    for (const std::string& in : node.inputs) e.Str(in);
    e.U64(node.outputs.size());
    for (const std::string& out : node.outputs) e.Str(out);
    const auto& attrs = node.attrs.values();  // std::map: sorted by name
    e.U64(attrs.size());
    for (const auto& [name, value] : attrs) {
      e.Str(name);
      e.Attribute(value);
    }
  }
  e.Tag('W');
  e.U64(graph.initializers().size());
  for (const auto& [name, tensor] : graph.initializers()) {  // std::map: sorted by name
    e.Str(name);
    e.TensorData(tensor);
  }
  return absl::StrFormat("%016x", e.state());
}

}  // namespace yolopipe
