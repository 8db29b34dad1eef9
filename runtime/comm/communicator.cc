#include "runtime/comm/communicator.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace yolopipe {

absl::Status CheckPeerRank(int rank, int size, int peer, const char* what) {
  if (peer < 0 || peer >= size) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " on rank ", rank, ": peer ", peer, " out of range [0, ", size, ")"));
  }
  if (peer == rank) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " on rank ", rank, ": peer is this rank itself"));
  }
  return absl::OkStatus();
}

absl::Status CheckNamedTensors(const NamedTensors& tensors, const std::string& where) {
  absl::flat_hash_set<std::string> names;
  for (const auto& [name, tensor] : tensors) {
    if (!tensor.defined()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": tensor '", name, "' is undefined (not allocated)"));
    }
    if (!names.insert(name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": duplicate tensor name '", name, "'"));
    }
  }
  return absl::OkStatus();
}

}  // namespace yolopipe
