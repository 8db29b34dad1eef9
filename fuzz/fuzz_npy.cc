// Fuzz target: the .npy reader (runtime/npy.h), and a round trip of whatever it accepts.
#include <cstring>

#include "absl/status/status.h"
#include "base/status_macros.h"
#include "fuzz/fuzz_target.h"
#include "runtime/npy.h"

namespace yolopipe::fuzz {

absl::Status FuzzOne(const std::string& bytes) {
  YP_ASSIGN_OR_RETURN(Tensor tensor, ParseNpy(bytes, "fuzz.npy"));
  // What the reader accepted, the writer must write and the reader read back identically.
  YP_ASSIGN_OR_RETURN(std::string again, SerializeNpy(tensor));
  YP_ASSIGN_OR_RETURN(Tensor reread, ParseNpy(again, "fuzz-roundtrip.npy"));
  if (reread.dtype() != tensor.dtype() || reread.shape() != tensor.shape() ||
      reread.bytes() != tensor.bytes() ||
      (tensor.bytes() > 0 &&
       std::memcmp(reread.raw_data(), tensor.raw_data(), tensor.bytes()) != 0)) {
    // A mismatch is a bug, not a rejection: make the fuzzer stop on it.
    __builtin_trap();
  }
  return absl::OkStatus();
}

}  // namespace yolopipe::fuzz
