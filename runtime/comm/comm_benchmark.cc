// Google Benchmark of the in-process transport: one message of N bytes from one thread to another
// (rendezvous: one copy straight into the receiver's buffer), the cost a pipeline pays per tensor
// crossing a cut between CPU devices. `yolopipe profile-link` measures the same by ping-pong, over
// MPI as well. Not a test: nothing is asserted.
#include <thread>

#include "absl/time/time.h"
#include "base/tensor.h"
#include "benchmark/benchmark.h"
#include "runtime/comm/local_communicator.h"

namespace yolopipe {
namespace {

void BM_LocalSendRecv(benchmark::State& state) {
  const int64_t bytes = state.range(0);
  auto fabric = LocalFabric::Create(2, LocalFabric::kRendezvous);
  Tensor out(DType::kFloat32, {bytes / 4});
  const int64_t iterations = state.max_iterations;
  std::thread receiver([&] {
    NamedTensors in = {{"t", Tensor(DType::kFloat32, {bytes / 4})}};
    for (int64_t i = 0; i < iterations; ++i) {
      if (!(*fabric)->endpoint(1)->Recv(0, i, &in, absl::Seconds(60)).ok()) return;
    }
  });
  int64_t id = 0;
  for (auto _ : state) {
    if (!(*fabric)->endpoint(0)->Send({id++, {{"t", out}}}, 1, absl::Seconds(60)).ok()) {
      state.SkipWithError("send failed");
      break;
    }
  }
  receiver.join();
  state.SetBytesProcessed(state.iterations() * bytes);
}
BENCHMARK(BM_LocalSendRecv)->RangeMultiplier(8)->Range(4 << 10, 16 << 20)->UseRealTime();

}  // namespace
}  // namespace yolopipe

BENCHMARK_MAIN();
