#include "runtime/comm/mpi_communicator.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace yolopipe {
namespace {

constexpr int64_t kMagic = 0x59504D5049;  // "YPMPI"
constexpr int64_t kMaxTensors = 4096;
constexpr int64_t kMaxRank = 16;

std::string MpiErrorString(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return absl::StrCat("MPI error ", code);
  return std::string(text, static_cast<size_t>(len));
}

absl::Status MpiStatus(int code, const char* call) {
  if (code == MPI_SUCCESS) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(call, " failed: ", MpiErrorString(code)));
}

MPI_Comm& CommOf(void* comm) { return *static_cast<MPI_Comm*>(comm); }
std::vector<MPI_Request>& RequestsOf(void* requests) {
  return *static_cast<std::vector<MPI_Request>*>(requests);
}

void AppendInt(std::string& out, int64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); }

// A bounds-checked reader over a received header.
class Reader {
 public:
  explicit Reader(const std::string& bytes) : bytes_(bytes) {}
  bool Int(int64_t* v) {
    if (bytes_.size() - pos_ < 8) return false;
    std::memcpy(v, bytes_.data() + pos_, 8);
    pos_ += 8;
    return true;
  }
  bool Text(int64_t len, std::string* out) {
    if (len < 0 || static_cast<uint64_t>(len) > bytes_.size() - pos_) return false;
    out->assign(bytes_.data() + pos_, static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return true;
  }
  bool done() const { return pos_ == bytes_.size(); }

 private:
  const std::string& bytes_;
  size_t pos_ = 0;
};

// Undefined tensors and duplicate names are caller bugs on either side.
absl::Status CheckNamedTensors(const NamedTensors& tensors, const std::string& where) {
  absl::flat_hash_set<std::string> names;
  for (const auto& [name, tensor] : tensors) {
    if (!tensor.defined()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": tensor '", name, "' is undefined (not allocated)"));
    }
    if (!names.insert(name).second) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": duplicate tensor name '", name, "'"));
    }
    if (tensor.bytes() > static_cast<size_t>(INT_MAX)) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": tensor '", name, "' has ",
                                                     tensor.bytes(),
                                                     " bytes; the MPI transport takes < 2 GiB"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// MpiRuntime

absl::StatusOr<std::unique_ptr<MpiRuntime>> MpiRuntime::Init(int* argc, char*** argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) return absl::FailedPreconditionError("MPI is already initialised");
  int provided = 0;
  if (int rc = MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided); rc != MPI_SUCCESS) {
    return MpiStatus(rc, "MPI_Init_thread");
  }
  if (provided < MPI_THREAD_SERIALIZED) {
    MPI_Finalize();
    return absl::FailedPreconditionError(absl::StrCat(
        "the MPI library provides thread level ", provided,
        "; yolopipe needs at least MPI_THREAD_SERIALIZED"));
  }
  // Errors come back as codes (turned into Status), not as a job abort.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  auto runtime = std::unique_ptr<MpiRuntime>(new MpiRuntime());
  MPI_Comm_rank(MPI_COMM_WORLD, &runtime->rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &runtime->size_);
  MPI_Comm node;
  if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, runtime->rank_, MPI_INFO_NULL,
                          &node) == MPI_SUCCESS) {
    MPI_Comm_rank(node, &runtime->local_rank_);
    MPI_Comm_free(&node);
  }
  return runtime;
}

MpiRuntime::~MpiRuntime() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

bool MpiRuntime::LaunchedByMpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "SLURM_NTASKS"}) {
    if (std::getenv(var) != nullptr) return true;
  }
  return false;
}

void MpiRuntime::AbortJob(const std::string& message, int code) {
  std::cerr << message << std::endl;
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI_Abort should not return
}

// ---------------------------------------------------------------------------------------------
// MpiCommunicator

struct MpiCommunicator::Header {
  struct Meta {
    std::string name;
    DType dtype = DType::kUndefined;
    Layout layout = Layout::kPlain;
    Shape shape;
    size_t bytes() const { return static_cast<size_t>(NumElements(shape)) * DTypeSize(dtype); }
  };
  MicroBatchId microbatch = 0;
  bool end_of_stream = false;
  std::vector<Meta> tensors;
  int64_t payload = 0;  // sum of tensor bytes

  std::string Encode() const {
    std::string out;
    AppendInt(out, kMagic);
    AppendInt(out, microbatch);
    AppendInt(out, end_of_stream ? 1 : 0);
    AppendInt(out, static_cast<int64_t>(tensors.size()));
    for (const Meta& m : tensors) {
      AppendInt(out, static_cast<int64_t>(m.dtype));
      AppendInt(out, static_cast<int64_t>(m.layout));
      AppendInt(out, static_cast<int64_t>(m.shape.size()));
      for (int64_t d : m.shape) AppendInt(out, d);
      AppendInt(out, static_cast<int64_t>(m.name.size()));
      out += m.name;
    }
    return out;
  }

  static absl::StatusOr<Header> Decode(const std::string& bytes, const std::string& where) {
    auto bad = [&](const std::string& why) {
      return absl::DataLossError(absl::StrCat(where, ": malformed message header (", why, ")"));
    };
    Reader r(bytes);
    Header h;
    int64_t magic = 0, end = 0, n = 0;
    if (!r.Int(&magic) || magic != kMagic) return bad("bad magic");
    if (!r.Int(&h.microbatch) || !r.Int(&end) || !r.Int(&n)) return bad("truncated");
    if (n < 0 || n > kMaxTensors) return bad(absl::StrCat(n, " tensors"));
    h.end_of_stream = end != 0;
    for (int64_t i = 0; i < n; ++i) {
      Meta m;
      int64_t dtype = 0, layout = 0, rank = 0, len = 0;
      if (!r.Int(&dtype) || !r.Int(&layout) || !r.Int(&rank)) return bad("truncated tensor");
      if (rank < 0 || rank > kMaxRank) return bad(absl::StrCat("rank ", rank));
      for (int64_t k = 0; k < rank; ++k) {
        int64_t d = 0;
        if (!r.Int(&d) || d < 0) return bad("bad dimension");
        m.shape.push_back(d);
      }
      if (!r.Int(&len) || !r.Text(len, &m.name)) return bad("bad name");
      m.dtype = static_cast<DType>(dtype);
      m.layout = static_cast<Layout>(layout);
      h.payload += static_cast<int64_t>(m.bytes());
      h.tensors.push_back(std::move(m));
    }
    if (!r.done()) return bad("trailing bytes");
    return h;
  }
};

absl::StatusOr<std::unique_ptr<MpiCommunicator>> MpiCommunicator::Create(
    const MpiRuntime& runtime) {
  auto c = std::unique_ptr<MpiCommunicator>(new MpiCommunicator());
  auto* comm = new MPI_Comm;
  if (int rc = MPI_Comm_dup(MPI_COMM_WORLD, comm); rc != MPI_SUCCESS) {
    delete comm;
    return MpiStatus(rc, "MPI_Comm_dup");
  }
  MPI_Comm_set_errhandler(*comm, MPI_ERRORS_RETURN);
  c->comm_ = comm;
  c->orphans_ = new std::vector<MPI_Request>();
  c->rank_ = runtime.rank();
  c->size_ = runtime.size();
  return c;
}

MpiCommunicator::~MpiCommunicator() {
  std::lock_guard<std::mutex> lock(mu_);
  if (orphans_ != nullptr) {
    for (MPI_Request& r : RequestsOf(orphans_)) {
      if (r != MPI_REQUEST_NULL) MPI_Request_free(&r);
    }
    delete &RequestsOf(orphans_);
  }
  // The duplicated communicator is not freed: MPI_Comm_free is collective and a failed peer would
  // hang it; MPI_Finalize releases it.
  delete static_cast<MPI_Comm*>(comm_);
}

absl::Status MpiCommunicator::abort_status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return abort_status_;
}

absl::Status MpiCommunicator::CheckPeer(int peer, const char* what) const {
  if (peer < 0 || peer >= size_) {
    return absl::InvalidArgumentError(absl::StrCat(what, " on rank ", rank_, ": peer ", peer,
                                                   " out of range [0, ", size_, ")"));
  }
  if (peer == rank_) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " on rank ", rank_, ": peer is this rank itself"));
  }
  return absl::OkStatus();
}

bool MpiCommunicator::PollAbortLocked() {
  if (!abort_status_.ok()) return true;
  int flag = 0;
  MPI_Message message;
  MPI_Status status;
  if (MPI_Improbe(MPI_ANY_SOURCE, kAbortTag, CommOf(comm_), &flag, &message, &status) !=
          MPI_SUCCESS ||
      !flag) {
    return false;
  }
  int count = 0;
  MPI_Get_count(&status, MPI_CHAR, &count);
  std::string text(static_cast<size_t>(std::max(count, 0)), '\0');
  MPI_Mrecv(text.data(), count, MPI_CHAR, &message, MPI_STATUS_IGNORE);
  abort_status_ = absl::AbortedError(absl::StrCat("communicator aborted: ", text));
  return true;
}

void MpiCommunicator::Abort(const absl::Status& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!abort_status_.ok()) return;  // the first reason wins
  const std::string why = absl::StrCat(
      "rank ", rank_, ": ", reason.ok() ? std::string("aborted without a reason") : reason.ToString());
  abort_status_ = absl::AbortedError(absl::StrCat("communicator aborted: ", why));
  // Tell every other rank; the notices complete whenever they are received (or never, if a peer
  // is gone: they are released with the communicator).
  auto notice = std::make_shared<const std::string>(why);
  orphan_texts_.push_back(notice);
  const std::string& text = *notice;
  for (int peer = 0; peer < size_; ++peer) {
    if (peer == rank_) continue;
    MPI_Request request;
    if (MPI_Isend(text.data(), static_cast<int>(text.size()), MPI_CHAR, peer, kAbortTag,
                  CommOf(comm_), &request) == MPI_SUCCESS) {
      RequestsOf(orphans_).push_back(request);
    }
  }
}

absl::Status MpiCommunicator::WaitAll(void* requests_ptr, absl::Time deadline,
                                      const std::string& what, std::vector<Tensor> keep_alive) {
  std::vector<MPI_Request>& requests = RequestsOf(requests_ptr);
  auto sleep = std::chrono::microseconds(10);
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      int done = 0;
      if (int rc = MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done,
                               MPI_STATUSES_IGNORE);
          rc != MPI_SUCCESS) {
        return absl::Status(MpiStatus(rc, "MPI_Testall").code(),
                            absl::StrCat(what, ": ", MpiErrorString(rc)));
      }
      if (done) return absl::OkStatus();
      const bool aborted = PollAbortLocked();
      if (aborted || absl::Now() >= deadline) {
        // Give up: receives are cancelled; anything MPI may still touch stays alive until the
        // communicator goes away.
        for (MPI_Request& r : requests) {
          if (r != MPI_REQUEST_NULL) {
            MPI_Cancel(&r);
            RequestsOf(orphans_).push_back(r);
            r = MPI_REQUEST_NULL;
          }
        }
        for (Tensor& t : keep_alive) orphan_tensors_.push_back(std::move(t));
        if (aborted) return abort_status_;
        return absl::DeadlineExceededError(absl::StrCat(what, ": not completed in time"));
      }
    }
    std::this_thread::sleep_for(sleep);
    sleep = std::min(sleep * 2, std::chrono::microseconds(1000));
  }
}

absl::Status MpiCommunicator::Send(const TensorGroup& group, int peer, absl::Duration timeout) {
  if (absl::Status s = CheckPeer(peer, "Send"); !s.ok()) return s;
  const std::string where = absl::StrCat("Send from rank ", rank_, " to rank ", peer,
                                         ", micro-batch ", group.microbatch);
  if (absl::Status s = CheckNamedTensors(group.tensors, where); !s.ok()) return s;
  if (group.end_of_stream && !group.tensors.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": an end-of-stream marker carries no tensors, got ", group.tensors.size()));
  }
  Header header;
  header.microbatch = group.microbatch;
  header.end_of_stream = group.end_of_stream;
  std::vector<Tensor> keep_alive;
  for (const auto& [name, t] : group.tensors) {
    header.tensors.push_back({name, t.dtype(), t.layout(), t.shape()});
    header.payload += static_cast<int64_t>(t.bytes());
    keep_alive.push_back(t);
  }
  auto encoded = std::make_shared<std::string>(header.Encode());
  std::vector<MPI_Request> requests;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (PollAbortLocked()) return abort_status_;
    MPI_Request r;
    if (int rc = MPI_Isend(encoded->data(), static_cast<int>(encoded->size()), MPI_BYTE, peer,
                           kHeaderTag, CommOf(comm_), &r);
        rc != MPI_SUCCESS) {
      return MpiStatus(rc, "MPI_Isend");
    }
    requests.push_back(r);
    for (const auto& [name, t] : group.tensors) {
      if (int rc = MPI_Isend(t.raw_data(), static_cast<int>(t.bytes()), MPI_BYTE, peer, kDataTag,
                             CommOf(comm_), &r);
          rc != MPI_SUCCESS) {
        for (MPI_Request& q : requests) RequestsOf(orphans_).push_back(q);
        orphan_texts_.push_back(encoded);
        for (Tensor& k : keep_alive) orphan_tensors_.push_back(k);
        return MpiStatus(rc, "MPI_Isend");
      }
      requests.push_back(r);
    }
  }
  absl::Status status = WaitAll(&requests, absl::Now() + timeout, where, keep_alive);
  if (!status.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    orphan_texts_.push_back(encoded);  // MPI may still read the header buffer
    return status;
  }
  bytes_sent_.fetch_add(header.payload, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status MpiCommunicator::Recv(int peer, MicroBatchId microbatch, NamedTensors* into,
                                   absl::Duration timeout) {
  if (absl::Status s = CheckPeer(peer, "Recv"); !s.ok()) return s;
  const std::string where =
      absl::StrCat("Recv on rank ", rank_, " from rank ", peer, ", micro-batch ", microbatch);
  if (into == nullptr) return absl::InvalidArgumentError(absl::StrCat(where, ": `into` is null"));
  if (absl::Status s = CheckNamedTensors(*into, where); !s.ok()) return s;
  const absl::Time deadline = absl::Now() + timeout;

  // 1. The header: one left over from a failed Recv, or the next from the wire.
  std::shared_ptr<Header> header;
  auto sleep = std::chrono::microseconds(10);
  while (header == nullptr) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (PollAbortLocked()) return abort_status_;
      auto it = pending_headers_.find(peer);
      if (it != pending_headers_.end()) {
        header = it->second;
        pending_headers_.erase(it);
        break;
      }
      int flag = 0;
      MPI_Message message;
      MPI_Status status;
      if (int rc = MPI_Improbe(peer, kHeaderTag, CommOf(comm_), &flag, &message, &status);
          rc != MPI_SUCCESS) {
        return MpiStatus(rc, "MPI_Improbe");
      }
      if (flag) {
        int count = 0;
        MPI_Get_count(&status, MPI_BYTE, &count);
        std::string bytes(static_cast<size_t>(std::max(count, 0)), '\0');
        if (int rc = MPI_Mrecv(bytes.data(), count, MPI_BYTE, &message, MPI_STATUS_IGNORE);
            rc != MPI_SUCCESS) {
          return MpiStatus(rc, "MPI_Mrecv");
        }
        absl::StatusOr<Header> decoded = Header::Decode(bytes, where);
        if (!decoded.ok()) return decoded.status();
        header = std::make_shared<Header>(*std::move(decoded));
        break;
      }
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(where, ": nothing arrived within ", absl::FormatDuration(timeout)));
    }
    std::this_thread::sleep_for(sleep);
    sleep = std::min(sleep * 2, std::chrono::microseconds(1000));
  }

  if (header->end_of_stream) {
    return absl::OutOfRangeError(absl::StrCat("end of stream from rank ", peer, " on rank ",
                                              rank_, " (after micro-batch ",
                                              header->microbatch - 1, ")"));
  }
  // 2. Validate before touching `into`; a mismatch leaves the message for the next Recv.
  auto keep = [&](absl::Status error) {
    std::lock_guard<std::mutex> lock(mu_);
    pending_headers_[peer] = header;
    return error;
  };
  if (header->microbatch != microbatch) {
    return keep(absl::FailedPreconditionError(
        absl::StrCat(where, ": the next message from rank ", peer, " is for micro-batch ",
                     header->microbatch, " (messages from one peer arrive in send order)")));
  }
  absl::flat_hash_map<std::string, Tensor*> wanted;
  for (auto& [name, t] : *into) wanted[name] = &t;
  std::vector<Tensor*> targets;
  for (const Header::Meta& m : header->tensors) {
    auto it = wanted.find(m.name);
    if (it == wanted.end()) {
      return keep(absl::FailedPreconditionError(
          absl::StrCat(where, ": tensor '", m.name, "' sent but not expected")));
    }
    const Tensor& t = *it->second;
    if (t.dtype() != m.dtype || t.shape() != m.shape || t.layout() != m.layout) {
      return keep(absl::FailedPreconditionError(absl::StrCat(
          where, ": tensor '", m.name, "': expected ", t.DebugString(), ", got ",
          DTypeName(m.dtype), ShapeToString(m.shape))));
    }
    targets.push_back(it->second);
  }
  if (targets.size() != into->size()) {
    for (const auto& [name, t] : *into) {
      bool sent = false;
      for (const Header::Meta& m : header->tensors) sent = sent || m.name == name;
      if (!sent) {
        return keep(absl::FailedPreconditionError(
            absl::StrCat(where, ": tensor '", name, "' expected but not sent")));
      }
    }
  }
  // 3. The data, straight into the caller's buffers, in the order sent.
  std::vector<MPI_Request> requests;
  std::vector<Tensor> keep_alive;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (Tensor* t : targets) {
      MPI_Request r;
      if (int rc = MPI_Irecv(t->raw_data(), static_cast<int>(t->bytes()), MPI_BYTE, peer,
                             kDataTag, CommOf(comm_), &r);
          rc != MPI_SUCCESS) {
        return MpiStatus(rc, "MPI_Irecv");
      }
      requests.push_back(r);
      keep_alive.push_back(*t);
    }
  }
  absl::Status status = WaitAll(&requests, deadline, where, std::move(keep_alive));
  if (!status.ok()) return status;
  bytes_received_.fetch_add(header->payload, std::memory_order_relaxed);
  return absl::OkStatus();
}

}  // namespace yolopipe
