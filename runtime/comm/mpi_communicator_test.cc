// Runs as 3 MPI ranks (mpi_communicator_test.sh starts it with mpirun); every test runs on every
// rank, each rank playing its part. Only rank 0 writes the test XML; a failure on any rank fails
// the test on every rank (see MpiTest::TearDown).
#include "runtime/comm/mpi_communicator.h"

#include <mpi.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/tensor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace yolopipe {
namespace {

using ::testing::HasSubstr;

MpiRuntime* g_runtime = nullptr;
constexpr absl::Duration kLong = absl::Seconds(60);  // only reached if the code under test hangs

float XValue(MicroBatchId mb, int64_t i) { return static_cast<float>(mb) * 1000.0f + i * 0.25f; }
int64_t SkipValue(MicroBatchId mb, int64_t i) { return mb * 1000003 + i * i; }

class MpiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(g_runtime->size(), 3) << "run with mpirun -np 3";
    auto c = MpiCommunicator::Create(*g_runtime);
    ASSERT_TRUE(c.ok()) << c.status();
    comm_ = std::move(*c);
    rank_ = comm_->rank();
  }
  void TearDown() override {
    int local = HasFailure() ? 1 : 0, any = 0;
    MPI_Allreduce(&local, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (any && !local) ADD_FAILURE() << "another rank failed this test";
    comm_.reset();
  }
  std::unique_ptr<MpiCommunicator> comm_;
  int rank_ = 0;
};

// 0 -> 1 -> 2 in a chain plus a skip 0 -> 2, 25 micro-batches of different dtypes, then
// end-of-stream markers; the receivers check every value (computed independently).
TEST_F(MpiTest, ChainWithSkipAndEndOfStream) {
  constexpr int kMicrobatches = 25;
  if (rank_ == 0) {
    Tensor x(DType::kFloat32, {3, 17, 5});
    Tensor skip(DType::kInt64, {2, 9});
    for (MicroBatchId mb = 0; mb < kMicrobatches; ++mb) {
      for (int64_t i = 0; i < x.num_elements(); ++i) x.data<float>()[i] = XValue(mb, i);
      for (int64_t i = 0; i < skip.num_elements(); ++i) skip.data<int64_t>()[i] = SkipValue(mb, i);
      ASSERT_TRUE(comm_->Send({mb, {{"x", x}}}, 1, kLong).ok());
      ASSERT_TRUE(comm_->Send({mb, {{"skip", skip}}}, 2, kLong).ok());
    }
    for (int peer : {1, 2}) {
      TensorGroup end;
      end.microbatch = kMicrobatches;
      end.end_of_stream = true;
      ASSERT_TRUE(comm_->Send(end, peer, kLong).ok());
    }
    EXPECT_EQ(comm_->bytes_sent(), kMicrobatches * (3 * 17 * 5 * 4 + 2 * 9 * 8));
  } else if (rank_ == 1) {
    NamedTensors in = {{"x", Tensor(DType::kFloat32, {3, 17, 5})}};
    for (MicroBatchId mb = 0; mb < kMicrobatches; ++mb) {
      ASSERT_TRUE(comm_->Recv(0, mb, &in, kLong).ok());
      const Tensor& x = in[0].second;
      for (int64_t i = 0; i < x.num_elements(); ++i) ASSERT_EQ(x.data<float>()[i], XValue(mb, i));
      Tensor y(DType::kFloat32, {3, 17, 5});
      for (int64_t i = 0; i < y.num_elements(); ++i) y.data<float>()[i] = x.data<float>()[i] + 1;
      ASSERT_TRUE(comm_->Send({mb, {{"y", y}}}, 2, kLong).ok());
    }
    absl::Status end = comm_->Recv(0, kMicrobatches, &in, kLong);
    EXPECT_EQ(end.code(), absl::StatusCode::kOutOfRange) << end;
    TensorGroup marker;
    marker.microbatch = kMicrobatches;
    marker.end_of_stream = true;
    ASSERT_TRUE(comm_->Send(marker, 2, kLong).ok());
  } else {
    NamedTensors y = {{"y", Tensor(DType::kFloat32, {3, 17, 5})}};
    NamedTensors skip = {{"skip", Tensor(DType::kInt64, {2, 9})}};
    for (MicroBatchId mb = 0; mb < kMicrobatches; ++mb) {
      ASSERT_TRUE(comm_->Recv(1, mb, &y, kLong).ok());
      ASSERT_TRUE(comm_->Recv(0, mb, &skip, kLong).ok());
      for (int64_t i = 0; i < y[0].second.num_elements(); ++i) {
        ASSERT_EQ(y[0].second.data<float>()[i], XValue(mb, i) + 1);
      }
      for (int64_t i = 0; i < skip[0].second.num_elements(); ++i) {
        ASSERT_EQ(skip[0].second.data<int64_t>()[i], SkipValue(mb, i));
      }
    }
    EXPECT_EQ(comm_->Recv(1, kMicrobatches, &y, kLong).code(), absl::StatusCode::kOutOfRange);
    EXPECT_EQ(comm_->Recv(0, kMicrobatches, &skip, kLong).code(), absl::StatusCode::kOutOfRange);
    EXPECT_EQ(comm_->bytes_received(), kMicrobatches * (3 * 17 * 5 * 4 + 2 * 9 * 8));
  }
}

// A mismatch (wrong shape, wrong name, wrong micro-batch) is refused with a message that names the
// tensor, leaves `into` untouched, and leaves the message for the next Recv.
TEST_F(MpiTest, MismatchesLeaveTheMessageQueued) {
  if (rank_ == 0) {
    ASSERT_TRUE(comm_->Send({4, {{"t", Tensor::FromFloats({2, 2}, {1, 2, 3, 4})}}}, 1, kLong).ok());
  } else if (rank_ == 1) {
    NamedTensors wrong_shape = {{"t", Tensor::FromFloats({4}, {9, 9, 9, 9})}};
    absl::Status s = comm_->Recv(0, 4, &wrong_shape, kLong);
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("tensor 't'"));
    EXPECT_EQ(wrong_shape[0].second.data<float>()[0], 9.0f);
    NamedTensors wrong_name = {{"u", Tensor(DType::kFloat32, {2, 2})}};
    EXPECT_EQ(comm_->Recv(0, 4, &wrong_name, kLong).code(), absl::StatusCode::kFailedPrecondition);
    NamedTensors right = {{"t", Tensor(DType::kFloat32, {2, 2})}};
    EXPECT_EQ(comm_->Recv(0, 5, &right, kLong).code(), absl::StatusCode::kFailedPrecondition);
    ASSERT_TRUE(comm_->Recv(0, 4, &right, kLong).ok());
    EXPECT_TRUE(BitwiseEqual(right[0].second, Tensor::FromFloats({2, 2}, {1, 2, 3, 4})));
  }
}

TEST_F(MpiTest, RecvTimesOut) {
  if (rank_ == 1) {
    NamedTensors in = {{"t", Tensor(DType::kFloat32, {1})}};
    const absl::Time start = absl::Now();
    absl::Status s = comm_->Recv(2, 0, &in, absl::Milliseconds(100));
    EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("from rank 2"));
    EXPECT_GE(absl::Now() - start, absl::Milliseconds(100));
  }
}

// Rank 2 aborts; ranks 0 and 1, blocked receiving from each other (nothing is ever sent), wake
// with rank 2's reason, and later calls fail the same way at once.
TEST_F(MpiTest, AbortOnOneRankWakesTheOthers) {
  if (rank_ == 2) {
    comm_->Abort(absl::InternalError("stage 2 failed on micro-batch 7: boom"));
    EXPECT_EQ(comm_->Send({0, {}}, 0, kLong).code(), absl::StatusCode::kAborted);
  } else {
    NamedTensors in = {{"t", Tensor(DType::kFloat32, {1})}};
    absl::Status s = comm_->Recv(1 - rank_, 0, &in, kLong);
    EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("rank 2: INTERNAL: stage 2 failed on micro-batch 7: boom"));
    EXPECT_EQ(comm_->Send({0, {}}, 1 - rank_, kLong).code(), absl::StatusCode::kAborted);
  }
}

TEST_F(MpiTest, RejectsBadArguments) {
  Tensor t = Tensor::ScalarInt64(1);
  EXPECT_EQ(comm_->Send({0, {{"t", t}}}, rank_, kLong).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(comm_->Send({0, {{"t", t}}}, 3, kLong).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(comm_->Send({0, {{"t", t}, {"t", t}}}, (rank_ + 1) % 3, kLong).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(comm_->Send({0, {{"t", Tensor()}}}, (rank_ + 1) % 3, kLong).code(),
            absl::StatusCode::kInvalidArgument);
  TensorGroup end;
  end.end_of_stream = true;
  end.tensors.emplace_back("t", t);
  EXPECT_EQ(comm_->Send(end, (rank_ + 1) % 3, kLong).code(), absl::StatusCode::kInvalidArgument);
  NamedTensors in = {{"t", t}};
  EXPECT_EQ(comm_->Recv(-1, 0, &in, kLong).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(comm_->Recv((rank_ + 1) % 3, 0, nullptr, kLong).code(),
            absl::StatusCode::kInvalidArgument);
}

// A fabric of 4 endpoints on 3 ranks: endpoint e on rank e, and endpoint 3 (a pipeline's host) on
// rank 0 beside endpoint 0. The host feeds endpoint 0 (same process, still MPI) and endpoint 2,
// 0 -> 1, and 1 and 2 report back to the host. Each endpoint runs on its own thread.
TEST_F(MpiTest, FabricWithTwoEndpointsOnOneRank) {
  auto fabric = MpiFabric::Create(*g_runtime, {0, 1, 2, 0});
  ASSERT_TRUE(fabric.ok()) << fabric.status();
  MpiFabric& f = **fabric;
  EXPECT_EQ(f.size(), 4);
  for (int e = 0; e < 4; ++e) {
    EXPECT_EQ(f.endpoint(e) != nullptr, f.world_rank_of(e) == rank_) << "endpoint " << e;
  }
  constexpr int kMicrobatches = 6;
  auto value = [](int from, MicroBatchId mb) { return static_cast<float>(from * 100 + mb); };
  auto one = [](float v) { return Tensor::FromFloats({1}, {v}); };
  auto expect = [&](Communicator* c, int from, MicroBatchId mb, float v) {
    NamedTensors in = {{"v", Tensor(DType::kFloat32, {1})}};
    ASSERT_TRUE(c->Recv(from, mb, &in, kLong).ok()) << "from " << from << " mb " << mb;
    EXPECT_EQ(in[0].second.data<float>()[0], v);
  };
  std::vector<std::thread> threads;
  if (rank_ == 0) {
    threads.emplace_back([&] {  // the host
      Communicator* host = f.endpoint(3);
      for (MicroBatchId mb = 0; mb < kMicrobatches; ++mb) {
        ASSERT_TRUE(host->Send({mb, {{"v", one(value(3, mb))}}}, 0, kLong).ok());
        ASSERT_TRUE(host->Send({mb, {{"v", one(value(3, mb) + 0.5f)}}}, 2, kLong).ok());
      }
      for (MicroBatchId mb = 0; mb < kMicrobatches; ++mb) {
        expect(host, 1, mb, value(3, mb) + 1);
        expect(host, 2, mb, value(3, mb) + 0.5f + 2);
      }
    });
    threads.emplace_back([&] {  // endpoint 0: +1, to endpoint 1
      Communicator* c = f.endpoint(0);
      for (MicroBatchId mb = 0; mb < kMicrobatches; ++mb) {
        NamedTensors in = {{"v", Tensor(DType::kFloat32, {1})}};
        ASSERT_TRUE(c->Recv(3, mb, &in, kLong).ok());
        ASSERT_TRUE(c->Send({mb, {{"v", one(in[0].second.data<float>()[0] + 1)}}}, 1, kLong).ok());
      }
    });
  } else if (rank_ == 1) {  // forwards to the host
    Communicator* c = f.endpoint(1);
    for (MicroBatchId mb = 0; mb < kMicrobatches; ++mb) {
      NamedTensors in = {{"v", Tensor(DType::kFloat32, {1})}};
      ASSERT_TRUE(c->Recv(0, mb, &in, kLong).ok());
      ASSERT_TRUE(c->Send({mb, {{"v", in[0].second}}}, 3, kLong).ok());
    }
  } else {  // +2, back to the host
    Communicator* c = f.endpoint(2);
    for (MicroBatchId mb = 0; mb < kMicrobatches; ++mb) {
      NamedTensors in = {{"v", Tensor(DType::kFloat32, {1})}};
      ASSERT_TRUE(c->Recv(3, mb, &in, kLong).ok());
      ASSERT_TRUE(c->Send({mb, {{"v", one(in[0].second.data<float>()[0] + 2)}}}, 3, kLong).ok());
    }
  }
  for (std::thread& t : threads) t.join();
}

TEST_F(MpiTest, FabricRejectsBadMaps) {
  EXPECT_EQ(MpiFabric::Create(*g_runtime, {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MpiFabric::Create(*g_runtime, {0, 3}).status().code(),
            absl::StatusCode::kInvalidArgument);  // the job has ranks 0..2
}

}  // namespace
}  // namespace yolopipe

int main(int argc, char** argv) {
  auto runtime = yolopipe::MpiRuntime::Init(&argc, &argv);
  if (!runtime.ok()) {
    fprintf(stderr, "%s\n", std::string(runtime.status().message()).c_str());
    return 1;
  }
  yolopipe::g_runtime = runtime->get();
  if ((*runtime)->rank() != 0) {
    // One XML report (rank 0's); the others' failures reach it through MpiTest::TearDown.
    unsetenv("XML_OUTPUT_FILE");
    unsetenv("GTEST_OUTPUT");
    unsetenv("TEST_PREMATURE_EXIT_FILE");
    ::testing::GTEST_FLAG(output) = "";
  }
  ::testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  int worst = 0;
  MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  runtime->reset();  // MPI_Finalize
  return worst;
}
