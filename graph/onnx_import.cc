#include "graph/onnx_import.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/file_io.h"
#include "base/status_macros.h"
#include "google/protobuf/io/coded_stream.h"
#include "graph/fold.h"
#include "graph/fuse.h"
#include "onnx/checker.h"
#include "onnx/defs/schema.h"
#include "onnx/shape_inference/implementation.h"
#include "ops/registry.h"

namespace yolopipe {
namespace {

constexpr int64_t kMinOpset = 11;
constexpr int64_t kMaxOpset = 19;
// protobuf's own default recursion limit: parsing this deep is known to be safe for the stack,
// so a model refused at a lower depth is parsed again at this one to tell "too deep" apart from
// "corrupt".
constexpr int kProtobufDefaultDepth = 100;

bool IsDefaultDomain(const std::string& domain) { return domain.empty() || domain == "ai.onnx"; }

std::string OnnxTypeName(int data_type) {
  if (onnx::TensorProto_DataType_IsValid(data_type)) {
    return onnx::TensorProto_DataType_Name(static_cast<onnx::TensorProto_DataType>(data_type));
  }
  return "invalid";
}

// Prefixes a status message with the model's source, keeping the code.
absl::Status InSource(const std::string& source, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat("ONNX model '", source, "': ", status.message()));
}

absl::Status SourceError(const std::string& source, const std::string& message) {
  return absl::InvalidArgumentError(absl::StrCat("ONNX model '", source, "': ", message));
}

std::string NodeDesc(const onnx::NodeProto& node, int index) {
  return node.name().empty() ? absl::StrCat("node #", index, " (", node.op_type(), ")")
                             : absl::StrCat("node '", node.name(), "' (", node.op_type(), ")");
}

template <typename Field, typename T>
void CopyNarrowed(const Field& field, T* dst) {
  for (int i = 0; i < field.size(); ++i) dst[i] = static_cast<T>(field.Get(i));
}

// --- attributes ---

absl::StatusOr<AttributeValue> AttributeFromOnnx(const onnx::AttributeProto& a,
                                                 const std::string& node_desc,
                                                 const OnnxImportLimits& limits) {
  const std::string where = absl::StrCat(node_desc, ", attribute '", a.name(), "'");
  if (!a.ref_attr_name().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": function attribute references are not supported"));
  }
  onnx::AttributeProto::AttributeType type = a.type();
  if (type == onnx::AttributeProto::UNDEFINED) {
    // IR version 1 files may leave the type out; it is implied by the field that is set.
    if (a.has_f()) {
      type = onnx::AttributeProto::FLOAT;
    } else if (a.has_i()) {
      type = onnx::AttributeProto::INT;
    } else if (a.has_s()) {
      type = onnx::AttributeProto::STRING;
    } else if (a.has_t()) {
      type = onnx::AttributeProto::TENSOR;
    } else if (a.floats_size() > 0) {
      type = onnx::AttributeProto::FLOATS;
    } else if (a.ints_size() > 0) {
      type = onnx::AttributeProto::INTS;
    } else if (a.strings_size() > 0) {
      type = onnx::AttributeProto::STRINGS;
    }
  }
  switch (type) {
    case onnx::AttributeProto::FLOAT:
      return AttributeValue(a.f());
    case onnx::AttributeProto::INT:
      return AttributeValue(static_cast<int64_t>(a.i()));
    case onnx::AttributeProto::STRING:
      return AttributeValue(a.s());
    case onnx::AttributeProto::FLOATS:
      return AttributeValue(std::vector<float>(a.floats().begin(), a.floats().end()));
    case onnx::AttributeProto::INTS:
      return AttributeValue(std::vector<int64_t>(a.ints().begin(), a.ints().end()));
    case onnx::AttributeProto::STRINGS:
      return AttributeValue(std::vector<std::string>(a.strings().begin(), a.strings().end()));
    case onnx::AttributeProto::TENSOR: {
      absl::StatusOr<Tensor> t = TensorFromOnnx(a.t(), limits);
      if (!t.ok())
        return absl::Status(t.status().code(), absl::StrCat(where, ": ", t.status().message()));
      return AttributeValue(*std::move(t));
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": attribute kind ",
                       onnx::AttributeProto_AttributeType_IsValid(type)
                           ? onnx::AttributeProto_AttributeType_Name(type)
                           : std::string("UNDEFINED"),
                       " is not supported"));
  }
}

// The tensor a Constant node defines.
absl::StatusOr<Tensor> ConstantValue(const onnx::NodeProto& node, const std::string& node_desc,
                                     const OnnxImportLimits& limits) {
  if (node.output_size() != 1 || node.attribute_size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(node_desc, ": a Constant needs exactly one output and one value attribute"));
  }
  const onnx::AttributeProto& a = node.attribute(0);
  const std::string& kind = a.name();
  if (kind == "value") {
    absl::StatusOr<Tensor> t = TensorFromOnnx(a.t(), limits);
    if (!t.ok()) {
      return absl::Status(t.status().code(), absl::StrCat(node_desc, ": ", t.status().message()));
    }
    return t;
  }
  if (kind == "value_float") return Tensor::ScalarFloat(a.f());
  if (kind == "value_int") return Tensor::ScalarInt64(a.i());
  if (kind == "value_floats") {
    return Tensor::FromFloats({a.floats_size()},
                              std::vector<float>(a.floats().begin(), a.floats().end()));
  }
  if (kind == "value_ints") {
    return Tensor::FromInt64s({a.ints_size()},
                              std::vector<int64_t>(a.ints().begin(), a.ints().end()));
  }
  return absl::UnimplementedError(
      absl::StrCat(node_desc, ": Constant attribute '", kind, "' is not supported"));
}

// --- value infos ---

struct ParsedValueInfo {
  Value value;
  bool is_tensor = false;
  bool has_shape = false;
};

ParsedValueInfo ValueFromValueInfo(const onnx::ValueInfoProto& vi) {
  ParsedValueInfo parsed;
  parsed.value.name = vi.name();
  parsed.value.dtype = DType::kUndefined;
  if (!vi.type().has_tensor_type()) return parsed;
  parsed.is_tensor = true;
  const onnx::TypeProto_Tensor& tt = vi.type().tensor_type();
  if (tt.has_elem_type()) {
    absl::StatusOr<DType> dtype = DTypeFromOnnx(tt.elem_type());
    if (dtype.ok()) parsed.value.dtype = *dtype;
  }
  if (tt.has_shape()) {
    parsed.has_shape = true;
    for (const onnx::TensorShapeProto_Dimension& d : tt.shape().dim()) {
      parsed.value.shape.push_back(d.has_dim_value() && d.dim_value() >= 0 ? d.dim_value()
                                                                           : kUnknownDim);
    }
  }
  return parsed;
}

// --- model-level checks on the proto ---

absl::StatusOr<int64_t> DefaultOpset(const onnx::ModelProto& model) {
  int64_t opset = -1;
  for (const onnx::OperatorSetIdProto& imp : model.opset_import()) {
    if (IsDefaultDomain(imp.domain())) opset = imp.version();
  }
  if (opset < 0) {
    return absl::InvalidArgumentError("it declares no opset for the default ONNX domain");
  }
  if (opset < kMinOpset || opset > kMaxOpset) {
    return absl::InvalidArgumentError(absl::StrCat(
        "it uses opset ", opset, " of the default ONNX domain; yolopipe supports opsets ",
        kMinOpset, " to ", kMaxOpset, " (re-export with opset_version=17)"));
  }
  return opset;
}

// --- structural limits, checked before anything walks or allocates ---

absl::Status CheckGraphSize(const onnx::ModelProto& model, const OnnxImportLimits& limits) {
  const onnx::GraphProto& g = model.graph();
  const std::pair<const char*, int64_t> counts[] = {
      {"nodes", g.node_size()},
      {"initializers", g.initializer_size()},
      {"value_info entries", g.value_info_size()},
      {"graph inputs", g.input_size()},
      {"graph outputs", g.output_size()},
      {"metadata_props entries", model.metadata_props_size()},
      {"opset_import entries", model.opset_import_size()},
  };
  for (const auto& [what, n] : counts) {
    if (n > limits.max_graph_entries) {
      return absl::ResourceExhaustedError(absl::StrCat("graph '", g.name(), "' has ", n, " ", what,
                                                       "; the limit is ", limits.max_graph_entries,
                                                       " (OnnxImportLimits::max_graph_entries)"));
    }
  }
  if (model.training_info_size() > 0) {
    return absl::UnimplementedError("training_info graphs are not supported");
  }
  return absl::OkStatus();
}

// If / Loop / Scan bodies would make every later pass (and the ONNX checker) recurse; YOLOv8 has
// none, so any graph-valued attribute is refused.
absl::Status CheckNoSubgraphs(const onnx::GraphProto& graph) {
  for (int i = 0; i < graph.node_size(); ++i) {
    const onnx::NodeProto& node = graph.node(i);
    for (const onnx::AttributeProto& a : node.attribute()) {
      if (a.type() == onnx::AttributeProto::GRAPH || a.type() == onnx::AttributeProto::GRAPHS ||
          a.has_g() || a.graphs_size() > 0) {
        return absl::UnimplementedError(
            absl::StrCat(NodeDesc(node, i), ": attribute '", a.name(),
                         "' holds a subgraph; nested graphs (If / Loop / Scan bodies) are not "
                         "supported"));
      }
      if (a.type() == onnx::AttributeProto::SPARSE_TENSOR ||
          a.type() == onnx::AttributeProto::SPARSE_TENSORS || a.has_sparse_tensor() ||
          a.sparse_tensors_size() > 0) {
        return absl::UnimplementedError(absl::StrCat(NodeDesc(node, i), ": attribute '", a.name(),
                                                     "' holds a sparse tensor (not supported)"));
      }
    }
  }
  return absl::OkStatus();
}

// Rank, negative dims and element count of a declared or inferred value shape. `kind` says where
// the shape came from ("graph input", "value_info", ...).
absl::Status CheckValueShape(const onnx::ValueInfoProto& vi, const std::string& kind,
                             const OnnxImportLimits& limits) {
  if (!vi.type().has_tensor_type() || !vi.type().tensor_type().has_shape()) {
    return absl::OkStatus();
  }
  const onnx::TensorShapeProto& shape = vi.type().tensor_type().shape();
  const std::string what = absl::StrCat(kind, " '", vi.name(), "'");
  if (shape.dim_size() > limits.max_rank) {
    return absl::ResourceExhaustedError(absl::StrCat(what, " has rank ", shape.dim_size(),
                                                     "; the limit is ", limits.max_rank,
                                                     " (OnnxImportLimits::max_rank)"));
  }
  int64_t elements = 1;
  for (const onnx::TensorShapeProto_Dimension& d : shape.dim()) {
    if (!d.has_dim_value()) continue;
    if (d.dim_value() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " has a negative dimension ", d.dim_value()));
    }
    if (d.dim_value() > 0 && elements > limits.max_tensor_elements / d.dim_value()) {
      return absl::ResourceExhaustedError(
          absl::StrCat(what, " has a shape of more than ", limits.max_tensor_elements,
                       " elements (OnnxImportLimits::max_tensor_elements); dimension ",
                       d.dim_value(), " exceeds it"));
    }
    elements *= d.dim_value();
  }
  return absl::OkStatus();
}

absl::Status CheckDeclaredValueShapes(const onnx::GraphProto& graph,
                                      const OnnxImportLimits& limits) {
  for (const onnx::ValueInfoProto& vi : graph.input()) {
    YP_RETURN_IF_ERROR(CheckValueShape(vi, "graph input", limits));
  }
  for (const onnx::ValueInfoProto& vi : graph.output()) {
    YP_RETURN_IF_ERROR(CheckValueShape(vi, "graph output", limits));
  }
  for (const onnx::ValueInfoProto& vi : graph.value_info()) {
    YP_RETURN_IF_ERROR(CheckValueShape(vi, "value_info", limits));
  }
  return absl::OkStatus();
}

// --- tensors ---

// What a TensorProto's header (data type and dims) declares; checked before any data is read.
struct TensorLayout {
  DType dtype = DType::kUndefined;
  Shape shape;
  int64_t count = 0;
  int64_t bytes = 0;
  std::string declared;  // "declared dims (2, 3) of float32 need 6 elements (24 bytes)"
};

absl::StatusOr<TensorLayout> CheckTensorHeader(const onnx::TensorProto& proto,
                                               const OnnxImportLimits& limits) {
  const std::string what = absl::StrCat("tensor '", proto.name(), "'");
  if (proto.has_segment()) {
    return absl::UnimplementedError(absl::StrCat(what, ": segmented tensors are not supported"));
  }
  absl::StatusOr<DType> dtype = DTypeFromOnnx(proto.data_type());
  if (!dtype.ok()) {
    return absl::UnimplementedError(absl::StrCat(what, " has unsupported data type ",
                                                 OnnxTypeName(proto.data_type()), " (",
                                                 proto.data_type(), ")"));
  }
  if (proto.dims_size() > limits.max_rank) {
    return absl::ResourceExhaustedError(absl::StrCat(what, " has rank ", proto.dims_size(),
                                                     "; the limit is ", limits.max_rank,
                                                     " (OnnxImportLimits::max_rank)"));
  }
  TensorLayout layout;
  layout.dtype = *dtype;
  layout.count = 1;
  for (int64_t d : proto.dims()) {
    if (d < 0) {
      return absl::InvalidArgumentError(absl::StrCat(what, " has a negative dimension ", d));
    }
    // Checked by division so that no product can overflow.
    if (d > 0 && layout.count > limits.max_tensor_elements / d) {
      return absl::ResourceExhaustedError(absl::StrCat(
          what, " declares dims ", absl::StrJoin(proto.dims(), "x"), ", more than the limit of ",
          limits.max_tensor_elements, " elements (OnnxImportLimits::max_tensor_elements)"));
    }
    layout.count *= d;
    layout.shape.push_back(d);
  }
  layout.bytes = layout.count * static_cast<int64_t>(DTypeSize(layout.dtype));
  layout.declared =
      absl::StrCat("declared dims ", ShapeToString(layout.shape), " of ", DTypeName(layout.dtype),
                   " need ", layout.count, " elements (", layout.bytes, " bytes)");
  return layout;
}

// The typed repeated field a data type stores its values in (ONNX's TensorProto rules).
const char* TypedFieldFor(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "float_data";
    case DType::kFloat64:
      return "double_data";
    case DType::kInt64:
      return "int64_data";
    default:
      return "int32_data";
  }
}

bool UsesExternalData(const onnx::TensorProto& proto) {
  return proto.data_location() == onnx::TensorProto::EXTERNAL || proto.external_data_size() > 0;
}

// Checks that the tensor's inline data matches `layout` exactly: raw_data, or else the typed
// field for its data type; data in any other field is refused rather than silently ignored.
absl::Status CheckTensorData(const onnx::TensorProto& proto, const TensorLayout& layout) {
  const std::string what = absl::StrCat("tensor '", proto.name(), "'");
  const std::pair<const char*, int64_t> fields[] = {
      {"float_data", proto.float_data_size()},   {"int32_data", proto.int32_data_size()},
      {"string_data", proto.string_data_size()}, {"int64_data", proto.int64_data_size()},
      {"double_data", proto.double_data_size()}, {"uint64_data", proto.uint64_data_size()},
  };
  const char* typed = TypedFieldFor(layout.dtype);
  for (const auto& [field, n] : fields) {
    if (n == 0) continue;
    if (proto.has_raw_data()) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " holds both raw_data and ", n, " elements in ", field, "; only one is allowed"));
    }
    if (std::strcmp(field, typed) != 0) {
      return absl::InvalidArgumentError(absl::StrCat(what, " of ", DTypeName(layout.dtype),
                                                     " holds ", n, " elements in ", field,
                                                     "; its data belongs in ", typed));
    }
  }
  if (proto.has_raw_data()) {
    if (static_cast<int64_t>(proto.raw_data().size()) != layout.bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": ", layout.declared, " but raw_data holds ", proto.raw_data().size(), " bytes"));
    }
    return absl::OkStatus();
  }
  int64_t have = 0;
  for (const auto& [field, n] : fields) {
    if (std::strcmp(field, typed) == 0) have = n;
  }
  if (have != layout.count) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", layout.declared, " but ", typed, " holds ", have, " elements"));
  }
  // Narrow types travel in int32_data; a value that does not fit would be silently truncated.
  int64_t lo = 0, hi = 0;
  switch (layout.dtype) {
    case DType::kInt8:
      lo = -128, hi = 127;
      break;
    case DType::kUInt8:
      lo = 0, hi = 255;
      break;
    case DType::kFloat16:
      lo = 0, hi = 65535;  // the half-precision bit pattern
      break;
    default:
      return absl::OkStatus();
  }
  for (int i = 0; i < proto.int32_data_size(); ++i) {
    const int64_t v = proto.int32_data(i);
    if (v < lo || v > hi) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": int32_data[", i, "] = ", v,
                                                     " does not fit ", DTypeName(layout.dtype)));
    }
  }
  return absl::OkStatus();
}

// --- external data ---

struct ExternalDataRef {
  std::string location;
  int64_t offset = 0;
  std::optional<int64_t> length;  // nullopt: to the end of the file
};

// A plain decimal byte count: digits only (no sign, space or hex), fitting int64.
std::optional<int64_t> ParseByteCount(const std::string& text) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  int64_t value = 0;
  if (!absl::SimpleAtoi(text, &value) || value < 0) return std::nullopt;
  return value;
}

absl::StatusOr<ExternalDataRef> ParseExternalDataRef(const onnx::TensorProto& proto) {
  const std::string what = absl::StrCat("tensor '", proto.name(), "'");
  if (proto.data_location() != onnx::TensorProto::EXTERNAL) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has external_data entries but its data_location is not EXTERNAL"));
  }
  if (proto.has_raw_data() || proto.float_data_size() > 0 || proto.int32_data_size() > 0 ||
      proto.string_data_size() > 0 || proto.int64_data_size() > 0 || proto.double_data_size() > 0 ||
      proto.uint64_data_size() > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is marked EXTERNAL but also holds data inside the model"));
  }
  ExternalDataRef ref;
  bool has_location = false;
  std::set<std::string> seen;
  for (const onnx::StringStringEntryProto& e : proto.external_data()) {
    if (!seen.insert(e.key()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": external_data key '", e.key(), "' is given twice"));
    }
    if (e.key() == "location") {
      ref.location = e.value();
      has_location = true;
    } else if (e.key() == "offset" || e.key() == "length") {
      std::optional<int64_t> n = ParseByteCount(e.value());
      if (!n.has_value()) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": external_data ", e.key(), " '", absl::CHexEscape(e.value()),
                         "' is not a non-negative decimal number that fits 64 bits"));
      }
      if (e.key() == "offset") {
        ref.offset = *n;
      } else {
        ref.length = *n;
      }
    } else if (e.key() != "checksum") {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": unknown external_data key '", absl::CHexEscape(e.key()),
                       "' (known: location, offset, length, checksum)"));
    }
  }
  if (!has_location) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is marked EXTERNAL but has no external_data 'location'"));
  }
  return ref;
}

// Owns a file descriptor.
class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

std::optional<std::string> RealPath(const std::string& path) {
  char* resolved = ::realpath(path.c_str(), nullptr);
  if (resolved == nullptr) return std::nullopt;
  std::string result(resolved);
  ::free(resolved);
  return result;
}

// Reads the external data `ref` describes for a tensor whose layout needs `expected_bytes`,
// from inside `model_dir` only (see the contract in onnx_import.h).
absl::StatusOr<std::string> ReadExternalData(const std::string& model_dir,
                                             const std::string& tensor_name,
                                             const ExternalDataRef& ref,
                                             const TensorLayout& layout) {
  const std::string what = absl::StrCat("tensor '", tensor_name, "': external data file '",
                                        absl::CHexEscape(ref.location), "'");
  if (model_dir.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "tensor '", tensor_name, "' keeps its data in the external file '",
        absl::CHexEscape(ref.location),
        "', but the model was given as bytes with no folder to read it from (load the .onnx file "
        "by path)"));
  }
  if (ref.location.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", tensor_name, "': external data location is empty"));
  }
  if (ref.location.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(what, " contains a NUL byte"));
  }
  if (ref.location[0] == '/') {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " is an absolute path; external data must lie inside the model's folder"));
  }
  std::vector<std::string> components;
  for (absl::string_view part : absl::StrSplit(ref.location, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " contains a '..' component; external data must lie inside the model's folder"));
    }
    components.emplace_back(part);
  }
  if (components.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " names the model's folder itself"));
  }

  // Walk down from the model folder one component at a time, never following a symbolic link,
  // so that what is opened is the file the location names inside the folder and nothing else.
  auto os_error = [&](const std::string& doing, int err) {
    const std::string message = absl::StrCat(what, ": ", doing, ": ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(message) : absl::InvalidArgumentError(message);
  };
  auto link_or = [&](int dir_fd, const std::string& name, const std::string& otherwise,
                     int err) -> absl::Status {
    struct stat lst;
    if (::fstatat(dir_fd, name.c_str(), &lst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(lst.st_mode)) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": '", absl::CHexEscape(name),
                       "' is a symbolic link; external data may not go through symbolic links"));
    }
    return os_error(otherwise, err);
  };
  auto dir =
      std::make_unique<ScopedFd>(::open(model_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir->get() < 0)
    return os_error(absl::StrCat("cannot open the model folder '", model_dir, "'"), errno);
  for (size_t i = 0; i + 1 < components.size(); ++i) {
    const int fd = ::openat(dir->get(), components[i].c_str(),
                            O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      return link_or(dir->get(), components[i],
                     absl::StrCat("cannot open folder '", absl::CHexEscape(components[i]), "'"),
                     err);
    }
    dir = std::make_unique<ScopedFd>(fd);
  }
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below as non-regular.
  ScopedFd file(::openat(dir->get(), components.back().c_str(),
                         O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (file.get() < 0) {
    const int err = errno;
    return link_or(dir->get(), components.back(), "cannot open it", err);
  }
  struct stat st;
  if (::fstat(file.get(), &st) != 0) return os_error("cannot stat it", errno);
  if (S_ISDIR(st.st_mode)) return absl::InvalidArgumentError(absl::StrCat(what, " is a folder"));
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not a regular file"));
  }
  // Defence in depth: the walk above cannot leave the folder, and the resolved paths agree.
  const std::optional<std::string> dir_real = RealPath(model_dir);
  const std::optional<std::string> file_real = RealPath(model_dir + "/" + ref.location);
  const std::string prefix =
      dir_real.has_value() && *dir_real == "/" ? "/" : dir_real.value_or("") + "/";
  if (!dir_real.has_value() || !file_real.has_value() ||
      file_real->compare(0, prefix.size(), prefix) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " resolves outside the model's folder '", model_dir, "'"));
  }

  const int64_t size = st.st_size;
  if (ref.offset > size) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": offset ", ref.offset, " is past the end of the file (", size, " bytes)"));
  }
  if (ref.length.has_value() && *ref.length > size - ref.offset) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": offset ", ref.offset, " + length ",
                                                   *ref.length, " runs past the end of the file (",
                                                   size, " bytes)"));
  }
  const int64_t length = ref.length.value_or(size - ref.offset);
  if (length != layout.bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor '", tensor_name, "': ", layout.declared, " but external data file '",
        absl::CHexEscape(ref.location), "' holds ", length, " bytes at offset ", ref.offset,
        ref.length.has_value() ? " (its external_data length)" : " (to the end of the file)"));
  }
  std::string data(static_cast<size_t>(length), '\0');
  int64_t done = 0;
  while (done < length) {
    const ssize_t n = ::pread(file.get(), data.data() + done,
                              static_cast<size_t>(std::min<int64_t>(length - done, 1 << 30)),
                              static_cast<off_t>(ref.offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return os_error(absl::StrCat("read failed at byte ", ref.offset + done), errno);
    if (n == 0) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": the file ended after ",
                                                     ref.offset + done, " bytes while reading ",
                                                     length, " bytes at offset ", ref.offset));
    }
    done += n;
  }
  return data;
}

// Validates one tensor of the model against the limits and, when its data lives in an external
// file, reads that data into raw_data (so every later step sees an ordinary tensor). `where`
// prefixes errors ("initializer", "node 'x' (Constant) attribute 'value':").
absl::Status PrepareTensor(onnx::TensorProto* proto, const std::string& where,
                           const std::string& model_dir, const OnnxImportLimits& limits,
                           int64_t* total_bytes) {
  auto located = [&](const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat(where, " ", s.message()));
  };
  absl::StatusOr<TensorLayout> layout = CheckTensorHeader(*proto, limits);
  if (!layout.ok()) return located(layout.status());
  if (layout->bytes > limits.max_total_tensor_bytes - *total_bytes) {
    return located(absl::ResourceExhaustedError(
        absl::StrCat("tensor '", proto->name(), "': ", layout->declared,
                     ", which brings the model's tensors "
                     "past the limit of ",
                     limits.max_total_tensor_bytes,
                     " bytes in all (OnnxImportLimits::max_total_tensor_bytes)")));
  }
  *total_bytes += layout->bytes;
  if (UsesExternalData(*proto)) {
    absl::StatusOr<ExternalDataRef> ref = ParseExternalDataRef(*proto);
    if (!ref.ok()) return located(ref.status());
    absl::StatusOr<std::string> data = ReadExternalData(model_dir, proto->name(), *ref, *layout);
    if (!data.ok()) return located(data.status());
    proto->clear_external_data();
    proto->set_data_location(onnx::TensorProto::DEFAULT);
    *proto->mutable_raw_data() = *std::move(data);
  }
  absl::Status status = CheckTensorData(*proto, *layout);
  return status.ok() ? status : located(status);
}

// Every tensor the model holds: initializers and attribute tensors (Constant values and others).
absl::Status PrepareTensors(onnx::ModelProto* model, const std::string& model_dir,
                            const OnnxImportLimits& limits) {
  onnx::GraphProto* graph = model->mutable_graph();
  if (graph->sparse_initializer_size() > 0) {
    return absl::UnimplementedError(absl::StrCat("sparse initializer '",
                                                 graph->sparse_initializer(0).values().name(),
                                                 "' is not supported"));
  }
  int64_t total_bytes = 0;
  for (onnx::TensorProto& t : *graph->mutable_initializer()) {
    YP_RETURN_IF_ERROR(PrepareTensor(&t, "initializer", model_dir, limits, &total_bytes));
  }
  for (int i = 0; i < graph->node_size(); ++i) {
    onnx::NodeProto* node = graph->mutable_node(i);
    const std::string desc = NodeDesc(*node, i);
    for (onnx::AttributeProto& a : *node->mutable_attribute()) {
      const std::string where = absl::StrCat(desc, " attribute '", a.name(), "':");
      if (a.has_t()) {
        YP_RETURN_IF_ERROR(PrepareTensor(a.mutable_t(), where, model_dir, limits, &total_bytes));
      }
      for (onnx::TensorProto& t : *a.mutable_tensors()) {
        YP_RETURN_IF_ERROR(PrepareTensor(&t, where, model_dir, limits, &total_bytes));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CheckDomainsAndOps(const onnx::ModelProto& model) {
  const ops::KernelRegistry& registry = ops::KernelRegistry::Global();
  for (int i = 0; i < model.graph().node_size(); ++i) {
    const onnx::NodeProto& node = model.graph().node(i);
    if (!IsDefaultDomain(node.domain())) {
      return absl::InvalidArgumentError(
          absl::StrCat(NodeDesc(node, i), " is in operator domain '", node.domain(),
                       "'; only the default ONNX domain (ai.onnx) is supported"));
    }
    if (node.op_type() == "Constant") continue;
    if (!registry.Has(node.op_type(), ops::Backend::kReference)) {
      return absl::UnimplementedError(absl::StrCat(
          NodeDesc(node, i), ": op type '", node.op_type(), "' is not supported (supported: ",
          absl::StrJoin(registry.ReferenceOpTypes(), ", "), ", Constant)"));
    }
  }
  return absl::OkStatus();
}

// libonnx 1.12 knows the default domain up to opset 17 and IR version 8. Opsets 18 and 19 only
// added attributes that are no-ops at their defaults for the ops yolopipe supports; drop those
// (refusing non-default values) and check the model as opset 17. Changes the model in place.
absl::Status LowerToKnownOpset(onnx::ModelProto* model, int64_t opset) {
  if (model->ir_version() > onnx::IR_VERSION) model->set_ir_version(onnx::IR_VERSION);
  const auto& ranges = onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map();
  auto range = ranges.find(onnx::ONNX_DOMAIN);
  const int64_t max_known = range == ranges.end() ? 17 : range->second.second;
  if (opset <= max_known) return absl::OkStatus();
  for (int i = 0; i < model->graph().node_size(); ++i) {
    onnx::NodeProto* node = model->mutable_graph()->mutable_node(i);
    auto* attrs = node->mutable_attribute();
    for (int k = attrs->size() - 1; k >= 0; --k) {
      const onnx::AttributeProto& a = attrs->Get(k);
      bool drop = false;
      std::string refuse;
      if (node->op_type() == "Split" && a.name() == "num_outputs") {
        if (a.i() != node->output_size()) refuse = "num_outputs differs from the output count";
        drop = true;
      } else if (node->op_type() == "Resize") {
        if (a.name() == "antialias") {
          if (a.i() != 0) refuse = "antialias=1 is not supported";
          drop = true;
        } else if (a.name() == "keep_aspect_ratio_policy") {
          if (a.s() != "stretch") refuse = "keep_aspect_ratio_policy other than 'stretch'";
          drop = true;
        } else if (a.name() == "axes") {
          refuse = "the axes attribute is not supported";
        } else if (a.name() == "coordinate_transformation_mode" &&
                   a.s() == "half_pixel_symmetric") {
          refuse = "coordinate_transformation_mode 'half_pixel_symmetric' is not supported";
        }
      } else if (node->op_type() == "Cast" && a.name() == "saturate") {
        drop = true;  // only affects float8 targets, which yolopipe refuses anyway
      }
      if (!refuse.empty()) {
        return absl::UnimplementedError(absl::StrCat(NodeDesc(*node, i), ": ", refuse));
      }
      if (drop) attrs->DeleteSubrange(k, 1);
    }
  }
  for (onnx::OperatorSetIdProto& imp : *model->mutable_opset_import()) {
    if (IsDefaultDomain(imp.domain())) imp.set_version(max_known);
  }
  return absl::OkStatus();
}

// --- graph-level normalisation after conversion ---

// Hands out names not taken yet: `base`, else "<base>__<k>" for the smallest k free. The next k
// to try is remembered per base (names are only ever added, so smaller ones stay taken): n equal
// names cost O(n log n), not O(n^2), which a file of 100,000 identically named nodes would.
class NameAllocator {
 public:
  explicit NameAllocator(std::set<std::string> taken = {}) : taken_(std::move(taken)) {}

  std::string Take(const std::string& base) {
    std::string name = base;
    if (taken_.count(name)) {
      int64_t& k = next_suffix_[base];
      do {
        name = absl::StrCat(base, "__", ++k);
      } while (taken_.count(name));
    }
    taken_.insert(name);
    return name;
  }

 private:
  std::set<std::string> taken_;
  std::map<std::string, int64_t> next_suffix_;
};

std::set<std::string> AllValueNames(const Graph& graph) {
  std::set<std::string> names(graph.inputs().begin(), graph.inputs().end());
  for (const auto& [name, t] : graph.initializers()) names.insert(name);
  for (const auto& [name, v] : graph.values()) names.insert(name);
  for (const Node& node : graph.nodes()) {
    names.insert(node.inputs.begin(), node.inputs.end());
    names.insert(node.outputs.begin(), node.outputs.end());
  }
  return names;
}

// Identity nodes are removed by reading their input directly. Graph output names are kept: an
// Identity that names a graph output makes its input's producer (or a copy of its constant)
// produce that name; one that forwards the graph input stays.
//
// Renames are recorded in a map and applied in one pass at the end (a chain of n Identity nodes
// would otherwise cost n passes over the graph). Each entry maps a name to one that had no entry
// when it was added, and no later entry is ever added for a name already mapped to, so the map
// has no cycles.
void RemoveIdentityNodes(Graph* graph) {
  const std::set<std::string> outputs(graph->outputs().begin(), graph->outputs().end());
  std::unordered_map<std::string, std::string> renamed;
  auto resolve = [&renamed](const std::string& name) {
    std::string current = name;
    for (auto it = renamed.find(current); it != renamed.end(); it = renamed.find(current)) {
      current = it->second;
    }
    // Path compression keeps later lookups of long chains short.
    for (auto it = renamed.find(name); it != renamed.end() && it->second != current;) {
      const std::string next = it->second;
      it->second = current;
      it = renamed.find(next);
    }
    return current;
  };
  std::vector<bool> removed(graph->nodes().size(), false);
  for (size_t i = 0; i < graph->nodes().size(); ++i) {
    const Node& node = graph->nodes()[i];
    if (node.op_type != "Identity" || node.inputs.size() != 1 || node.outputs.size() != 1) {
      continue;
    }
    const std::string in = resolve(node.inputs[0]);
    const std::string& out = node.outputs[0];
    if (in.empty() || in == out) continue;  // the checker refuses the latter; never loop on it
    if (!outputs.count(out)) {
      renamed[out] = in;
    } else if (graph->IsGraphInput(in) || outputs.count(in)) {
      continue;
    } else if (const Tensor* t = graph->FindInitializer(in)) {
      const Tensor copy = *t;
      graph->AddInitializer(out, copy);
    } else {
      renamed[in] = out;  // its producer now writes `out`, and its readers read `out`
    }
    removed[i] = true;
  }
  std::vector<Node> kept;
  for (size_t i = 0; i < graph->nodes().size(); ++i) {
    if (removed[i]) continue;
    Node& node = graph->mutable_nodes()[i];
    for (std::string& x : node.inputs) {
      if (!x.empty()) x = resolve(x);
    }
    for (std::string& o : node.outputs) {
      if (!o.empty()) o = resolve(o);
    }
    kept.push_back(std::move(node));
  }
  graph->mutable_nodes() = std::move(kept);
}

// Moves an opset < 13 ints attribute (Split's split, Squeeze/Unsqueeze's axes) into the input
// the opset-13 form expects, so kernels and the exporter see one form only.
void AttributeToInput(Graph* graph, Node* node, const std::string& attr, size_t input_index,
                      NameAllocator* taken) {
  absl::StatusOr<std::vector<int64_t>> values = node->attrs.GetInts(attr);
  if (!values.ok()) return;
  const std::string name = taken->Take(absl::StrCat(node->name, "/", attr));
  graph->AddInitializer(name, Tensor::FromInt64s({static_cast<int64_t>(values->size())}, *values));
  node->attrs.Erase(attr);
  if (node->inputs.size() < input_index) node->inputs.resize(input_index);
  node->inputs.insert(node->inputs.begin() + input_index, name);
}

absl::Status NormalizeLegacyForms(Graph* graph, int64_t opset) {
  if (opset >= 13) return absl::OkStatus();
  NameAllocator taken(AllValueNames(*graph));
  std::set<std::string> existing_nodes;
  for (const Node& node : graph->nodes()) existing_nodes.insert(node.name);
  NameAllocator node_names(std::move(existing_nodes));
  std::vector<Node> rewritten;
  for (Node& node : graph->mutable_nodes()) {
    if (node.op_type == "Split") {
      AttributeToInput(graph, &node, "split", 1, &taken);
    } else if (node.op_type == "Squeeze" || node.op_type == "Unsqueeze") {
      AttributeToInput(graph, &node, "axes", 1, &taken);
    } else if (node.op_type == "Softmax" && node.inputs.size() == 1 && node.outputs.size() == 1) {
      // Before opset 13 Softmax flattened its input to 2-D at `axis` (default 1) and normalised
      // over the second dimension. That is the opset-13 meaning when `axis` is the last axis;
      // otherwise (or when the rank is not known yet) spell it out as
      // Flatten(axis) -> Softmax(-1) -> Reshape(Shape(x)), which holds for every rank.
      YP_ASSIGN_OR_RETURN(int64_t axis, node.attrs.GetInt("axis", 1));
      const Value* in = graph->FindValue(node.inputs[0]);
      const int64_t rank = in != nullptr && in->dtype != DType::kUndefined
                               ? static_cast<int64_t>(in->shape.size())
                               : -1;
      const bool last = axis == -1 || (rank > 0 && (axis < 0 ? axis + rank : axis) == rank - 1);
      node.attrs.Set("axis", int64_t{-1});
      if (last) {
        rewritten.push_back(std::move(node));
        continue;
      }
      auto unique_value = [&](const std::string& suffix) { return taken.Take(node.name + suffix); };
      auto unique_node = [&](const std::string& suffix) {
        return node_names.Take(node.name + suffix);
      };
      const std::string x = node.inputs[0];
      const std::string y = node.outputs[0];
      Node flatten{unique_node("/flatten"), "Flatten", {x}, {unique_value("/flattened")}, {}};
      flatten.attrs.Set("axis", axis);
      Node shape{unique_node("/shape"), "Shape", {x}, {unique_value("/input_shape")}, {}};
      Node reshape{unique_node("/reshape"),
                   "Reshape",
                   {unique_value("/softmax_2d"), shape.outputs[0]},
                   {y},
                   {}};
      node.inputs = {flatten.outputs[0]};
      node.outputs = {reshape.inputs[0]};
      for (const std::string& v : {flatten.outputs[0], shape.outputs[0], node.outputs[0]}) {
        graph->SetValue(Value{v, DType::kUndefined, {}});
      }
      rewritten.push_back(std::move(flatten));
      rewritten.push_back(std::move(node));
      rewritten.push_back(std::move(shape));
      rewritten.push_back(std::move(reshape));
      continue;
    }
    rewritten.push_back(std::move(node));
  }
  graph->mutable_nodes() = std::move(rewritten);
  return absl::OkStatus();
}

// The image input's declared shape becomes an allocation later (runtime InputShapeFor keeps
// the declared channels, height and width), so it is capped here.
absl::Status CheckImageInputShape(const Value& input, const OnnxImportLimits& limits) {
  for (size_t axis = 0; axis < input.shape.size(); ++axis) {
    const int64_t d = input.shape[axis];
    if (d == kUnknownDim) continue;
    const int64_t cap = axis == 1 ? limits.max_input_channels : limits.max_input_dim;
    if (d < 1 || d > cap) {
      return absl::Status(
          d < 1 ? absl::StatusCode::kInvalidArgument : absl::StatusCode::kResourceExhausted,
          absl::StrCat("input '", input.name, "' declares shape ", ShapeToString(input.shape),
                       ": dimension ", axis, " must be between 1 and ", cap,
                       axis == 1 ? " (OnnxImportLimits::max_input_channels)"
                                 : " (OnnxImportLimits::max_input_dim)"));
    }
  }
  // The product of the known dimensions was checked with every other value shape.
  return absl::OkStatus();
}

absl::StatusOr<Graph> ConvertGraph(const onnx::ModelProto& model, int64_t opset,
                                   const OnnxImportLimits& limits) {
  const onnx::GraphProto& gp = model.graph();
  Graph graph;
  graph.set_name(gp.name());
  for (const onnx::StringStringEntryProto& prop : model.metadata_props()) {
    // The file cannot speak for the importer (e.g. fake a declared input shape).
    if (absl::StartsWith(prop.key(), kMetadataInternalPrefix)) continue;
    graph.mutable_metadata()[prop.key()] = prop.value();
  }
  graph.mutable_metadata()[kMetadataOnnxOpset] = absl::StrCat(opset);

  for (const onnx::TensorProto& t : gp.initializer()) {
    if (t.name().empty()) return absl::InvalidArgumentError("an initializer has no name");
    if (graph.IsInitializer(t.name())) {
      return absl::InvalidArgumentError(
          absl::StrCat("initializer '", t.name(), "' is defined twice"));
    }
    absl::StatusOr<Tensor> tensor = TensorFromOnnx(t, limits);
    if (!tensor.ok()) {
      return absl::Status(tensor.status().code(),
                          absl::StrCat("initializer ", tensor.status().message()));
    }
    graph.AddInitializer(t.name(), *std::move(tensor));
  }

  std::vector<const onnx::ValueInfoProto*> inputs;
  for (const onnx::ValueInfoProto& vi : gp.input()) {
    if (!graph.IsInitializer(vi.name())) inputs.push_back(&vi);
  }
  if (inputs.empty()) {
    return absl::InvalidArgumentError("the graph has no input; yolopipe needs one image input");
  }
  if (inputs.size() > 1) {
    std::vector<std::string> names;
    for (const onnx::ValueInfoProto* vi : inputs) names.push_back("'" + vi->name() + "'");
    return absl::InvalidArgumentError(
        absl::StrCat("the graph has ", inputs.size(), " inputs (", absl::StrJoin(names, ", "),
                     "); yolopipe models take exactly one image input"));
  }
  const ParsedValueInfo input = ValueFromValueInfo(*inputs[0]);
  if (!input.is_tensor || input.value.dtype != DType::kFloat32 || !input.has_shape ||
      input.value.shape.size() != 4) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input '", input.value.name,
        "' must be a float32 image tensor of rank 4 (B, C, H, W), got ",
        !input.is_tensor ? std::string("a non-tensor type")
                         : absl::StrCat(DTypeName(input.value.dtype),
                                        input.has_shape ? ShapeToString(input.value.shape)
                                                        : std::string(" of unknown rank"))));
  }
  YP_RETURN_IF_ERROR(CheckImageInputShape(input.value, limits));
  graph.AddInput(input.value);
  graph.mutable_metadata()[kMetadataDeclaredInputShape] = absl::StrJoin(input.value.shape, ",");

  // Node outputs start as "unknown"; inferred value_info and graph outputs fill in what ONNX
  // shape inference knows.
  for (const onnx::NodeProto& node : gp.node()) {
    for (const std::string& out : node.output()) {
      if (!out.empty()) graph.SetValue(Value{out, DType::kUndefined, {}});
    }
  }
  // Shapes ONNX shape inference added are checked like declared ones: an Expand or
  // ConstantOfShape to a huge constant shape is refused here, before constant folding would
  // allocate it.
  auto record = [&graph, &limits](const onnx::ValueInfoProto& vi,
                                  const char* kind) -> absl::Status {
    YP_RETURN_IF_ERROR(CheckValueShape(vi, kind, limits));
    ParsedValueInfo parsed = ValueFromValueInfo(vi);
    if (!parsed.is_tensor || graph.IsInitializer(vi.name()) || graph.IsGraphInput(vi.name())) {
      return absl::OkStatus();
    }
    graph.SetValue(parsed.value);
    return absl::OkStatus();
  };
  for (const onnx::ValueInfoProto& vi : gp.value_info()) {
    YP_RETURN_IF_ERROR(record(vi, "value (declared or inferred)"));
  }
  for (const onnx::ValueInfoProto& vi : gp.output()) {
    if (!vi.type().has_tensor_type()) {
      return absl::InvalidArgumentError(
          absl::StrCat("graph output '", vi.name(), "' is not a tensor"));
    }
    YP_RETURN_IF_ERROR(record(vi, "graph output"));
  }

  NameAllocator node_names;
  for (int i = 0; i < gp.node_size(); ++i) {
    const onnx::NodeProto& np = gp.node(i);
    const std::string desc = NodeDesc(np, i);
    if (np.op_type() == "Constant") {
      YP_ASSIGN_OR_RETURN(Tensor value, ConstantValue(np, desc, limits));
      const std::string& out = np.output(0);
      if (graph.IsInitializer(out) || graph.IsGraphInput(out)) {
        return absl::InvalidArgumentError(
            absl::StrCat(desc, ": output '", out, "' is already defined"));
      }
      graph.AddInitializer(out, std::move(value));
      continue;
    }
    Node node;
    node.name = node_names.Take(np.name().empty() ? absl::StrCat(np.op_type(), "_", i) : np.name());
    node.op_type = np.op_type();
    node.inputs.assign(np.input().begin(), np.input().end());
    node.outputs.assign(np.output().begin(), np.output().end());
    for (const onnx::AttributeProto& a : np.attribute()) {
      YP_ASSIGN_OR_RETURN(AttributeValue value, AttributeFromOnnx(a, desc, limits));
      node.attrs.Set(a.name(), std::move(value));
    }
    graph.AddNode(std::move(node));
  }
  for (const onnx::ValueInfoProto& vi : gp.output()) graph.AddOutput(vi.name());
  if (graph.outputs().empty()) return absl::InvalidArgumentError("the graph has no outputs");

  RemoveIdentityNodes(&graph);
  YP_RETURN_IF_ERROR(NormalizeLegacyForms(&graph, opset));
  YP_RETURN_IF_ERROR(graph.SortTopologically());
  YP_RETURN_IF_ERROR(graph.Validate());
  return graph;
}

absl::StatusOr<std::string> ReadFile(const std::string& path, const OnnxImportLimits& limits) {
  absl::StatusOr<std::string> bytes = ReadFileToString(path, limits.max_model_bytes);
  if (absl::IsResourceExhausted(bytes.status())) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "ONNX model ", bytes.status().message(),
        " (OnnxImportLimits::max_model_bytes; larger models keep their weights as external data)"));
  }
  return bytes;
}

}  // namespace

absl::StatusOr<Tensor> TensorFromOnnx(const onnx::TensorProto& proto,
                                      const OnnxImportLimits& limits) {
  if (UsesExternalData(proto)) {
    std::string location;
    for (const onnx::StringStringEntryProto& e : proto.external_data()) {
      if (e.key() == "location") location = e.value();
    }
    return absl::FailedPreconditionError(
        absl::StrCat("tensor '", proto.name(), "' keeps its data in the external file '",
                     absl::CHexEscape(location),
                     "', which only ImportOnnxFile reads (from the model's folder)"));
  }
  YP_ASSIGN_OR_RETURN(const TensorLayout layout, CheckTensorHeader(proto, limits));
  YP_RETURN_IF_ERROR(CheckTensorData(proto, layout));
  const DType dtype = layout.dtype;
  Tensor t(dtype, layout.shape);
  if (proto.has_raw_data()) {
    if (layout.bytes > 0) std::memcpy(t.raw_data(), proto.raw_data().data(), layout.bytes);
    return t;
  }
  switch (dtype) {
    case DType::kFloat32:
      CopyNarrowed(proto.float_data(), t.data<float>());
      break;
    case DType::kFloat64:
      CopyNarrowed(proto.double_data(), t.data<double>());
      break;
    case DType::kInt64:
      CopyNarrowed(proto.int64_data(), t.data<int64_t>());
      break;
    case DType::kInt32:
      CopyNarrowed(proto.int32_data(), t.data<int32_t>());
      break;
    case DType::kInt8:
      CopyNarrowed(proto.int32_data(), t.data<int8_t>());
      break;
    case DType::kUInt8:
      CopyNarrowed(proto.int32_data(), t.data<uint8_t>());
      break;
    case DType::kBool:
      for (int i = 0; i < proto.int32_data_size(); ++i) {
        t.data<uint8_t>()[i] = proto.int32_data(i) != 0 ? 1 : 0;
      }
      break;
    case DType::kFloat16:  // the low 16 bits of each int32 hold the half-precision bits
      CopyNarrowed(proto.int32_data(), t.data<uint16_t>());
      break;
    case DType::kUndefined:
      break;
  }
  return t;
}

namespace {

// Parses with an explicit nesting limit and total-bytes limit instead of protobuf's defaults.
bool ParseModel(const std::string& bytes, int max_depth, onnx::ModelProto* model) {
  model->Clear();
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  in.SetTotalBytesLimit(static_cast<int>(bytes.size()));
  in.SetRecursionLimit(max_depth);
  return model->ParseFromCodedStream(&in) && in.ConsumedEntireMessage();
}

// The whole import; `model_dir` is the folder external data is read from (empty: none).
absl::StatusOr<Graph> Import(const std::string& bytes, const std::string& source,
                             const std::string& model_dir, const OnnxImportOptions& options) {
  const OnnxImportLimits& limits = options.limits;
  if (bytes.empty()) return SourceError(source, "the file is empty (0 bytes)");
  const int64_t max_bytes = std::min<int64_t>(limits.max_model_bytes, INT_MAX);
  if (static_cast<int64_t>(bytes.size()) > max_bytes) {
    return InSource(source, absl::ResourceExhaustedError(absl::StrCat(
                                "the model is ", bytes.size(), " bytes; the limit is ", max_bytes,
                                " (OnnxImportLimits::max_model_bytes; larger models keep their "
                                "weights as external data)")));
  }
  onnx::ModelProto model;
  if (!ParseModel(bytes, limits.max_message_depth, &model)) {
    if (limits.max_message_depth < kProtobufDefaultDepth &&
        ParseModel(bytes, kProtobufDefaultDepth, &model)) {
      return InSource(source,
                      absl::ResourceExhaustedError(absl::StrCat(
                          "protobuf messages are nested more than ", limits.max_message_depth,
                          " levels deep (OnnxImportLimits::max_message_depth)")));
    }
    return SourceError(source, absl::StrCat("not a valid ONNX protobuf (", bytes.size(),
                                            " bytes could not be parsed; the file is truncated, "
                                            "not an ONNX model, or nested more than ",
                                            limits.max_message_depth, " levels deep)"));
  }
  if (!model.has_graph() || model.ir_version() <= 0) {
    return SourceError(
        source, absl::StrCat("not an ONNX model (", bytes.size(), " bytes parsed, but there is no ",
                             model.has_graph() ? "ir_version" : "graph", ")"));
  }
  if (model.graph().node_size() == 0) {
    return SourceError(source,
                       absl::StrCat("graph '", model.graph().name(), "' is empty (no nodes)"));
  }
  absl::Status status = CheckGraphSize(model, limits);
  if (!status.ok()) return InSource(source, status);
  absl::StatusOr<int64_t> opset = DefaultOpset(model);
  if (!opset.ok()) return InSource(source, opset.status());
  if (model.functions_size() > 0) {
    return SourceError(source, "model-local functions are not supported");
  }
  status = CheckNoSubgraphs(model.graph());
  if (status.ok()) status = CheckDomainsAndOps(model);
  if (status.ok()) status = CheckDeclaredValueShapes(model.graph(), limits);
  if (status.ok()) status = PrepareTensors(&model, model_dir, limits);
  if (status.ok()) status = LowerToKnownOpset(&model, *opset);
  if (!status.ok()) return InSource(source, status);

  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    return SourceError(source, absl::StrCat("rejected by the ONNX checker: ", e.what()));
  } catch (...) {
    return SourceError(source, "rejected by the ONNX checker (unknown exception)");
  }
  try {
    onnx::shape_inference::InferShapes(model);
  } catch (const std::exception& e) {
    return SourceError(source, absl::StrCat("ONNX shape inference failed: ", e.what()));
  } catch (...) {
    return SourceError(source, "ONNX shape inference failed (unknown exception)");
  }

  absl::StatusOr<Graph> graph = ConvertGraph(model, *opset, limits);
  if (!graph.ok()) return InSource(source, graph.status());
  status = FoldConstants(&*graph);
  if (status.ok() && options.fuse) status = FuseConvActivations(&*graph);
  if (status.ok()) status = graph->Validate();
  if (!status.ok()) return InSource(source, status);
  DropStaleValues(&*graph);
  return graph;
}

std::string FolderOf(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

absl::StatusOr<Graph> ImportOnnxFile(const std::string& path, const OnnxImportOptions& options) {
  YP_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path, options.limits));
  return Import(bytes, path, FolderOf(path), options);
}

absl::StatusOr<Graph> ImportOnnxBytes(const std::string& bytes, const std::string& source_name,
                                      const OnnxImportOptions& options) {
  return Import(bytes, source_name, /*model_dir=*/"", options);
}

}  // namespace yolopipe
