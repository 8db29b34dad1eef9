#include "base/attributes.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace yolopipe {
namespace {

template <typename T>
absl::StatusOr<T> Get(const std::map<std::string, AttributeValue>& values, const std::string& name,
                      const char* kind) {
  auto it = values.find(name);
  if (it == values.end()) {
    return absl::NotFoundError(absl::StrCat("missing attribute '", name, "'"));
  }
  if (const T* v = std::get_if<T>(&it->second)) return *v;
  return absl::InvalidArgumentError(absl::StrCat("attribute '", name, "' is not ", kind));
}

}  // namespace

absl::StatusOr<int64_t> Attributes::GetInt(const std::string& name) const {
  return Get<int64_t>(values_, name, "an int");
}
absl::StatusOr<int64_t> Attributes::GetInt(const std::string& name, int64_t default_value) const {
  if (!Has(name)) return default_value;
  return GetInt(name);
}
absl::StatusOr<float> Attributes::GetFloat(const std::string& name, float default_value) const {
  if (!Has(name)) return default_value;
  return Get<float>(values_, name, "a float");
}
absl::StatusOr<std::string> Attributes::GetString(const std::string& name,
                                                  const std::string& default_value) const {
  if (!Has(name)) return default_value;
  return Get<std::string>(values_, name, "a string");
}
absl::StatusOr<std::vector<int64_t>> Attributes::GetInts(const std::string& name) const {
  return Get<std::vector<int64_t>>(values_, name, "a list of ints");
}
absl::StatusOr<std::vector<int64_t>> Attributes::GetInts(
    const std::string& name, const std::vector<int64_t>& default_value) const {
  if (!Has(name)) return default_value;
  return GetInts(name);
}
absl::StatusOr<std::vector<float>> Attributes::GetFloats(
    const std::string& name, const std::vector<float>& default_value) const {
  if (!Has(name)) return default_value;
  return Get<std::vector<float>>(values_, name, "a list of floats");
}
absl::StatusOr<Tensor> Attributes::GetTensor(const std::string& name) const {
  return Get<Tensor>(values_, name, "a tensor");
}

}  // namespace yolopipe
