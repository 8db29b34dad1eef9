// Link profiling over NCCL with the messages in device memory: a LinkEndpoint
// (runtime/comm/link_profiler.h) that ping-pongs through NcclCommunicator::SendDevice/RecvDevice,
// so `yolopipe profile-link --transport nccl` measures what moving activations between GPUs costs
// without staging them through host memory. Plain C++ (no CUDA headers); in a build without
// --config=cuda no NcclCommunicator can exist, so this is never reached there.
#ifndef YOLOPIPE_RUNTIME_CUDA_NCCL_LINK_H_
#define YOLOPIPE_RUNTIME_CUDA_NCCL_LINK_H_

#include <memory>

#include "absl/status/statusor.h"
#include "runtime/comm/link_profiler.h"
#include "runtime/cuda/nccl_communicator.h"

namespace yolopipe {

// An endpoint for ProfileLink between `comm` (not owned; must outlive it) and `peer`. Its
// buffers live on comm->device(); Prepare allocates them (ResourceExhausted when the GPU is out
// of memory), and Received copies the received message back to the host. InvalidArgument for a
// null communicator or a peer out of range.
absl::StatusOr<std::unique_ptr<LinkEndpoint>> MakeNcclDeviceLinkEndpoint(NcclCommunicator* comm,
                                                                         int peer);

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_CUDA_NCCL_LINK_H_
