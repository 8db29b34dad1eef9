// The contract every fuzz target in fuzz/ implements: one function from raw file bytes to a
// Status, which the libFuzzer entry point (LLVMFuzzerTestOneInput), the replay main and the
// regression tests all call, so a crash found by the fuzzer replays through exactly the same code.
#ifndef YOLOPIPE_FUZZ_FUZZ_TARGET_H_
#define YOLOPIPE_FUZZ_FUZZ_TARGET_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace yolopipe::fuzz {

// Runs one input through the loader (and what the CLI does with its result before use). OK when
// the input is accepted as a valid file; any error Status is an orderly rejection. Must never
// crash, hang or allocate without bound, whatever `bytes` holds. Thread-compatible.
absl::Status FuzzOne(const std::string& bytes);

}  // namespace yolopipe::fuzz

// Defined once per target (fuzz_entry.cc): calls FuzzOne and ignores its Status.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

#endif  // YOLOPIPE_FUZZ_FUZZ_TARGET_H_
