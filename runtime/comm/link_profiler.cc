#include "runtime/comm/link_profiler.h"

#include <algorithm>
#include <chrono>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace yolopipe {
namespace {

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

absl::Status ValidateLinkProfileOptions(const LinkProfileOptions& options) {
  if (options.sizes.empty()) return absl::InvalidArgumentError("no message sizes");
  for (size_t i = 0; i < options.sizes.size(); ++i) {
    const int64_t b = options.sizes[i];
    if (b < 4 || b % 4 != 0 || b > (int64_t{1} << 31)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "message sizes must be multiples of 4 bytes from 4 to 2 GiB, got ", b));
    }
    if (i > 0 && b <= options.sizes[i - 1]) {
      return absl::InvalidArgumentError("message sizes must be strictly increasing");
    }
  }
  if (options.repeats < 1) {
    return absl::InvalidArgumentError(absl::StrCat("repeats must be >= 1, got ", options.repeats));
  }
  if (options.warmup < 0) {
    return absl::InvalidArgumentError(absl::StrCat("warmup must be >= 0, got ", options.warmup));
  }
  return absl::OkStatus();
}

namespace {

// LinkEndpoint over host tensors and any Communicator.
class CommunicatorEndpoint final : public LinkEndpoint {
 public:
  CommunicatorEndpoint(Communicator& comm, int peer) : comm_(comm), peer_(peer) {}

  absl::Status Prepare(int64_t bytes, bool initiator) override {
    const Shape shape = {bytes / 4};
    in_ = {{"ping", Tensor(DType::kFloat32, shape)}};
    out_ = Tensor(DType::kFloat32, shape);
    initiator_ = initiator;
    if (initiator) {
      for (int64_t i = 0; i < shape[0]; ++i) out_.data<float>()[i] = static_cast<float>(i % 251);
    }
    return absl::OkStatus();
  }
  absl::Status Send(MicroBatchId id, absl::Duration timeout) override {
    return comm_.Send({id, {{"ping", initiator_ ? out_ : in_[0].second}}}, peer_, timeout);
  }
  absl::Status Recv(MicroBatchId id, absl::Duration timeout) override {
    return comm_.Recv(peer_, id, &in_, timeout);
  }
  absl::StatusOr<std::vector<float>> Received(const std::vector<int64_t>& indices) override {
    std::vector<float> values;
    for (int64_t i : indices) values.push_back(in_[0].second.data<float>()[i]);
    return values;
  }

 private:
  Communicator& comm_;
  const int peer_;
  NamedTensors in_;
  Tensor out_;
  bool initiator_ = false;
};

}  // namespace

absl::StatusOr<proto::LinkProfile> ProfileLink(LinkEndpoint& endpoint, bool initiator,
                                               const LinkProfileOptions& options) {
  if (absl::Status s = ValidateLinkProfileOptions(options); !s.ok()) return s;
  proto::LinkProfile profile;
  profile.set_repeats(options.repeats);
  profile.set_warmup(options.warmup);
  profile.set_created_by("yolopipe profile-link");
  MicroBatchId id = 0;  // increasing per direction, as Communicator requires
  for (int64_t bytes : options.sizes) {
    if (absl::Status s = endpoint.Prepare(bytes, initiator); !s.ok()) return s;
    std::vector<double> one_way_us;
    for (int r = 0; r < options.warmup + options.repeats; ++r, ++id) {
      const auto start = std::chrono::steady_clock::now();
      if (initiator) {
        if (absl::Status s = endpoint.Send(id, options.timeout); !s.ok()) return s;
        if (absl::Status s = endpoint.Recv(id, options.timeout); !s.ok()) return s;
      } else {
        if (absl::Status s = endpoint.Recv(id, options.timeout); !s.ok()) return s;
        if (absl::Status s = endpoint.Send(id, options.timeout); !s.ok()) return s;
      }
      const double us =
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
              .count();
      if (r >= options.warmup) one_way_us.push_back(us / 2);
    }
    if (!initiator) continue;
    // The echo must be what was sent: a transport that garbles data has no business being fast.
    const int64_t elements = bytes / 4;
    std::vector<int64_t> indices;
    for (int64_t i = 0; i < elements; i += std::max<int64_t>(1, elements / 64)) {
      indices.push_back(i);
    }
    indices.push_back(elements - 1);
    absl::StatusOr<std::vector<float>> echo = endpoint.Received(indices);
    if (!echo.ok()) return echo.status();
    for (size_t k = 0; k < indices.size(); ++k) {
      if ((*echo)[k] != static_cast<float>(indices[k] % 251)) {
        return absl::DataLossError(absl::StrCat("the echo of a ", bytes,
                                                "-byte message differs at element ", indices[k]));
      }
    }
    proto::LinkPoint* p = profile.add_points();
    p->set_bytes(bytes);
    p->set_min_us(*std::min_element(one_way_us.begin(), one_way_us.end()));
    p->set_median_us(Median(one_way_us));
    p->set_gbps(p->median_us() > 0 ? bytes / (p->median_us() * 1e3) : 0.0);
    if (options.progress) {
      options.progress(absl::StrFormat("%d bytes: %.1f us one way (median), %.2f GB/s", bytes,
                                       p->median_us(), p->gbps()));
    }
  }
  if (initiator && profile.points_size() >= 2) {
    if (absl::Status s = FitLink(profile); !s.ok()) return s;
  }
  return profile;
}

absl::StatusOr<proto::LinkProfile> ProfileLink(Communicator& comm, int peer, bool initiator,
                                               const LinkProfileOptions& options) {
  CommunicatorEndpoint endpoint(comm, peer);
  return ProfileLink(endpoint, initiator, options);
}

absl::Status FitLink(proto::LinkProfile& profile) {
  std::set<int64_t> distinct;
  for (const proto::LinkPoint& p : profile.points()) distinct.insert(p.bytes());
  if (distinct.size() < 2) {
    return absl::InvalidArgumentError("fitting a link needs at least 2 distinct message sizes");
  }
  // time_us = a + b * bytes, b = 1 / (GB/s * 1e3).
  double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const proto::LinkPoint& p : profile.points()) {
    const double x = static_cast<double>(p.bytes()), y = p.median_us();
    n += 1;
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  double b = (n * sxy - sx * sy) / (n * sxx - sx * sx);
  double a = (sy - b * sx) / n;
  if (a < 0) {  // through the origin
    a = 0;
    b = sxy / sxx;
  }
  if (b > 0) {
    profile.set_latency_us(a);
    profile.set_bandwidth_gbps(1.0 / (b * 1e3));
    profile.clear_fit();
    return absl::OkStatus();
  }
  // No positive slope. Price transfers no cheaper than the ends of the measurement: the smallest
  // message's median time as latency, and the largest message's throughput as bandwidth (its time
  // includes latency, so this is a lower bound on the bandwidth).
  const proto::LinkPoint* smallest = &profile.points(0);
  const proto::LinkPoint* largest = &profile.points(0);
  for (const proto::LinkPoint& p : profile.points()) {
    if (p.bytes() < smallest->bytes()) smallest = &p;
    if (p.bytes() > largest->bytes()) largest = &p;
  }
  if (!(largest->median_us() > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the ", largest->bytes(), "-byte message was measured at no time; no bandwidth can be "
        "fitted"));
  }
  profile.set_latency_us(std::max(0.0, smallest->median_us()));
  profile.set_bandwidth_gbps(static_cast<double>(largest->bytes()) / (largest->median_us() * 1e3));
  profile.set_fit(absl::StrCat(
      "fallback: the measured times do not grow with the message size (a busy machine, or sizes "
      "too small for the bandwidth to show), so latency is the ", smallest->bytes(),
      "-byte message's median time and bandwidth the ", largest->bytes(),
      "-byte message's throughput; measure again with more --repeats, larger --sizes or an idle "
      "machine for a fitted line"));
  return absl::OkStatus();
}

}  // namespace yolopipe
