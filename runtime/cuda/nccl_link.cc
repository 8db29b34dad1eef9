#include "runtime/cuda/nccl_link.h"

#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "runtime/cuda/cuda_util.h"
#include "runtime/cuda/device_memory.h"
#include "runtime/cuda/stream.h"

namespace yolopipe {
namespace {

class NcclDeviceEndpoint final : public LinkEndpoint {
 public:
  NcclDeviceEndpoint(NcclCommunicator* comm, int peer) : comm_(comm), peer_(peer) {}

  absl::Status Prepare(int64_t bytes, bool initiator) override {
    const int device = comm_->device();
    ScopedCudaDevice scope(device);
    YP_RETURN_IF_ERROR(scope.status());
    if (!stream_.valid()) {
      YP_ASSIGN_OR_RETURN(stream_, CudaStream::Create(device));
    }
    initiator_ = initiator;
    shape_ = {bytes / 4};
    YP_ASSIGN_OR_RETURN(in_, DeviceBuffer::Allocate(static_cast<size_t>(bytes), device));
    out_ = DeviceBuffer();
    if (initiator) {
      YP_ASSIGN_OR_RETURN(out_, DeviceBuffer::Allocate(static_cast<size_t>(bytes), device));
      std::vector<float> pattern(static_cast<size_t>(bytes / 4));
      for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<float>(i % 251);
      YP_RETURN_IF_ERROR(CopyHostToDeviceAsync(out_.data(), pattern.data(),
                                               static_cast<size_t>(bytes), stream_));
      YP_RETURN_IF_ERROR(stream_.Synchronize());
    }
    return absl::OkStatus();
  }

  absl::Status Send(MicroBatchId id, absl::Duration timeout) override {
    DeviceTensorGroup group;
    group.microbatch = id;
    group.tensors.emplace_back("ping", Ref(initiator_ ? out_ : in_));
    return comm_->SendDevice(group, peer_, timeout);
  }

  absl::Status Recv(MicroBatchId id, absl::Duration timeout) override {
    DeviceNamedTensors into;
    into.emplace_back("ping", Ref(in_));
    return comm_->RecvDevice(peer_, id, &into, timeout);
  }

  absl::StatusOr<std::vector<float>> Received(const std::vector<int64_t>& indices) override {
    ScopedCudaDevice scope(comm_->device());
    YP_RETURN_IF_ERROR(scope.status());
    std::vector<float> all(in_.size_bytes() / sizeof(float));
    YP_RETURN_IF_ERROR(CopyDeviceToHostAsync(all.data(), in_.data(), in_.size_bytes(), stream_));
    YP_RETURN_IF_ERROR(stream_.Synchronize());
    std::vector<float> values;
    for (int64_t i : indices) {
      if (i < 0 || i >= static_cast<int64_t>(all.size())) {
        return absl::InvalidArgumentError(absl::StrCat("element ", i, " is outside the ",
                                                       all.size(), "-element message"));
      }
      values.push_back(all[static_cast<size_t>(i)]);
    }
    return values;
  }

 private:
  DeviceTensorRef Ref(const DeviceBuffer& buffer) const {
    return DeviceTensorRef{buffer.data(), DType::kFloat32, shape_, Layout::kPlain};
  }

  NcclCommunicator* comm_;
  const int peer_;
  bool initiator_ = false;
  Shape shape_;
  CudaStream stream_;
  DeviceBuffer in_, out_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<LinkEndpoint>> MakeNcclDeviceLinkEndpoint(NcclCommunicator* comm,
                                                                         int peer) {
  if (comm == nullptr) return absl::InvalidArgumentError("no NCCL communicator");
  if (peer < 0 || peer >= comm->size() || peer == comm->rank()) {
    return absl::InvalidArgumentError(absl::StrCat("peer ", peer, " is not another rank of the ",
                                                   comm->size(), "-rank NCCL communicator"));
  }
  return std::unique_ptr<LinkEndpoint>(new NcclDeviceEndpoint(comm, peer));
}

}  // namespace yolopipe
