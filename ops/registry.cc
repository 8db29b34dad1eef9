#include "ops/registry.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace yolopipe::ops {

std::string BackendName(Backend backend) {
  switch (backend) {
    case Backend::kReference: return "reference";
    case Backend::kCpu: return "cpu";
    case Backend::kCuda: return "cuda";
  }
  return "unknown";
}

absl::Status KernelError(const KernelSpec& spec, const std::string& message) {
  return absl::InvalidArgumentError(
      absl::StrCat("op '", spec.op_type, "' (node '", spec.node_name, "'): ", message));
}

KernelRegistry& KernelRegistry::Global() {
  static KernelRegistry* registry = new KernelRegistry();
  return *registry;
}

void KernelRegistry::Register(const std::string& op_type, Backend backend, KernelFactory factory,
                              KernelTraits traits) {
  entries_[{op_type, backend}] = Entry{std::move(factory), std::move(traits)};
}

absl::StatusOr<Backend> KernelRegistry::ResolveBackend(const std::string& op_type,
                                                       Backend backend) const {
  if (entries_.count({op_type, backend})) return backend;
  if (entries_.count({op_type, Backend::kReference})) return Backend::kReference;
  return absl::NotFoundError(absl::StrCat("unsupported op type '", op_type, "'"));
}

bool KernelRegistry::Has(const std::string& op_type, Backend backend) const {
  return entries_.count({op_type, backend}) > 0;
}

KernelTraits KernelRegistry::Traits(const std::string& op_type, Backend backend) const {
  auto resolved = ResolveBackend(op_type, backend);
  if (!resolved.ok()) return {};
  return entries_.at({op_type, *resolved}).traits;
}

absl::StatusOr<std::unique_ptr<Kernel>> KernelRegistry::Create(Backend backend,
                                                               const KernelSpec& spec) const {
  auto resolved = ResolveBackend(spec.op_type, backend);
  if (!resolved.ok()) {
    return absl::NotFoundError(absl::StrCat("node '", spec.node_name, "': unsupported op type '",
                                            spec.op_type, "' (no kernel registered)"));
  }
  return entries_.at({spec.op_type, *resolved}).factory(spec);
}

std::vector<std::string> KernelRegistry::ReferenceOpTypes() const {
  std::vector<std::string> out;
  for (const auto& [key, entry] : entries_) {
    if (key.second == Backend::kReference) out.push_back(key.first);
  }
  return out;
}

}  // namespace yolopipe::ops
