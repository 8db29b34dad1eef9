// Node attributes: the ONNX attribute kinds yolopipe uses, keyed by name.
#ifndef YOLOPIPE_BASE_ATTRIBUTES_H_
#define YOLOPIPE_BASE_ATTRIBUTES_H_

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "base/tensor.h"

namespace yolopipe {

using AttributeValue = std::variant<int64_t, float, std::string, std::vector<int64_t>,
                                    std::vector<float>, std::vector<std::string>, Tensor>;

// An ordered name -> value map with typed getters. Getters with a default return it when the
// attribute is absent, and InvalidArgument when it is present with another kind.
class Attributes {
 public:
  void Set(const std::string& name, AttributeValue value) { values_[name] = std::move(value); }
  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  void Erase(const std::string& name) { values_.erase(name); }
  const std::map<std::string, AttributeValue>& values() const { return values_; }

  absl::StatusOr<int64_t> GetInt(const std::string& name) const;
  absl::StatusOr<int64_t> GetInt(const std::string& name, int64_t default_value) const;
  absl::StatusOr<float> GetFloat(const std::string& name, float default_value) const;
  absl::StatusOr<std::string> GetString(const std::string& name,
                                        const std::string& default_value) const;
  absl::StatusOr<std::vector<int64_t>> GetInts(const std::string& name) const;
  absl::StatusOr<std::vector<int64_t>> GetInts(const std::string& name,
                                               const std::vector<int64_t>& default_value) const;
  absl::StatusOr<std::vector<float>> GetFloats(const std::string& name,
                                               const std::vector<float>& default_value) const;
  absl::StatusOr<Tensor> GetTensor(const std::string& name) const;

 private:
  std::map<std::string, AttributeValue> values_;
};

}  // namespace yolopipe

#endif  // YOLOPIPE_BASE_ATTRIBUTES_H_
