// Tests of the NCCL transport. Built two ways (runtime/cuda/BUILD):
//   - nccl_communicator_test (gtest_main): host-side tests that run everywhere (wire header,
//     argument checks, the default build's FailedPrecondition) and an in-process test that needs
//     two GPUs (skipped otherwise: NCCL refuses two ranks on one GPU in one process).
//   - nccl_communicator_test_ranks (YOLOPIPE_NCCL_MPI_RANKS, own main): one NCCL rank per MPI rank,
//     launched by mpirun; on a one-GPU machine give each rank its own NCCL_HOSTID and set
//     NCCL_SOCKET_IFNAME=lo. Only rank 0 writes the test XML; the exit code is the worst rank's.
#include "runtime/cuda/nccl_communicator.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/dtype.h"
#include "base/tensor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/comm/bootstrap.h"
#include "runtime/cuda/cuda_probe.h"
#include "runtime/cuda/cuda_util.h"
#include "runtime/cuda/device_memory.h"
#include "runtime/cuda/stream.h"

namespace yolopipe {
namespace {

using ::testing::HasSubstr;

// Values that identify the sender, the micro-batch and the element, so a misrouted or reordered
// transfer cannot pass.
float Pattern(int src, MicroBatchId mb, int64_t i) {
  return static_cast<float>(1000 * src + 10 * mb) + 0.5f * static_cast<float>(i);
}

Tensor PatternTensor(const Shape& shape, int src, MicroBatchId mb) {
  Tensor t(DType::kFloat32, shape);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = Pattern(src, mb, i);
  return t;
}

Tensor IdTensor(int src, MicroBatchId mb) {
  return Tensor::FromInt64s({2}, {static_cast<int64_t>(src), mb});
}

void ExpectPattern(const Tensor& t, int src, MicroBatchId mb) {
  ASSERT_EQ(t.dtype(), DType::kFloat32);
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    ASSERT_EQ(t.data<float>()[i], Pattern(src, mb, i)) << "element " << i;
  }
}

#ifndef YOLOPIPE_NCCL_MPI_RANKS

void AppendInt(std::string& out, int64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); }

constexpr int64_t kMagic = 0x59504E43434C;  // "YPNCCL", as the wire format defines it

// A header built by hand: magic, micro-batch, end flag, count, then per tensor dtype code, layout
// code, rank, dims, name length, name.
struct RawTensor {
  int64_t dtype;
  int64_t layout;
  std::vector<int64_t> dims;
  std::string name;
};
std::string RawHeader(int64_t magic, int64_t mb, int64_t end, int64_t count,
                      const std::vector<RawTensor>& tensors) {
  std::string out;
  AppendInt(out, magic);
  AppendInt(out, mb);
  AppendInt(out, end);
  AppendInt(out, count);
  for (const RawTensor& t : tensors) {
    AppendInt(out, t.dtype);
    AppendInt(out, t.layout);
    AppendInt(out, static_cast<int64_t>(t.dims.size()));
    for (int64_t d : t.dims) AppendInt(out, d);
    AppendInt(out, static_cast<int64_t>(t.name.size()));
    out += t.name;
  }
  return out;
}

NcclGroupHeader TwoTensorHeader() {
  NcclGroupHeader h;
  h.microbatch = 7;
  h.tensors.push_back({"a_feat", DType::kFloat32, Layout::kNHWC, {1, 8, 4, 2}});
  h.tensors.push_back({"b_ids", DType::kInt64, Layout::kPlain, {3}});
  return h;
}

TEST(NcclWireTest, HeaderRoundTripsAtFixedSize) {
  const NcclGroupHeader h = TwoTensorHeader();
  absl::StatusOr<std::string> bytes = EncodeNcclGroupHeader(h, "test");
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(bytes->size(), kNcclHeaderBytes);
  absl::StatusOr<NcclGroupHeader> back = DecodeNcclGroupHeader(bytes->data(), bytes->size(), "t");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->microbatch, 7);
  EXPECT_FALSE(back->end_of_stream);
  ASSERT_EQ(back->tensors.size(), 2u);
  EXPECT_EQ(back->tensors[0].name, "a_feat");
  EXPECT_EQ(back->tensors[0].dtype, DType::kFloat32);
  EXPECT_EQ(back->tensors[0].layout, Layout::kNHWC);
  EXPECT_EQ(back->tensors[0].shape, (Shape{1, 8, 4, 2}));
  EXPECT_EQ(back->tensors[1].name, "b_ids");
  EXPECT_EQ(back->tensors[1].dtype, DType::kInt64);
  EXPECT_EQ(back->tensors[1].shape, (Shape{3}));
  // 64 float32 + 3 int64.
  EXPECT_EQ(back->payload_bytes(), 64 * 4 + 3 * 8);
}

TEST(NcclWireTest, HandBuiltHeaderDecodes) {
  // dtype code 1 is kFloat32 (base/dtype.h), layout 0 kPlain.
  const std::string raw = RawHeader(kMagic, 3, 0, 1, {{1, 0, {2, 5}, "x"}});
  absl::StatusOr<NcclGroupHeader> h = DecodeNcclGroupHeader(raw.data(), raw.size(), "t");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->microbatch, 3);
  ASSERT_EQ(h->tensors.size(), 1u);
  EXPECT_EQ(h->tensors[0].dtype, DType::kFloat32);
  EXPECT_EQ(h->tensors[0].shape, (Shape{2, 5}));
  EXPECT_EQ(h->payload_bytes(), 40);
}

TEST(NcclWireTest, EndOfStreamRoundTrips) {
  NcclGroupHeader h;
  h.microbatch = 12;
  h.end_of_stream = true;
  absl::StatusOr<std::string> bytes = EncodeNcclGroupHeader(h, "test");
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  absl::StatusOr<NcclGroupHeader> back = DecodeNcclGroupHeader(bytes->data(), bytes->size(), "t");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->end_of_stream);
  EXPECT_EQ(back->microbatch, 12);
  EXPECT_TRUE(back->tensors.empty());
  EXPECT_EQ(back->payload_bytes(), 0);
}

TEST(NcclWireTest, EncodeRejectsDescriptorsThatDoNotFit) {
  NcclGroupHeader h;
  // Each descriptor: dtype, layout, rank (24 bytes) + 4 dims (32) + name length (8) + 100-byte
  // name = 164 bytes; 200 of them are 32800 bytes > 16384.
  for (int i = 0; i < 200; ++i) {
    std::string name = absl::StrCat("t", i);
    name.resize(100, 'x');
    h.tensors.push_back({name, DType::kFloat32, Layout::kPlain, {1, 2, 3, 4}});
  }
  absl::StatusOr<std::string> bytes = EncodeNcclGroupHeader(h, "send to rank 1");
  EXPECT_EQ(bytes.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bytes.status().message()), HasSubstr("send to rank 1"));
  EXPECT_THAT(std::string(bytes.status().message()), HasSubstr("200 tensors"));
}

TEST(NcclWireTest, DecodeRejectsMalformedHeaders) {
  struct Case {
    const char* why;
    std::string bytes;
  };
  std::string long_name_len = RawHeader(kMagic, 0, 0, 1, {{1, 0, {2}, "x"}});
  // Overwrite the name length (the 8 bytes before the final 1-byte name) with 1000.
  const int64_t big = 1000;
  std::memcpy(&long_name_len[long_name_len.size() - 9], &big, 8);
  const std::vector<Case> cases = {
      {"bad magic", RawHeader(kMagic + 1, 0, 0, 0, {})},
      {"truncated", RawHeader(kMagic, 0, 0, 0, {}).substr(0, 20)},
      {"end-of-stream flag 2", RawHeader(kMagic, 0, 2, 0, {})},
      {"-1 tensors", RawHeader(kMagic, 0, 0, -1, {})},
      {"5000 tensors", RawHeader(kMagic, 0, 0, 5000, {})},
      {"end-of-stream marker with tensors", RawHeader(kMagic, 0, 1, 1, {{1, 0, {1}, "x"}})},
      {"dtype code 0", RawHeader(kMagic, 0, 0, 1, {{0, 0, {1}, "x"}})},
      {"dtype code 99", RawHeader(kMagic, 0, 0, 1, {{99, 0, {1}, "x"}})},
      {"layout code 5", RawHeader(kMagic, 0, 0, 1, {{1, 5, {1}, "x"}})},
      {"rank 17", RawHeader(kMagic, 0, 0, 1, {{1, 0, std::vector<int64_t>(17, 1), "x"}})},
      {"dimension -3", RawHeader(kMagic, 0, 0, 1, {{1, 0, {2, -3}, "x"}})},
      {"truncated tensor", RawHeader(kMagic, 0, 0, 2, {{1, 0, {2}, "x"}})},
      {"truncated name", long_name_len},
  };
  for (const Case& c : cases) {
    absl::StatusOr<NcclGroupHeader> h =
        DecodeNcclGroupHeader(c.bytes.data(), c.bytes.size(), "recv from rank 0");
    EXPECT_EQ(h.status().code(), absl::StatusCode::kDataLoss) << c.why;
    EXPECT_THAT(std::string(h.status().message()), HasSubstr(c.why));
    EXPECT_THAT(std::string(h.status().message()), HasSubstr("recv from rank 0"));
  }
  EXPECT_EQ(DecodeNcclGroupHeader(nullptr, 0, "t").status().code(), absl::StatusCode::kDataLoss);
}

TEST(NcclWireTest, MatchAcceptsTheSameTensorsAndNamesEveryDifference) {
  const NcclGroupHeader sent = TwoTensorHeader();
  EXPECT_TRUE(MatchNcclGroup(sent, sent.tensors, "w").ok());

  std::vector<NcclTensorMeta> missing = {sent.tensors[0]};
  absl::Status s = MatchNcclGroup(sent, missing, "w");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("'b_ids' sent but not expected"));

  std::vector<NcclTensorMeta> extra = sent.tensors;
  extra.push_back({"c_more", DType::kFloat32, Layout::kPlain, {1}});
  s = MatchNcclGroup(sent, extra, "w");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("'c_more' expected but not sent"));

  std::vector<NcclTensorMeta> other_dtype = sent.tensors;
  other_dtype[1].dtype = DType::kInt32;
  s = MatchNcclGroup(sent, other_dtype, "w");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("'b_ids': expected int32(3,), got int64(3,)"));

  std::vector<NcclTensorMeta> other_shape = sent.tensors;
  other_shape[0].shape = {1, 8, 2, 4};
  s = MatchNcclGroup(sent, other_shape, "w");
  EXPECT_THAT(std::string(s.message()), HasSubstr("expected float32(1, 8, 2, 4) nhwc"));

  std::vector<NcclTensorMeta> other_layout = sent.tensors;
  other_layout[0].layout = Layout::kPlain;
  s = MatchNcclGroup(sent, other_layout, "w");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("got float32(1, 8, 4, 2) nhwc"));
}

TEST(NcclWireTest, WireOrderIsByNameForHostAndDeviceTensors) {
  NamedTensors host = {{"c", Tensor(DType::kFloat32, {2})},
                       {"a", Tensor(DType::kInt64, {1, 3})},
                       {"b", Tensor(DType::kUInt8, {0})}};
  absl::StatusOr<std::vector<NcclTensorMeta>> order = WireOrderOf(host, "w");
  ASSERT_TRUE(order.ok()) << order.status();
  ASSERT_EQ(order->size(), 3u);
  EXPECT_EQ((*order)[0].name, "a");
  EXPECT_EQ((*order)[0].dtype, DType::kInt64);
  EXPECT_EQ((*order)[0].shape, (Shape{1, 3}));
  EXPECT_EQ((*order)[1].name, "b");
  EXPECT_EQ((*order)[2].name, "c");

  char storage[64];
  DeviceNamedTensors device = {{"z", {storage, DType::kFloat32, {4}, Layout::kPlain}},
                               {"y", {nullptr, DType::kFloat32, {0, 5}, Layout::kPlain}}};
  order = WireOrderOf(device, "w");
  ASSERT_TRUE(order.ok()) << order.status();  // null data is fine for 0 bytes
  ASSERT_EQ(order->size(), 2u);
  EXPECT_EQ((*order)[0].name, "y");
  EXPECT_EQ((*order)[1].name, "z");
  EXPECT_EQ((*order)[1].bytes(), 16u);
}

TEST(NcclWireTest, WireOrderRejectsBadTensors) {
  auto code_and_message = [](const absl::Status& s) {
    return std::make_pair(s.code(), std::string(s.message()));
  };
  NamedTensors undefined = {{"u", Tensor()}};
  auto r = code_and_message(WireOrderOf(undefined, "Send x").status());
  EXPECT_EQ(r.first, absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.second, HasSubstr("'u' is undefined"));

  NamedTensors duplicate = {{"d", Tensor(DType::kFloat32, {1})},
                            {"d", Tensor(DType::kFloat32, {1})}};
  r = code_and_message(WireOrderOf(duplicate, "Send x").status());
  EXPECT_EQ(r.first, absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.second, HasSubstr("duplicate tensor name 'd'"));

  char storage[8];
  DeviceNamedTensors null_data = {{"n", {nullptr, DType::kFloat32, {2}, Layout::kPlain}}};
  r = code_and_message(WireOrderOf(null_data, "Send x").status());
  EXPECT_EQ(r.first, absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.second, HasSubstr("'n'"));
  EXPECT_THAT(r.second, HasSubstr("no data pointer"));

  DeviceNamedTensors no_dtype = {{"q", {storage, DType::kUndefined, {2}, Layout::kPlain}}};
  r = code_and_message(WireOrderOf(no_dtype, "Send x").status());
  EXPECT_EQ(r.first, absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.second, HasSubstr("undefined dtype"));

  DeviceNamedTensors unbound = {
      {"v", {storage, DType::kFloat32, {kUnknownDim, 2}, Layout::kPlain}}};
  r = code_and_message(WireOrderOf(unbound, "Send x").status());
  EXPECT_EQ(r.first, absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.second, HasSubstr("unbound dimension"));

  DeviceNamedTensors dup_device = {{"e", {storage, DType::kUInt8, {1}, Layout::kPlain}},
                                   {"e", {storage, DType::kUInt8, {1}, Layout::kPlain}}};
  EXPECT_EQ(WireOrderOf(dup_device, "w").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(NcclWireTest, DeviceGroupOrderIsPeersAscendingThenNames) {
  char storage[64];
  std::vector<DevicePeerTransfer> transfers(2);
  transfers[0].peer = 3;
  transfers[0].tensors = {{"b", {storage + 8, DType::kFloat32, {2}, Layout::kPlain}},
                          {"a", {storage + 16, DType::kFloat16, {3}, Layout::kPlain}},
                          {"empty", {nullptr, DType::kFloat32, {0, 4}, Layout::kPlain}}};
  transfers[1].peer = 1;
  transfers[1].tensors = {{"z", {storage, DType::kUInt8, {5}, Layout::kPlain}}};
  auto order = DeviceGroupTransfers(/*rank=*/0, /*size=*/4, transfers, "w");
  ASSERT_TRUE(order.ok()) << order.status();
  // Peer 1's one tensor, then peer 3's by name; the 0-byte tensor is not issued.
  ASSERT_EQ(order->size(), 3u);
  EXPECT_EQ((*order)[0].peer, 1);
  EXPECT_EQ((*order)[0].name, "z");
  EXPECT_EQ((*order)[0].bytes, 5u);
  EXPECT_EQ((*order)[0].data, storage);
  EXPECT_EQ((*order)[1].peer, 3);
  EXPECT_EQ((*order)[1].name, "a");
  EXPECT_EQ((*order)[1].bytes, 6u);
  EXPECT_EQ((*order)[1].data, storage + 16);
  EXPECT_EQ((*order)[2].peer, 3);
  EXPECT_EQ((*order)[2].name, "b");
  EXPECT_EQ((*order)[2].bytes, 8u);
  EXPECT_EQ((*order)[2].data, storage + 8);
  auto none = DeviceGroupTransfers(0, 4, {}, "w");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(DescribeDeviceGroup(0, /*is_send=*/true, transfers, 7),
            "NCCL grouped send from rank 0 to rank(s) 3,1, micro-batch 7");
  EXPECT_EQ(DescribeDeviceGroup(2, /*is_send=*/false, transfers, 8),
            "NCCL grouped receive on rank 2 from rank(s) 3,1, micro-batch 8");
}

TEST(NcclWireTest, DeviceGroupRefusesSelfOutOfRangeRepeatedPeersAndBadTensors) {
  char storage[8];
  auto one = [&](int peer) {
    DevicePeerTransfer t;
    t.peer = peer;
    t.tensors = {{"x", {storage, DType::kFloat32, {2}, Layout::kPlain}}};
    return t;
  };
  auto message = [](const absl::Status& s) { return std::string(s.message()); };
  absl::Status self = DeviceGroupTransfers(2, 4, {one(2)}, "send x").status();
  EXPECT_EQ(self.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(message(self), HasSubstr("send x: peer 2 is not another rank"));
  absl::Status out_of_range = DeviceGroupTransfers(0, 4, {one(4)}, "w").status();
  EXPECT_EQ(out_of_range.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(message(out_of_range), HasSubstr("peer 4"));
  EXPECT_EQ(DeviceGroupTransfers(0, 4, {one(-1)}, "w").status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::Status twice = DeviceGroupTransfers(0, 4, {one(3), one(1), one(3)}, "w").status();
  EXPECT_EQ(twice.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(message(twice), HasSubstr("peer 3 is listed twice"));
  DevicePeerTransfer null_data;
  null_data.peer = 1;
  null_data.tensors = {{"n", {nullptr, DType::kFloat32, {2}, Layout::kPlain}}};
  absl::Status bad = DeviceGroupTransfers(0, 4, {null_data}, "w").status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(message(bad), HasSubstr("w, peer 1"));
  EXPECT_THAT(message(bad), HasSubstr("'n'"));
}

TEST(NcclFabricTest, InProcessDeviceListIsValidatedInEveryBuild) {
  EXPECT_TRUE(ValidateInProcessDevices({0, 1, 3}).ok());
  EXPECT_EQ(ValidateInProcessDevices({}).code(), absl::StatusCode::kInvalidArgument);
  absl::Status negative = ValidateInProcessDevices({0, -1});
  EXPECT_EQ(negative.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(negative.message()), HasSubstr("-1"));
  absl::Status twice = ValidateInProcessDevices({0, 1, 0});
  EXPECT_EQ(twice.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(twice.message()), HasSubstr("device 0 listed twice"));

  // CreateInProcess checks its arguments before touching CUDA.
  absl::StatusOr<std::unique_ptr<NcclFabric>> fabric = NcclFabric::CreateInProcess({0, 0});
  EXPECT_EQ(fabric.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(fabric.status().message()), HasSubstr("listed twice"));
}

TEST(NcclFabricTest, WithoutCudaOrGpuCreationIsFailedPrecondition) {
  if (ListCudaDevices().ok()) GTEST_SKIP() << "a GPU is present";
  absl::StatusOr<std::unique_ptr<NcclFabric>> fabric = NcclFabric::CreateInProcess({0});
  EXPECT_EQ(fabric.status().code(), absl::StatusCode::kFailedPrecondition);
  if (!BuiltWithCuda()) {
    EXPECT_THAT(std::string(fabric.status().message()), HasSubstr("built without CUDA support"));
  }
}

// ---- Two GPUs in one process, a thread per GPU ----

int VisibleGpus() {
  absl::StatusOr<std::vector<CudaDeviceInfo>> devices = ListCudaDevices();
  return devices.ok() ? static_cast<int>(devices->size()) : 0;
}

constexpr absl::Duration kTimeout = absl::Seconds(60);

TEST(NcclInProcessTest, HostGroupsFlowInOrderThenEndOfStream) {
  if (VisibleGpus() < 2) GTEST_SKIP() << "needs 2 GPUs (NCCL refuses two ranks on one GPU)";
  absl::StatusOr<std::unique_ptr<NcclFabric>> fabric = NcclFabric::CreateInProcess({0, 1});
  ASSERT_TRUE(fabric.ok()) << fabric.status();
  NcclCommunicator* a = (*fabric)->endpoint(0);
  NcclCommunicator* b = (*fabric)->endpoint(1);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ((*fabric)->endpoint(2), nullptr);
  EXPECT_EQ(a->Send(TensorGroup{}, 0, kTimeout).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(a->Send(TensorGroup{}, 5, kTimeout).code(), absl::StatusCode::kInvalidArgument);

  constexpr int kMicroBatches = 3;
  absl::Status send_status;
  std::thread sender([&] {
    for (MicroBatchId mb = 0; mb < kMicroBatches && send_status.ok(); ++mb) {
      TensorGroup g;
      g.microbatch = mb;
      // Listed in the opposite of wire order on purpose.
      g.tensors = {{"z_feat", PatternTensor({2, 3, 5}, 0, mb)}, {"a_id", IdTensor(0, mb)}};
      send_status = a->Send(g, 1, kTimeout);
    }
    if (send_status.ok()) {
      TensorGroup end;
      end.microbatch = kMicroBatches;
      end.end_of_stream = true;
      send_status = a->Send(end, 1, kTimeout);
    }
  });
  for (MicroBatchId mb = 0; mb < kMicroBatches; ++mb) {
    NamedTensors into = {{"a_id", Tensor(DType::kInt64, {2})},
                         {"z_feat", Tensor(DType::kFloat32, {2, 3, 5})}};
    ASSERT_TRUE(b->Recv(0, mb, &into, kTimeout).ok()) << "micro-batch " << mb;
    EXPECT_EQ(into[0].second.data<int64_t>()[0], 0);
    EXPECT_EQ(into[0].second.data<int64_t>()[1], mb);
    ExpectPattern(into[1].second, 0, mb);
  }
  NamedTensors none;
  absl::Status end = b->Recv(0, kMicroBatches, &none, kTimeout);
  EXPECT_EQ(end.code(), absl::StatusCode::kOutOfRange) << end;
  EXPECT_THAT(std::string(end.message()), HasSubstr("end of stream from rank 0"));
  sender.join();
  EXPECT_TRUE(send_status.ok()) << send_status;
  const int64_t per_group = 2 * 3 * 5 * 4 + 2 * 8;
  EXPECT_EQ(a->bytes_sent(), kMicroBatches * per_group);
  EXPECT_EQ(b->bytes_received(), kMicroBatches * per_group);
}

TEST(NcclInProcessTest, DeviceGroupsAreOrderedByEvents) {
  if (VisibleGpus() < 2) GTEST_SKIP() << "needs 2 GPUs";
  absl::StatusOr<std::unique_ptr<NcclFabric>> fabric = NcclFabric::CreateInProcess({0, 1});
  ASSERT_TRUE(fabric.ok()) << fabric.status();
  NcclCommunicator* a = (*fabric)->endpoint(0);
  NcclCommunicator* b = (*fabric)->endpoint(1);
  const Tensor expected = PatternTensor({64, 33}, 0, 4);
  const size_t bytes = expected.bytes();

  absl::Status send_status;
  std::thread sender([&] {
    absl::StatusOr<CudaStream> compute = CudaStream::Create(0);
    absl::StatusOr<CudaEvent> ready = CudaEvent::Create(0);
    absl::StatusOr<DeviceBuffer> src = DeviceBuffer::Allocate(bytes, 0);
    if (!compute.ok() || !ready.ok() || !src.ok()) {
      send_status = absl::InternalError("setup on device 0 failed");
      return;
    }
    // The "producer" writes on its own stream; the send must wait for it through `ready`.
    send_status = CopyHostToDeviceAsync(src->data(), expected.raw_data(), bytes, *compute);
    if (send_status.ok()) send_status = ready->Record(*compute);
    DeviceTensorGroup g;
    g.microbatch = 4;
    g.tensors = {{"x", {src->data(), DType::kFloat32, {64, 33}, Layout::kPlain}}};
    if (send_status.ok()) send_status = a->SendDevice(g, 1, kTimeout, &*ready);
  });
  absl::StatusOr<CudaStream> consumer = CudaStream::Create(1);
  absl::StatusOr<CudaEvent> received = CudaEvent::Create(1);
  absl::StatusOr<DeviceBuffer> dst = DeviceBuffer::Allocate(bytes, 1);
  ASSERT_TRUE(consumer.ok() && received.ok() && dst.ok());
  DeviceNamedTensors into = {{"x", {dst->data(), DType::kFloat32, {64, 33}, Layout::kPlain}}};
  absl::Status recv_status = b->RecvDevice(0, 4, &into, kTimeout, &*received);
  sender.join();
  ASSERT_TRUE(send_status.ok()) << send_status;
  ASSERT_TRUE(recv_status.ok()) << recv_status;
  Tensor host(DType::kFloat32, {64, 33});
  ASSERT_TRUE(consumer->WaitEvent(*received).ok());
  ASSERT_TRUE(CopyDeviceToHostAsync(host.raw_data(), dst->data(), bytes, *consumer).ok());
  ASSERT_TRUE(consumer->Synchronize().ok());
  EXPECT_TRUE(BitwiseEqual(host, expected));
  EXPECT_EQ(b->bytes_received(), static_cast<int64_t>(bytes));
}

TEST(NcclInProcessTest, MismatchKeepsTheMessageForTheNextRecv) {
  if (VisibleGpus() < 2) GTEST_SKIP() << "needs 2 GPUs";
  absl::StatusOr<std::unique_ptr<NcclFabric>> fabric = NcclFabric::CreateInProcess({0, 1});
  ASSERT_TRUE(fabric.ok()) << fabric.status();
  NcclCommunicator* a = (*fabric)->endpoint(0);
  NcclCommunicator* b = (*fabric)->endpoint(1);
  absl::Status send_status;
  std::thread sender([&] {
    TensorGroup g;
    g.microbatch = 2;
    g.tensors = {{"t", PatternTensor({2, 3}, 0, 2)}};
    send_status = a->Send(g, 1, kTimeout);
  });
  NamedTensors wrong_shape = {{"t", Tensor(DType::kFloat32, {3, 2})}};
  absl::Status s = b->Recv(0, 2, &wrong_shape, kTimeout);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("'t'"));
  NamedTensors wrong_mb = {{"t", Tensor(DType::kFloat32, {2, 3})}};
  s = b->Recv(0, 3, &wrong_mb, kTimeout);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("is for micro-batch 2"));
  NamedTensors right = {{"t", Tensor(DType::kFloat32, {2, 3})}};
  s = b->Recv(0, 2, &right, kTimeout);
  sender.join();
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(send_status.ok()) << send_status;
  ExpectPattern(right[0].second, 0, 2);
}

TEST(NcclInProcessTest, DeadlineAbortsEveryLocalEndpointNamingPeerAndMicroBatch) {
  if (VisibleGpus() < 2) GTEST_SKIP() << "needs 2 GPUs";
  absl::StatusOr<std::unique_ptr<NcclFabric>> fabric = NcclFabric::CreateInProcess({0, 1});
  ASSERT_TRUE(fabric.ok()) << fabric.status();
  NcclCommunicator* a = (*fabric)->endpoint(0);
  NcclCommunicator* b = (*fabric)->endpoint(1);
  NamedTensors into = {{"t", Tensor(DType::kFloat32, {4})}};
  absl::Status s = b->Recv(0, 9, &into, absl::Milliseconds(300));  // nobody sends
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("from rank 0, micro-batch 9"));
  TensorGroup g;
  g.tensors = {{"t", PatternTensor({4}, 0, 0)}};
  absl::Status later = a->Send(g, 1, kTimeout);
  EXPECT_EQ(later.code(), absl::StatusCode::kAborted) << later;
  EXPECT_THAT(std::string(later.message()), HasSubstr("micro-batch 9"));
}

TEST(NcclInProcessTest, AbortWakesABlockedRecvWithTheReason) {
  if (VisibleGpus() < 2) GTEST_SKIP() << "needs 2 GPUs";
  absl::StatusOr<std::unique_ptr<NcclFabric>> fabric = NcclFabric::CreateInProcess({0, 1});
  ASSERT_TRUE(fabric.ok()) << fabric.status();
  NcclCommunicator* a = (*fabric)->endpoint(0);
  NcclCommunicator* b = (*fabric)->endpoint(1);
  absl::Status recv_status;
  std::thread receiver([&] {
    NamedTensors into = {{"t", Tensor(DType::kFloat32, {4})}};
    recv_status = b->Recv(0, 0, &into, kTimeout);
  });
  absl::SleepFor(absl::Milliseconds(200));  // let the receive start (not a timing assertion)
  a->Abort(absl::InternalError("stage 0 failed on micro-batch 0"));
  receiver.join();
  EXPECT_EQ(recv_status.code(), absl::StatusCode::kAborted) << recv_status;
  EXPECT_THAT(std::string(recv_status.message()), HasSubstr("stage 0 failed on micro-batch 0"));
  EXPECT_EQ(b->abort_status().code(), absl::StatusCode::kAborted);
}

#else  // YOLOPIPE_NCCL_MPI_RANKS

// ---- One NCCL rank per MPI rank (launched by mpirun) ----

Bootstrap* g_mpi = nullptr;  // MpiRuntime (mpirun) or FileBootstrap (a launch script)
int g_local_rank = 0;
constexpr absl::Duration kTimeout = absl::Seconds(60);

// Creates the fabric on GPU local_rank % visible GPUs; skips (on every rank alike) without a GPU.
class NcclRanksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::vector<CudaDeviceInfo>> devices = ListCudaDevices();
    if (!devices.ok()) {
      absl::StatusOr<std::unique_ptr<NcclFabric>> fabric = NcclFabric::Create(*g_mpi, 0);
      EXPECT_EQ(fabric.status().code(), absl::StatusCode::kFailedPrecondition);
      GTEST_SKIP() << devices.status();
    }
    device_ = g_local_rank % static_cast<int>(devices->size());
    absl::StatusOr<std::unique_ptr<NcclFabric>> fabric = NcclFabric::Create(*g_mpi, device_);
    ASSERT_TRUE(fabric.ok()) << fabric.status();
    fabric_ = *std::move(fabric);
    self_ = fabric_->endpoint(g_mpi->rank());
    ASSERT_NE(self_, nullptr);
    ASSERT_EQ(self_->rank(), g_mpi->rank());
    ASSERT_EQ(self_->size(), g_mpi->size());
    for (int r = 0; r < g_mpi->size(); ++r) {
      if (r != g_mpi->rank()) {
        ASSERT_EQ(fabric_->endpoint(r), nullptr);
      }
    }
  }
  // No rank tears its communicator down while a peer may still be using it (a peer's pending
  // transfer would then fail with NCCL's remote error instead of what the test checks).
  void TearDown() override {
    absl::StatusOr<int> barrier = g_mpi->MaxOverRanks(0);
    EXPECT_TRUE(barrier.ok()) << barrier.status();
    fabric_.reset();
  }
  int rank() const { return g_mpi->rank(); }
  int size() const { return g_mpi->size(); }

  int device_ = 0;
  std::unique_ptr<NcclFabric> fabric_;
  NcclCommunicator* self_ = nullptr;
};

TEST_F(NcclRanksTest, PipelineOfHostGroupsThenEndOfStream) {
  // Rank r receives from r-1 and forwards its own pattern to r+1, like a pipeline's stages.
  constexpr int kMicroBatches = 4;
  for (MicroBatchId mb = 0; mb < kMicroBatches; ++mb) {
    if (rank() > 0) {
      NamedTensors into = {{"z_act", Tensor(DType::kFloat32, {3, 17})},
                           {"a_id", Tensor(DType::kInt64, {2})}};
      absl::Status s = self_->Recv(rank() - 1, mb, &into, kTimeout);
      ASSERT_TRUE(s.ok()) << s;
      ExpectPattern(into[0].second, rank() - 1, mb);
      EXPECT_EQ(into[1].second.data<int64_t>()[0], rank() - 1);
      EXPECT_EQ(into[1].second.data<int64_t>()[1], mb);
    }
    if (rank() + 1 < size()) {
      TensorGroup g;
      g.microbatch = mb;
      g.tensors = {{"a_id", IdTensor(rank(), mb)}, {"z_act", PatternTensor({3, 17}, rank(), mb)}};
      absl::Status s = self_->Send(g, rank() + 1, kTimeout);
      ASSERT_TRUE(s.ok()) << s;
    }
  }
  if (rank() + 1 < size()) {
    TensorGroup end;
    end.microbatch = kMicroBatches;
    end.end_of_stream = true;
    ASSERT_TRUE(self_->Send(end, rank() + 1, kTimeout).ok());
    EXPECT_EQ(self_->bytes_sent(), kMicroBatches * (3 * 17 * 4 + 2 * 8));
  }
  if (rank() > 0) {
    NamedTensors none;
    absl::Status s = self_->Recv(rank() - 1, kMicroBatches, &none, kTimeout);
    EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange) << s;
    EXPECT_EQ(self_->bytes_received(), kMicroBatches * (3 * 17 * 4 + 2 * 8));
  }
}

TEST_F(NcclRanksTest, DeviceGroupWithEvents) {
  if (rank() > 1) return;
  const Tensor expected = PatternTensor({128, 9}, 0, 1);
  const size_t bytes = expected.bytes();
  absl::StatusOr<CudaStream> compute = CudaStream::Create(device_);
  absl::StatusOr<CudaEvent> event = CudaEvent::Create(device_);
  absl::StatusOr<DeviceBuffer> buffer = DeviceBuffer::Allocate(bytes, device_);
  ASSERT_TRUE(compute.ok() && event.ok() && buffer.ok());
  if (rank() == 0) {
    ASSERT_TRUE(CopyHostToDeviceAsync(buffer->data(), expected.raw_data(), bytes, *compute).ok());
    ASSERT_TRUE(event->Record(*compute).ok());
    DeviceTensorGroup g;
    g.microbatch = 1;
    g.tensors = {{"x", {buffer->data(), DType::kFloat32, {128, 9}, Layout::kPlain}}};
    absl::Status s = self_->SendDevice(g, 1, kTimeout, &*event);
    ASSERT_TRUE(s.ok()) << s;
  } else {
    DeviceNamedTensors into = {{"x", {buffer->data(), DType::kFloat32, {128, 9}, Layout::kPlain}}};
    absl::Status s = self_->RecvDevice(0, 1, &into, kTimeout, &*event);
    ASSERT_TRUE(s.ok()) << s;
    Tensor host(DType::kFloat32, {128, 9});
    ASSERT_TRUE(compute->WaitEvent(*event).ok());
    ASSERT_TRUE(CopyDeviceToHostAsync(host.raw_data(), buffer->data(), bytes, *compute).ok());
    ASSERT_TRUE(compute->Synchronize().ok());
    EXPECT_TRUE(BitwiseEqual(host, expected));
  }
}

// Every rank sends a distinct pattern to every higher rank in one grouped send, after receiving
// from every lower rank in one grouped receive: fan-out and fan-in groups like a pipeline's skip
// tensors, which only complete if NCCL progresses a group's transfers to different peers
// independently (rank 0's group to 1..N-1 finishes only after rank 1 has received and sent on).
TEST_F(NcclRanksTest, GroupedDeviceTransfersFanOutAndIn) {
  constexpr int64_t kElements = 3000;  // 12 KB per tensor
  std::vector<DeviceBuffer> buffers;
  auto device_buffer = [&]() -> void* {
    absl::StatusOr<DeviceBuffer> b = DeviceBuffer::Allocate(kElements * 4, device_);
    EXPECT_TRUE(b.ok()) << b.status();
    if (!b.ok()) return nullptr;
    buffers.push_back(*std::move(b));
    return buffers.back().data();
  };
  absl::StatusOr<CudaStream> stream = CudaStream::Create(device_);
  ASSERT_TRUE(stream.ok()) << stream.status();
  const MicroBatchId mb = 7;
  std::vector<DevicePeerTransfer> receives;
  for (int p = 0; p < rank(); ++p) {
    DevicePeerTransfer t;
    t.peer = p;
    // Two tensors per peer, listed out of wire order.
    t.tensors = {{"second", {device_buffer(), DType::kFloat32, {kElements}, Layout::kPlain}},
                 {"first", {device_buffer(), DType::kFloat32, {kElements}, Layout::kPlain}}};
    receives.push_back(std::move(t));
  }
  absl::Status received = self_->RecvDeviceGroup(receives, mb, kTimeout);
  ASSERT_TRUE(received.ok()) << received;
  for (const DevicePeerTransfer& t : receives) {
    for (const auto& [name, ref] : t.tensors) {
      Tensor host(DType::kFloat32, {kElements});
      ASSERT_TRUE(CopyDeviceToHostAsync(host.raw_data(), ref.data, ref.bytes(), *stream).ok());
      ASSERT_TRUE(stream->Synchronize().ok());
      // Sender p's tensor "first" for this rank carries source 100 * p + rank, "second" + 50.
      const int src = 100 * t.peer + rank() + (name == "second" ? 50 : 0);
      ExpectPattern(host, src, mb);
    }
  }
  std::vector<DevicePeerTransfer> sends;
  for (int q = size() - 1; q > rank(); --q) {  // peers listed descending on purpose
    DevicePeerTransfer t;
    t.peer = q;
    for (const char* name : {"first", "second"}) {
      const int src = 100 * rank() + q + (std::string(name) == "second" ? 50 : 0);
      const Tensor pattern = PatternTensor({kElements}, src, mb);
      void* data = device_buffer();
      ASSERT_TRUE(CopyHostToDeviceAsync(data, pattern.raw_data(), pattern.bytes(), *stream).ok());
      t.tensors.emplace_back(name,
                             DeviceTensorRef{data, DType::kFloat32, {kElements}, Layout::kPlain});
    }
    sends.push_back(std::move(t));
  }
  ASSERT_TRUE(stream->Synchronize().ok());
  absl::Status sent = self_->SendDeviceGroup(sends, mb, kTimeout);
  ASSERT_TRUE(sent.ok()) << sent;
  EXPECT_EQ(self_->bytes_received(), rank() * 2 * kElements * 4);
  EXPECT_EQ(self_->bytes_sent(), (size() - 1 - rank()) * 2 * kElements * 4);
}

TEST_F(NcclRanksTest, MismatchKeepsTheMessage) {
  if (rank() > 1) return;
  if (rank() == 0) {
    TensorGroup g;
    g.microbatch = 5;
    g.tensors = {{"t", PatternTensor({2, 3}, 0, 5)}};
    absl::Status s = self_->Send(g, 1, kTimeout);
    ASSERT_TRUE(s.ok()) << s;
  } else {
    NamedTensors wrong = {{"t", Tensor(DType::kFloat32, {3, 2})}};
    absl::Status s = self_->Recv(0, 5, &wrong, kTimeout);
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
    EXPECT_NE(std::string(s.message()).find("'t'"), std::string::npos) << s;
    NamedTensors right = {{"t", Tensor(DType::kFloat32, {2, 3})}};
    s = self_->Recv(0, 5, &right, kTimeout);
    ASSERT_TRUE(s.ok()) << s;
    ExpectPattern(right[0].second, 0, 5);
  }
}

// Last: it aborts rank 1's communicator (each test has its own fabric anyway).
TEST_F(NcclRanksTest, DeadlineNamesPeerAndMicroBatchThenAborted) {
  if (rank() != 1) return;
  NamedTensors into = {{"t", Tensor(DType::kFloat32, {4})}};
  absl::Status s = self_->Recv(0, 9, &into, absl::Milliseconds(500));  // rank 0 sends nothing
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_NE(std::string(s.message()).find("from rank 0, micro-batch 9"), std::string::npos) << s;
  TensorGroup g;
  g.tensors = {{"t", PatternTensor({4}, 1, 0)}};
  absl::Status later = self_->Send(g, 0, kTimeout);
  EXPECT_EQ(later.code(), absl::StatusCode::kAborted) << later;
}

#endif  // YOLOPIPE_NCCL_MPI_RANKS

}  // namespace
}  // namespace yolopipe

#ifdef YOLOPIPE_NCCL_MPI_RANKS
// Ranks come from mpirun (MPI), or, where no MPI is installed (the GPU machine), from a script that
// starts N copies with YOLOPIPE_BOOTSTRAP_DIR, YOLOPIPE_RANK and YOLOPIPE_WORLD_SIZE set.
int main(int argc, char** argv) {
  std::unique_ptr<yolopipe::Bootstrap> bootstrap;
  auto from_env = yolopipe::FileBootstrap::FromEnvironment(absl::Seconds(120));
  if (from_env.ok()) {
    bootstrap = std::move(*from_env);
    const char* local = std::getenv("YOLOPIPE_LOCAL_RANK");
    yolopipe::g_local_rank = local != nullptr ? std::atoi(local) : bootstrap->rank();
  } else if (from_env.status().code() != absl::StatusCode::kNotFound) {
    fprintf(stderr, "%s\n", std::string(from_env.status().message()).c_str());
    return 1;
  } else {
    auto runtime = yolopipe::MpiRuntime::Init(&argc, &argv);
    if (!runtime.ok()) {
      fprintf(stderr, "%s\n", std::string(runtime.status().message()).c_str());
      return 1;
    }
    yolopipe::g_local_rank = (*runtime)->local_rank();
    bootstrap = std::move(*runtime);
  }
  yolopipe::g_mpi = bootstrap.get();
  if (bootstrap->rank() != 0) {
    // One XML report (rank 0's); every rank's result reaches the exit code below.
    unsetenv("XML_OUTPUT_FILE");
    unsetenv("GTEST_OUTPUT");
    unsetenv("TEST_PREMATURE_EXIT_FILE");
    ::testing::GTEST_FLAG(output) = "";
  }
  ::testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  absl::StatusOr<int> worst = bootstrap->MaxOverRanks(rc);
  bootstrap.reset();  // MPI_Finalize under MPI
  return worst.ok() ? *worst : 1;
}
#endif
