// Default build (no --config=cuda): no NCCL fabric can be created, so no NcclCommunicator exists
// and its transfer methods are unreachable. Argument checks still run, so callers get the same
// InvalidArgument for bad arguments in every build.
#include "absl/strings/str_cat.h"
#include "runtime/cuda/cuda_util.h"
#include "runtime/cuda/nccl_communicator.h"

namespace yolopipe {

struct NcclCommunicator::Impl {};

NcclCommunicator::NcclCommunicator(NcclFabric* fabric, int rank, int device)
    : fabric_(fabric), rank_(rank), device_(device) {}
NcclCommunicator::~NcclCommunicator() = default;

absl::Status NcclCommunicator::InitResources(void*) {
  return NotBuiltWithCudaError("NcclCommunicator");
}
absl::Status NcclCommunicator::Send(const TensorGroup&, int, absl::Duration) {
  return NotBuiltWithCudaError("NcclCommunicator::Send");
}
absl::Status NcclCommunicator::Recv(int, MicroBatchId, NamedTensors*, absl::Duration) {
  return NotBuiltWithCudaError("NcclCommunicator::Recv");
}
absl::Status NcclCommunicator::SendDevice(const DeviceTensorGroup&, int, absl::Duration,
                                          const CudaEvent*) {
  return NotBuiltWithCudaError("NcclCommunicator::SendDevice");
}
absl::Status NcclCommunicator::RecvDevice(int, MicroBatchId, DeviceNamedTensors*, absl::Duration,
                                          CudaEvent*) {
  return NotBuiltWithCudaError("NcclCommunicator::RecvDevice");
}
absl::Status NcclCommunicator::SendDeviceGroup(const std::vector<DevicePeerTransfer>&, MicroBatchId,
                                               absl::Duration) {
  return NotBuiltWithCudaError("NcclCommunicator::SendDeviceGroup");
}
absl::Status NcclCommunicator::RecvDeviceGroup(const std::vector<DevicePeerTransfer>&, MicroBatchId,
                                               absl::Duration) {
  return NotBuiltWithCudaError("NcclCommunicator::RecvDeviceGroup");
}
absl::Status NcclCommunicator::abort_status() const { return absl::OkStatus(); }
void NcclCommunicator::AbortLocal(const absl::Status&) {}

absl::StatusOr<std::unique_ptr<NcclFabric>> NcclFabric::Create(const Bootstrap& mpi, int device,
                                                               const NcclOptions&) {
  if (device < 0) {
    return absl::InvalidArgumentError(absl::StrCat("NCCL fabric on rank ", mpi.rank(), " of ",
                                                   mpi.size(), ": negative CUDA device ", device));
  }
  return NotBuiltWithCudaError("NcclFabric::Create");
}

absl::StatusOr<std::unique_ptr<NcclFabric>> NcclFabric::CreateInProcess(
    const std::vector<int>& devices, const NcclOptions&) {
  if (absl::Status s = ValidateInProcessDevices(devices); !s.ok()) return s;
  return NotBuiltWithCudaError("NcclFabric::CreateInProcess");
}

}  // namespace yolopipe
