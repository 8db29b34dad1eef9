#include "runtime/comm/local_communicator.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "base/tensor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace yolopipe {
namespace {

using ::testing::HasSubstr;

constexpr absl::Duration kShort = absl::Milliseconds(50);
constexpr absl::Duration kLong = absl::Seconds(60);  // only reached if the code under test hangs

std::unique_ptr<LocalFabric> MakeFabric(int n, int capacity = LocalFabric::kDefaultCapacity) {
  auto fabric = LocalFabric::Create(n, capacity);
  EXPECT_TRUE(fabric.ok()) << fabric.status();
  return std::move(fabric).value();
}

// Deterministic, micro-batch-specific contents, computed independently of the code under test.
float XValue(MicroBatchId mb, int64_t i) { return static_cast<float>(mb) * 1000.0f + i * 0.25f; }
int64_t IdValue(MicroBatchId mb, int64_t i) { return -mb * 7 + i; }
float YValue(MicroBatchId mb, int64_t i) { return XValue(mb, i) + 1.0f; }
int64_t SkipValue(MicroBatchId mb, int64_t i) { return mb * 1000003 + i * i; }

void FillX(Tensor& t, MicroBatchId mb) {
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = XValue(mb, i);
}
void FillIds(Tensor& t, MicroBatchId mb) {
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<int64_t>()[i] = IdValue(mb, i);
}
void FillSkip(Tensor& t, MicroBatchId mb) {
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<int64_t>()[i] = SkipValue(mb, i);
}
void Scribble(Tensor& t) { std::memset(t.raw_data(), 0xAB, t.bytes()); }

TEST(LocalFabricTest, CreateRejectsBadArguments) {
  EXPECT_EQ(LocalFabric::Create(0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LocalFabric::Create(-3).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LocalFabric::Create(2, -1).status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(LocalFabric::Create(2, LocalFabric::kRendezvous).ok());
  auto fabric = LocalFabric::Create(3, 4);
  ASSERT_TRUE(fabric.ok());
  EXPECT_EQ((*fabric)->size(), 3);
  EXPECT_EQ((*fabric)->capacity(), 4);
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ((*fabric)->endpoint(r)->rank(), r);
    EXPECT_EQ((*fabric)->endpoint(r)->size(), 3);
  }
}

// Three stages in threads: 0 -> 1 -> 2 in a chain plus a skip message 0 -> 2 every micro-batch.
// The senders reuse (and scribble over) their buffers right after each Send.
TEST(LocalCommunicatorTest, ChainWithSkipDeliversExactCopies) {
  constexpr int kMicroBatches = 100;
  const Shape x_shape = {1, 2, 3, 4};  // sent channels-last, to check the layout travels
  const Shape id_shape = {5};
  const Shape skip_shape = {3, 2};
  auto fabric = MakeFabric(3);
  Communicator* c0 = fabric->endpoint(0);
  Communicator* c1 = fabric->endpoint(1);
  Communicator* c2 = fabric->endpoint(2);

  absl::Status s0, s1;
  std::thread stage0([&] {
    Tensor x(DType::kFloat32, x_shape, Layout::kNHWC);
    Tensor ids(DType::kInt64, id_shape);
    Tensor skip(DType::kInt64, skip_shape);
    for (MicroBatchId mb = 0; mb < kMicroBatches && s0.ok(); ++mb) {
      FillX(x, mb);
      FillIds(ids, mb);
      FillSkip(skip, mb);
      s0 = c0->Send(TensorGroup{mb, {{"x", x}, {"ids", ids}}}, 1, kLong);
      if (s0.ok()) s0 = c0->Send(TensorGroup{mb, {{"skip", skip}}}, 2, kLong);
      Scribble(x);
      Scribble(ids);
      Scribble(skip);
    }
  });
  std::thread stage1([&] {
    // Received in the opposite order from the send order: matching is by name.
    NamedTensors in = {{"ids", Tensor(DType::kInt64, id_shape)},
                       {"x", Tensor(DType::kFloat32, x_shape, Layout::kNHWC)}};
    Tensor y(DType::kFloat32, x_shape, Layout::kNHWC);
    for (MicroBatchId mb = 0; mb < kMicroBatches && s1.ok(); ++mb) {
      s1 = c1->Recv(0, mb, &in, kLong);
      if (!s1.ok()) break;
      const Tensor& x = in[1].second;
      for (int64_t i = 0; i < x.num_elements(); ++i) y.data<float>()[i] = x.data<float>()[i] + 1;
      s1 = c1->Send(TensorGroup{mb, {{"y", y}}}, 2, kLong);
      Scribble(y);
    }
  });

  NamedTensors from1 = {{"y", Tensor(DType::kFloat32, x_shape, Layout::kNHWC)}};
  NamedTensors from0 = {{"skip", Tensor(DType::kInt64, skip_shape)}};
  Tensor expected_y(DType::kFloat32, x_shape, Layout::kNHWC);
  Tensor expected_skip(DType::kInt64, skip_shape);
  int exact = 0;
  for (MicroBatchId mb = 0; mb < kMicroBatches; ++mb) {
    absl::Status s = c2->Recv(1, mb, &from1, kLong);
    ASSERT_TRUE(s.ok()) << s;
    s = c2->Recv(0, mb, &from0, kLong);
    ASSERT_TRUE(s.ok()) << s;
    for (int64_t i = 0; i < expected_y.num_elements(); ++i) {
      expected_y.data<float>()[i] = YValue(mb, i);
    }
    FillSkip(expected_skip, mb);
    EXPECT_TRUE(BitwiseEqual(from1[0].second, expected_y)) << "micro-batch " << mb;
    EXPECT_TRUE(BitwiseEqual(from0[0].second, expected_skip)) << "micro-batch " << mb;
    exact +=
        BitwiseEqual(from1[0].second, expected_y) && BitwiseEqual(from0[0].second, expected_skip);
  }
  stage0.join();
  stage1.join();
  EXPECT_TRUE(s0.ok()) << s0;
  EXPECT_TRUE(s1.ok()) << s1;
  EXPECT_EQ(exact, kMicroBatches);

  // Byte counters, from the shapes: x 24 floats, ids 5 int64, skip 6 int64, y 24 floats.
  const int64_t x_bytes = 24 * 4, id_bytes = 5 * 8, skip_bytes = 6 * 8, y_bytes = 24 * 4;
  EXPECT_EQ(c0->bytes_sent(), kMicroBatches * (x_bytes + id_bytes + skip_bytes));
  EXPECT_EQ(c0->bytes_received(), 0);
  EXPECT_EQ(c1->bytes_received(), kMicroBatches * (x_bytes + id_bytes));
  EXPECT_EQ(c1->bytes_sent(), kMicroBatches * y_bytes);
  EXPECT_EQ(c2->bytes_received(), kMicroBatches * (y_bytes + skip_bytes));
  EXPECT_EQ(c2->bytes_sent(), 0);
}

TEST(LocalCommunicatorTest, ReceiverGetsItsOwnCopyNotTheSendersBuffer) {
  auto fabric = MakeFabric(2);
  Tensor x = Tensor::FromFloats({2, 2}, {1, 2, 3, 4});
  ASSERT_TRUE(fabric->endpoint(0)->Send({7, {{"x", x}}}, 1, kShort).ok());
  x.data<float>()[0] = 100;  // after Send returned: must not reach the receiver
  ASSERT_TRUE(fabric->endpoint(0)->Send({8, {{"x", x}}}, 1, kShort).ok());

  NamedTensors into = {{"x", Tensor(DType::kFloat32, {2, 2})}};
  const void* receiver_buffer = into[0].second.raw_data();
  ASSERT_TRUE(fabric->endpoint(1)->Recv(0, 7, &into, kShort).ok());
  EXPECT_EQ(into[0].second.raw_data(), receiver_buffer);  // written in place, not replaced
  EXPECT_TRUE(BitwiseEqual(into[0].second, Tensor::FromFloats({2, 2}, {1, 2, 3, 4})));
  // Writing the received tensor does not touch the sender's either.
  into[0].second.data<float>()[1] = -5;
  EXPECT_EQ(x.data<float>()[1], 2);

  ASSERT_TRUE(fabric->endpoint(1)->Recv(0, 8, &into, kShort).ok());
  EXPECT_TRUE(BitwiseEqual(into[0].second, Tensor::FromFloats({2, 2}, {100, 2, 3, 4})));
}

TEST(LocalCommunicatorTest, EmptyGroupIsAMessage) {
  auto fabric = MakeFabric(2);
  ASSERT_TRUE(fabric->endpoint(1)->Send({3, {}}, 0, kShort).ok());
  NamedTensors none;
  EXPECT_TRUE(fabric->endpoint(0)->Recv(1, 3, &none, kShort).ok());
  EXPECT_EQ(fabric->endpoint(0)->Recv(1, 4, &none, kShort).code(),
            absl::StatusCode::kDeadlineExceeded);
}

// Each mismatch is rejected with a message naming the tensor, what was expected and what arrived;
// the message stays queued and the receiver's tensors are untouched.
TEST(LocalCommunicatorTest, MismatchesAreRejectedAndLeaveTheMessageQueued) {
  auto fabric = MakeFabric(2);
  Communicator* rx = fabric->endpoint(1);
  ASSERT_TRUE(fabric->endpoint(0)
                  ->Send({4, {{"feat", Tensor::FromFloats({2, 3}, {1, 2, 3, 4, 5, 6})}}}, 1, kShort)
                  .ok());

  struct Case {
    const char* what;
    NamedTensors into;
    std::vector<std::string> substrings;
  };
  std::vector<Case> cases;
  cases.push_back({"shape",
                   {{"feat", Tensor(DType::kFloat32, {3, 2})}},
                   {"'feat'", "expected float32(3, 2)", "got float32(2, 3)"}});
  cases.push_back({"dtype",
                   {{"feat", Tensor(DType::kInt64, {2, 3})}},
                   {"'feat'", "expected int64(2, 3)", "got float32(2, 3)"}});
  cases.push_back({"missing",
                   {{"other", Tensor(DType::kFloat32, {2, 3})}},
                   {"'other'", "expected but not sent"}});
  cases.push_back({"unexpected", {}, {"'feat'", "sent but not expected"}});
  cases.push_back(
      {"extra",
       {{"feat", Tensor(DType::kFloat32, {2, 3})}, {"more", Tensor(DType::kFloat32, {1})}},
       {"'more'", "expected but not sent"}});
  for (Case& c : cases) {
    absl::Status s = rx->Recv(0, 4, &c.into, kShort);
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << c.what << ": " << s;
    EXPECT_THAT(s.message(), HasSubstr("micro-batch 4")) << c.what;
    for (const std::string& sub : c.substrings) {
      EXPECT_THAT(s.message(), HasSubstr(sub)) << c.what;
    }
    for (const auto& [name, t] : c.into) {
      for (int64_t i = 0; i < t.num_elements(); ++i) {
        EXPECT_EQ(t.GetAsDouble(i), 0.0) << c.what << " wrote into '" << name << "'";
      }
    }
  }
  // Layout: same logical shape, other physical order.
  ASSERT_TRUE(
      fabric->endpoint(0)
          ->Send({5, {{"act", Tensor(DType::kFloat32, {1, 2, 2, 2}, Layout::kNHWC)}}}, 1, kShort)
          .ok());

  // Still queued: the right request succeeds, in order.
  NamedTensors ok = {{"feat", Tensor(DType::kFloat32, {2, 3})}};
  ASSERT_TRUE(rx->Recv(0, 4, &ok, kShort).ok());
  EXPECT_TRUE(BitwiseEqual(ok[0].second, Tensor::FromFloats({2, 3}, {1, 2, 3, 4, 5, 6})));

  NamedTensors plain = {{"act", Tensor(DType::kFloat32, {1, 2, 2, 2})}};
  absl::Status s = rx->Recv(0, 5, &plain, kShort);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(s.message(), HasSubstr("nhwc"));
  NamedTensors nhwc = {{"act", Tensor(DType::kFloat32, {1, 2, 2, 2}, Layout::kNHWC)}};
  EXPECT_TRUE(rx->Recv(0, 5, &nhwc, kShort).ok());
}

TEST(LocalCommunicatorTest, OutOfOrderMicroBatchIsAnError) {
  auto fabric = MakeFabric(2);
  ASSERT_TRUE(fabric->endpoint(0)->Send({0, {{"t", Tensor::ScalarInt64(10)}}}, 1, kShort).ok());
  ASSERT_TRUE(fabric->endpoint(0)->Send({1, {{"t", Tensor::ScalarInt64(11)}}}, 1, kShort).ok());
  NamedTensors into = {{"t", Tensor(DType::kInt64, {})}};
  absl::Status s = fabric->endpoint(1)->Recv(0, 1, &into, kShort);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(s.message(), HasSubstr("is for micro-batch 0"));
  EXPECT_EQ(into[0].second.GetAsInt64(0), 0);
  ASSERT_TRUE(fabric->endpoint(1)->Recv(0, 0, &into, kShort).ok());
  EXPECT_EQ(into[0].second.GetAsInt64(0), 10);
  ASSERT_TRUE(fabric->endpoint(1)->Recv(0, 1, &into, kShort).ok());
  EXPECT_EQ(into[0].second.GetAsInt64(0), 11);
}

TEST(LocalCommunicatorTest, RecvTimesOut) {
  auto fabric = MakeFabric(3);
  NamedTensors into = {{"t", Tensor(DType::kFloat32, {1})}};
  absl::Status s = fabric->endpoint(2)->Recv(0, 5, &into, kShort);
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_THAT(s.message(), HasSubstr("from rank 0"));
  EXPECT_THAT(s.message(), HasSubstr("micro-batch 5"));
  // A message on another pair does not satisfy it.
  ASSERT_TRUE(
      fabric->endpoint(1)->Send({5, {{"t", Tensor(DType::kFloat32, {1})}}}, 2, kShort).ok());
  EXPECT_EQ(fabric->endpoint(2)->Recv(0, 5, &into, kShort).code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(fabric->endpoint(2)->Recv(1, 5, &into, kShort).ok());
}

TEST(LocalCommunicatorTest, SendBlocksOnAFullChannelAndTimesOut) {
  auto fabric = MakeFabric(2, /*capacity=*/2);
  Communicator* tx = fabric->endpoint(0);
  auto group = [](MicroBatchId mb) {
    return TensorGroup{mb, {{"t", Tensor::ScalarInt64(100 + mb)}}};
  };
  ASSERT_TRUE(tx->Send(group(0), 1, kShort).ok());
  ASSERT_TRUE(tx->Send(group(1), 1, kShort).ok());
  absl::Status s = tx->Send(group(2), 1, kShort);
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_THAT(s.message(), HasSubstr("to rank 1"));
  EXPECT_THAT(s.message(), HasSubstr("micro-batch 2"));
  EXPECT_EQ(tx->bytes_sent(), 2 * 8);  // the timed-out message is not counted
  // The other direction is an independent channel.
  EXPECT_TRUE(fabric->endpoint(1)->Send(group(0), 0, kShort).ok());

  // Receiving frees a slot; the timed-out message was never queued.
  NamedTensors into = {{"t", Tensor(DType::kInt64, {})}};
  ASSERT_TRUE(fabric->endpoint(1)->Recv(0, 0, &into, kShort).ok());
  ASSERT_TRUE(tx->Send(group(3), 1, kShort).ok());
  ASSERT_TRUE(fabric->endpoint(1)->Recv(0, 1, &into, kShort).ok());
  EXPECT_EQ(into[0].second.GetAsInt64(0), 101);
  ASSERT_TRUE(fabric->endpoint(1)->Recv(0, 3, &into, kShort).ok());
  EXPECT_EQ(into[0].second.GetAsInt64(0), 103);
}

// A Recv blocked with no deadline is woken by an Abort from another endpoint. The notification only
// says the receiver is about to block; if the Abort lands first, Recv must fail the same way.
TEST(LocalCommunicatorTest, AbortWakesABlockedRecv) {
  auto fabric = MakeFabric(3);
  absl::Notification about_to_block;
  absl::Status recv_status;
  std::thread receiver([&] {
    NamedTensors into = {{"t", Tensor(DType::kFloat32, {1})}};
    about_to_block.Notify();
    recv_status = fabric->endpoint(2)->Recv(1, 7, &into, absl::InfiniteDuration());
  });
  about_to_block.WaitForNotification();
  fabric->endpoint(0)->Abort(absl::InternalError("stage 1 failed on micro-batch 7: boom"));
  receiver.join();
  EXPECT_EQ(recv_status.code(), absl::StatusCode::kAborted) << recv_status;
  EXPECT_THAT(recv_status.message(), HasSubstr("stage 1 failed on micro-batch 7: boom"));
}

TEST(LocalCommunicatorTest, AbortWakesASendBlockedOnAFullChannel) {
  auto fabric = MakeFabric(2, /*capacity=*/1);
  ASSERT_TRUE(fabric->endpoint(0)->Send({0, {{"t", Tensor::ScalarFloat(1)}}}, 1, kShort).ok());
  absl::Notification about_to_block;
  absl::Status send_status;
  std::thread sender([&] {
    about_to_block.Notify();
    send_status = fabric->endpoint(0)->Send({1, {{"t", Tensor::ScalarFloat(2)}}}, 1,
                                            absl::InfiniteDuration());
  });
  about_to_block.WaitForNotification();
  fabric->endpoint(1)->Abort(absl::UnavailableError("stage 1 lost its device"));
  sender.join();
  EXPECT_EQ(send_status.code(), absl::StatusCode::kAborted) << send_status;
  EXPECT_THAT(send_status.message(), HasSubstr("stage 1 lost its device"));
  EXPECT_EQ(fabric->endpoint(0)->bytes_sent(), 4);  // only the first message
}

TEST(LocalCommunicatorTest, AfterAbortEveryCallFailsImmediatelyWithTheFirstReason) {
  auto fabric = MakeFabric(3);
  ASSERT_TRUE(fabric->endpoint(0)->Send({0, {{"t", Tensor::ScalarFloat(1)}}}, 1, kShort).ok());
  fabric->Abort(absl::InternalError("first"));
  fabric->endpoint(2)->Abort(absl::InternalError("second"));
  EXPECT_THAT(fabric->abort_status().message(), HasSubstr("first"));
  EXPECT_THAT(fabric->abort_status().message(), ::testing::Not(HasSubstr("second")));

  NamedTensors into = {{"t", Tensor(DType::kFloat32, {})}};
  // Even a message already queued is not delivered after an abort; no deadline is needed to return.
  absl::Status s = fabric->endpoint(1)->Recv(0, 0, &into, absl::InfiniteDuration());
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(s.message(), HasSubstr("first"));
  EXPECT_EQ(into[0].second.GetAsDouble(0), 0.0);
  s = fabric->endpoint(2)->Send({0, {{"t", Tensor::ScalarFloat(1)}}}, 0, absl::InfiniteDuration());
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(s.message(), HasSubstr("first"));
}

TEST(LocalCommunicatorTest, AbortWithOkReasonStillAborts) {
  auto fabric = MakeFabric(2);
  fabric->endpoint(1)->Abort(absl::OkStatus());
  EXPECT_EQ(fabric->abort_status().code(), absl::StatusCode::kAborted);
  NamedTensors into;
  EXPECT_EQ(fabric->endpoint(0)->Recv(1, 0, &into, absl::InfiniteDuration()).code(),
            absl::StatusCode::kAborted);
}

TEST(LocalCommunicatorTest, RejectsBadPeersAndBadTensors) {
  auto fabric = MakeFabric(3);
  Communicator* c = fabric->endpoint(1);
  const TensorGroup group{0, {{"t", Tensor::ScalarFloat(1)}}};
  NamedTensors into = {{"t", Tensor(DType::kFloat32, {})}};
  for (int peer : {-1, 3, 100, 1}) {
    absl::Status s = c->Send(group, peer, kShort);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << "send to " << peer;
    EXPECT_THAT(s.message(), HasSubstr(peer == 1 ? "itself" : "out of range [0, 3)"));
    s = c->Recv(peer, 0, &into, kShort);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << "recv from " << peer;
    EXPECT_THAT(s.message(), HasSubstr(peer == 1 ? "itself" : "out of range [0, 3)"));
  }
  EXPECT_EQ(c->Recv(0, 0, nullptr, kShort).code(), absl::StatusCode::kInvalidArgument);

  absl::Status s = c->Send({0, {{"u", Tensor()}}}, 0, kShort);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'u' is undefined"));
  s = c->Send({0, {{"d", Tensor::ScalarFloat(1)}, {"d", Tensor::ScalarFloat(2)}}}, 0, kShort);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("duplicate tensor name 'd'"));
  NamedTensors undefined = {{"u", Tensor()}};
  s = c->Recv(0, 0, &undefined, kShort);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'u' is undefined"));
  // None of the rejected sends reached a channel.
  EXPECT_EQ(c->bytes_sent(), 0);
  NamedTensors any;
  EXPECT_EQ(fabric->endpoint(0)->Recv(1, 0, &any, absl::ZeroDuration()).code(),
            absl::StatusCode::kDeadlineExceeded);
}

// ---------------------------------------------------------------------------------------------
// End of stream and rendezvous (capacity 0).

TEST(LocalCommunicatorTest, EndOfStreamMarkerEndsRecvInBothModes) {
  for (int capacity : {LocalFabric::kRendezvous, 2}) {
    SCOPED_TRACE(capacity);
    auto fabric = MakeFabric(2, capacity);
    std::thread sender([&] {
      ASSERT_TRUE(fabric->endpoint(0)
                      ->Send({0, {{"t", Tensor::FromFloats({2}, {1, 2})}}}, 1, kLong)
                      .ok());
      TensorGroup end;
      end.microbatch = 1;
      end.end_of_stream = true;
      ASSERT_TRUE(fabric->endpoint(0)->Send(end, 1, kLong).ok());
    });
    NamedTensors into = {{"t", Tensor(DType::kFloat32, {2})}};
    ASSERT_TRUE(fabric->endpoint(1)->Recv(0, 0, &into, kLong).ok());
    EXPECT_TRUE(BitwiseEqual(into[0].second, Tensor::FromFloats({2}, {1, 2})));
    Scribble(into[0].second);
    // The marker ends the stream whatever id the receiver expects, and leaves `into` alone.
    absl::Status end = fabric->endpoint(1)->Recv(0, 1, &into, kLong);
    EXPECT_EQ(end.code(), absl::StatusCode::kOutOfRange) << end;
    EXPECT_THAT(end.message(), HasSubstr("end of stream from rank 0"));
    EXPECT_EQ(into[0].second.data<float>()[0], into[0].second.data<float>()[1]);  // scribbled
    sender.join();
    EXPECT_EQ(fabric->endpoint(1)->bytes_received(), 8);
  }
}

TEST(LocalCommunicatorTest, EndOfStreamMarkerWithTensorsIsRejected) {
  auto fabric = MakeFabric(2);
  TensorGroup bad;
  bad.microbatch = 0;
  bad.end_of_stream = true;
  bad.tensors.emplace_back("t", Tensor::ScalarInt64(1));
  EXPECT_EQ(fabric->endpoint(0)->Send(bad, 1, kShort).code(), absl::StatusCode::kInvalidArgument);
}

// Rendezvous: Send returns only after the receiver copied; the receiver's buffer is its own.
TEST(LocalCommunicatorTest, RendezvousSendWaitsForTheReceiverAndDeliversACopy) {
  auto fabric = MakeFabric(2, LocalFabric::kRendezvous);
  Tensor x(DType::kFloat32, {4, 5});
  FillX(x, 3);
  std::atomic<bool> sent{false};
  std::thread sender([&] {
    ASSERT_TRUE(fabric->endpoint(0)->Send({3, {{"x", x}}}, 1, kLong).ok());
    sent = true;
  });
  absl::SleepFor(kShort);
  EXPECT_FALSE(sent.load());  // nobody received yet
  NamedTensors into = {{"x", Tensor(DType::kFloat32, {4, 5})}};
  ASSERT_TRUE(fabric->endpoint(1)->Recv(0, 3, &into, kLong).ok());
  sender.join();
  EXPECT_TRUE(sent.load());
  EXPECT_NE(into[0].second.raw_data(), x.raw_data());
  Tensor expected(DType::kFloat32, {4, 5});
  FillX(expected, 3);
  Scribble(x);  // the sender may reuse its buffer now
  EXPECT_TRUE(BitwiseEqual(into[0].second, expected));
  EXPECT_EQ(fabric->endpoint(0)->bytes_sent(), 80);
  EXPECT_EQ(fabric->endpoint(1)->bytes_received(), 80);
  EXPECT_EQ(fabric->peak_queued_bytes(1), 0);  // nothing is buffered in rendezvous mode
}

TEST(LocalCommunicatorTest, RendezvousSendTimesOutAndWithdrawsTheMessage) {
  auto fabric = MakeFabric(2, LocalFabric::kRendezvous);
  absl::Status s = fabric->endpoint(0)->Send({0, {{"t", Tensor::ScalarInt64(5)}}}, 1, kShort);
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_THAT(s.message(), HasSubstr("micro-batch 0"));
  EXPECT_EQ(fabric->endpoint(0)->bytes_sent(), 0);
  // The withdrawn message is gone: the receiver times out instead of getting it.
  NamedTensors into = {{"t", Tensor(DType::kInt64, {})}};
  EXPECT_EQ(fabric->endpoint(1)->Recv(0, 0, &into, kShort).code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST(LocalCommunicatorTest, AbortWakesABlockedRendezvousSend) {
  auto fabric = MakeFabric(2, LocalFabric::kRendezvous);
  absl::Notification about_to_block;
  absl::Status send_status;
  std::thread sender([&] {
    about_to_block.Notify();
    send_status = fabric->endpoint(0)->Send({0, {{"t", Tensor::ScalarInt64(5)}}}, 1,
                                            absl::InfiniteDuration());
  });
  about_to_block.WaitForNotification();
  fabric->Abort(absl::InternalError("stage 1 failed"));
  sender.join();
  EXPECT_EQ(send_status.code(), absl::StatusCode::kAborted) << send_status;
  EXPECT_THAT(send_status.message(), HasSubstr("stage 1 failed"));
}

// Shared groups are handed over by reference in both modes: no copy, the receiver's tensors are
// replaced by the sender's.
TEST(LocalCommunicatorTest, SharedGroupsAreNotCopied) {
  for (int capacity : {LocalFabric::kRendezvous, 2}) {
    SCOPED_TRACE(capacity);
    auto fabric = MakeFabric(2, capacity);
    Tensor x(DType::kFloat32, {3, 4});
    FillX(x, 9);
    TensorGroup group{9, {{"x", x}}};
    group.shared = true;
    std::thread sender([&] { ASSERT_TRUE(fabric->endpoint(0)->Send(group, 1, kLong).ok()); });
    NamedTensors into = {{"x", Tensor(DType::kFloat32, {3, 4})}};
    const void* own = into[0].second.raw_data();
    ASSERT_TRUE(fabric->endpoint(1)->Recv(0, 9, &into, kLong).ok());
    sender.join();
    EXPECT_EQ(into[0].second.raw_data(), x.raw_data());  // the sender's bytes, not a copy
    EXPECT_NE(into[0].second.raw_data(), own);
    EXPECT_EQ(fabric->endpoint(1)->bytes_received(), 48);
    // A shared group must still match what the receiver expects.
    group.microbatch = 10;
    group.tensors[0].second = Tensor(DType::kFloat32, {2, 4});
    ASSERT_TRUE(fabric->endpoint(0)->Send(group, 1, capacity == 0 ? kShort : kLong).code() !=
                absl::StatusCode::kInvalidArgument);
    NamedTensors wrong = {{"x", Tensor(DType::kFloat32, {3, 4})}};
    if (capacity > 0) {
      EXPECT_EQ(fabric->endpoint(1)->Recv(0, 10, &wrong, kShort).code(),
                absl::StatusCode::kFailedPrecondition);
    }
  }
}

// Buffered mode records the most bytes queued towards each endpoint.
TEST(LocalCommunicatorTest, PeakQueuedBytesCountsBufferedMessages) {
  auto fabric = MakeFabric(3, 2);
  ASSERT_TRUE(fabric->endpoint(0)->Send({0, {{"a", Tensor(DType::kFloat32, {10})}}}, 2, kShort).ok());
  ASSERT_TRUE(fabric->endpoint(1)->Send({0, {{"b", Tensor(DType::kFloat32, {5})}}}, 2, kShort).ok());
  NamedTensors a = {{"a", Tensor(DType::kFloat32, {10})}};
  ASSERT_TRUE(fabric->endpoint(2)->Recv(0, 0, &a, kShort).ok());
  ASSERT_TRUE(fabric->endpoint(0)->Send({1, {{"a", Tensor(DType::kFloat32, {10})}}}, 2, kShort).ok());
  EXPECT_EQ(fabric->peak_queued_bytes(2), 60);  // 40 + 20 before the first Recv, then 20 + 40
  EXPECT_EQ(fabric->peak_queued_bytes(0), 0);
  EXPECT_EQ(fabric->peak_queued_bytes(7), 0);  // out of range: nothing
}

}  // namespace
}  // namespace yolopipe
