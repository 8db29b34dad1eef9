// libFuzzer's entry point for whichever target FuzzOne this is linked with.
#include "fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The Status is ignored on purpose: rejecting garbage is the expected outcome; the fuzzer
  // looks for crashes, sanitizer reports, hangs and unbounded allocations.
  (void)yolopipe::fuzz::FuzzOne(std::string(reinterpret_cast<const char*>(data), size));
  return 0;
}
