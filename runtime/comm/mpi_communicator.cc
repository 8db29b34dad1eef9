#include "runtime/comm/mpi_communicator.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>
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

// Every MPI call in the process goes through this lock (MPI_THREAD_SERIALIZED suffices).
std::mutex& MpiLock() {
  static std::mutex* mu = new std::mutex;
  return *mu;
}

constexpr int kAbortTag = 1;
constexpr int kFirstPairTag = 16;
// Waits poll with a sleep that doubles from 10 us up to this: short enough to add little latency,
// long enough that an idle waiter costs the compute threads next to it almost nothing.
constexpr int kMaxPollSleepUs = 2000;
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

// The shared checks (communicator.h) plus MPI's message size limit (an int count of bytes).
absl::Status CheckMpiTensors(const NamedTensors& tensors, const std::string& where) {
  if (absl::Status s = CheckNamedTensors(tensors, where); !s.ok()) return s;
  for (const auto& [name, tensor] : tensors) {
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

absl::Status MpiRuntime::Broadcast(std::string* bytes, int root) const {
  std::lock_guard<std::mutex> lock(MpiLock());
  int64_t size = static_cast<int64_t>(bytes->size());
  if (int rc = MPI_Bcast(&size, 1, MPI_INT64_T, root, MPI_COMM_WORLD); rc != MPI_SUCCESS) {
    return MpiStatus(rc, "MPI_Bcast");
  }
  if (size < 0 || size > INT_MAX) return absl::DataLossError("broadcast of a bad size");
  bytes->resize(static_cast<size_t>(size));
  if (int rc = MPI_Bcast(bytes->data(), static_cast<int>(size), MPI_CHAR, root, MPI_COMM_WORLD);
      rc != MPI_SUCCESS) {
    return MpiStatus(rc, "MPI_Bcast");
  }
  return absl::OkStatus();
}

absl::StatusOr<int> MpiRuntime::MaxOverRanks(int value) const {
  std::lock_guard<std::mutex> lock(MpiLock());
  int result = value;
  if (int rc = MPI_Allreduce(&value, &result, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
      rc != MPI_SUCCESS) {
    return MpiStatus(rc, "MPI_Allreduce");
  }
  return result;
}

void MpiRuntime::AbortJob(const std::string& message, int code) {
  std::cerr << message << std::endl;
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI_Abort should not return
}

// ---------------------------------------------------------------------------------------------
// MpiFabric

struct MpiFabric::Header {
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

absl::StatusOr<std::unique_ptr<MpiFabric>> MpiFabric::Create(const MpiRuntime& runtime,
                                                             std::vector<int> endpoint_to_world) {
  if (endpoint_to_world.empty()) return absl::InvalidArgumentError("a fabric needs endpoints");
  for (int w : endpoint_to_world) {
    if (w < 0 || w >= runtime.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("endpoint on world rank ", w, ", but the job has ", runtime.size()));
    }
  }
  auto f = std::unique_ptr<MpiFabric>(new MpiFabric());
  f->world_rank_ = runtime.rank();
  f->endpoint_to_world_ = std::move(endpoint_to_world);
  std::lock_guard<std::mutex> lock(MpiLock());
  int* tag_ub = nullptr;
  int flag = 0;
  MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &tag_ub, &flag);
  const int64_t e = static_cast<int64_t>(f->endpoint_to_world_.size());
  const int64_t needed = kFirstPairTag + 2 * e * e;
  if (flag && tag_ub != nullptr && needed > *tag_ub) {
    return absl::InvalidArgumentError(absl::StrCat(e, " endpoints need MPI tags up to ", needed,
                                                   "; this MPI allows ", *tag_ub));
  }
  auto* comm = new MPI_Comm;
  if (int rc = MPI_Comm_dup(MPI_COMM_WORLD, comm); rc != MPI_SUCCESS) {
    delete comm;
    return MpiStatus(rc, "MPI_Comm_dup");
  }
  MPI_Comm_set_errhandler(*comm, MPI_ERRORS_RETURN);
  f->comm_ = comm;
  f->orphans_ = new std::vector<MPI_Request>();
  for (int i = 0; i < static_cast<int>(e); ++i) {
    f->endpoints_.push_back(f->endpoint_to_world_[i] == f->world_rank_
                                ? std::unique_ptr<MpiCommunicator>(new MpiCommunicator(f.get(), i))
                                : nullptr);
  }
  return f;
}

MpiFabric::~MpiFabric() {
  std::lock_guard<std::mutex> lock(MpiLock());
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

MpiCommunicator* MpiFabric::endpoint(int rank) {
  if (rank < 0 || rank >= size()) return nullptr;
  return endpoints_[rank].get();
}

int MpiFabric::HeaderTag(int src, int dst) const {
  return kFirstPairTag + 2 * (src * size() + dst);
}

absl::Status MpiFabric::abort_status() const {
  std::lock_guard<std::mutex> lock(MpiLock());
  return abort_status_;
}

bool MpiFabric::PollAbortLocked() {
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

void MpiFabric::Abort(const absl::Status& reason) {
  std::lock_guard<std::mutex> lock(MpiLock());
  if (!abort_status_.ok()) return;  // the first reason wins
  const std::string why =
      absl::StrCat("rank ", world_rank_, ": ",
                   reason.ok() ? std::string("aborted without a reason") : reason.ToString());
  abort_status_ = absl::AbortedError(absl::StrCat("communicator aborted: ", why));
  // Tell every other rank once; the notices complete whenever they are received (or never, if a
  // peer is gone: they are released with the fabric).
  auto notice = std::make_shared<const std::string>(why);
  orphan_texts_.push_back(notice);
  std::vector<int> told;
  for (int w : endpoint_to_world_) {
    if (w == world_rank_ || std::find(told.begin(), told.end(), w) != told.end()) continue;
    told.push_back(w);
    MPI_Request request;
    if (MPI_Isend(notice->data(), static_cast<int>(notice->size()), MPI_CHAR, w, kAbortTag,
                  CommOf(comm_), &request) == MPI_SUCCESS) {
      RequestsOf(orphans_).push_back(request);
    }
  }
}

absl::Status MpiFabric::WaitAll(void* requests_ptr, absl::Time deadline, const std::string& what,
                                std::vector<Tensor> keep_alive) {
  std::vector<MPI_Request>& requests = RequestsOf(requests_ptr);
  auto sleep = std::chrono::microseconds(10);
  while (true) {
    {
      std::lock_guard<std::mutex> lock(MpiLock());
      int done = 0;
      if (int rc = MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done,
                               MPI_STATUSES_IGNORE);
          rc != MPI_SUCCESS) {
        return absl::InternalError(absl::StrCat(what, ": ", MpiErrorString(rc)));
      }
      if (done) return absl::OkStatus();
      const bool aborted = PollAbortLocked();
      if (aborted || absl::Now() >= deadline) {
        // Give up: unfinished requests are cancelled, and anything MPI may still touch stays
        // alive until the fabric goes away.
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
    sleep = std::min(sleep * 2, std::chrono::microseconds(kMaxPollSleepUs));
  }
}

// ---------------------------------------------------------------------------------------------
// MpiCommunicator

absl::StatusOr<std::unique_ptr<MpiCommunicator>> MpiCommunicator::Create(
    const MpiRuntime& runtime) {
  std::vector<int> identity(static_cast<size_t>(runtime.size()));
  for (int r = 0; r < runtime.size(); ++r) identity[r] = r;
  absl::StatusOr<std::unique_ptr<MpiFabric>> fabric = MpiFabric::Create(runtime, identity);
  if (!fabric.ok()) return fabric.status();
  MpiFabric* f = fabric->get();
  std::unique_ptr<MpiCommunicator> mine = std::move(f->endpoints_[runtime.rank()]);
  mine->owned_fabric_ = std::move(*fabric);
  return mine;
}

MpiCommunicator::~MpiCommunicator() = default;

int MpiCommunicator::size() const { return fabric_->size(); }
void MpiCommunicator::Abort(const absl::Status& reason) { fabric_->Abort(reason); }
absl::Status MpiCommunicator::abort_status() const { return fabric_->abort_status(); }

absl::Status MpiCommunicator::CheckPeer(int peer, const char* what) const {
  return CheckPeerRank(endpoint_, size(), peer, what);
}

absl::Status MpiCommunicator::Send(const TensorGroup& group, int peer, absl::Duration timeout) {
  if (absl::Status s = CheckPeer(peer, "Send"); !s.ok()) return s;
  const std::string where = absl::StrCat("Send from rank ", endpoint_, " to rank ", peer,
                                         ", micro-batch ", group.microbatch);
  if (absl::Status s = CheckMpiTensors(group.tensors, where); !s.ok()) return s;
  if (group.end_of_stream && !group.tensors.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": an end-of-stream marker carries no tensors, got ", group.tensors.size()));
  }
  MpiFabric& f = *fabric_;
  MpiFabric::Header header;
  header.microbatch = group.microbatch;
  header.end_of_stream = group.end_of_stream;
  std::vector<Tensor> keep_alive;
  for (const auto& [name, t] : group.tensors) {
    header.tensors.push_back({name, t.dtype(), t.layout(), t.shape()});
    header.payload += static_cast<int64_t>(t.bytes());
    keep_alive.push_back(t);
  }
  auto encoded = std::make_shared<const std::string>(header.Encode());
  const int world_peer = f.endpoint_to_world_[peer];
  std::vector<MPI_Request> requests;
  {
    std::lock_guard<std::mutex> lock(MpiLock());
    if (f.PollAbortLocked()) return f.abort_status_;
    auto post = [&](const void* data, size_t bytes, int tag) -> absl::Status {
      MPI_Request r;
      if (int rc = MPI_Isend(data, static_cast<int>(bytes), MPI_BYTE, world_peer, tag,
                             CommOf(f.comm_), &r);
          rc != MPI_SUCCESS) {
        for (MPI_Request& q : requests) RequestsOf(f.orphans_).push_back(q);
        f.orphan_texts_.push_back(encoded);
        for (Tensor& k : keep_alive) f.orphan_tensors_.push_back(k);
        return MpiStatus(rc, "MPI_Isend");
      }
      requests.push_back(r);
      return absl::OkStatus();
    };
    if (absl::Status s = post(encoded->data(), encoded->size(), f.HeaderTag(endpoint_, peer));
        !s.ok()) {
      return s;
    }
    for (const auto& [name, t] : group.tensors) {
      if (absl::Status s = post(t.raw_data(), t.bytes(), f.DataTag(endpoint_, peer)); !s.ok()) {
        return s;
      }
    }
  }
  absl::Status status = f.WaitAll(&requests, absl::Now() + timeout, where, keep_alive);
  if (!status.ok()) {
    std::lock_guard<std::mutex> lock(MpiLock());
    f.orphan_texts_.push_back(encoded);  // MPI may still read the header
    return status;
  }
  bytes_sent_.fetch_add(header.payload, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status MpiCommunicator::Recv(int peer, MicroBatchId microbatch, NamedTensors* into,
                                   absl::Duration timeout) {
  if (absl::Status s = CheckPeer(peer, "Recv"); !s.ok()) return s;
  const std::string where =
      absl::StrCat("Recv on rank ", endpoint_, " from rank ", peer, ", micro-batch ", microbatch);
  if (into == nullptr) return absl::InvalidArgumentError(absl::StrCat(where, ": `into` is null"));
  if (absl::Status s = CheckMpiTensors(*into, where); !s.ok()) return s;
  MpiFabric& f = *fabric_;
  const absl::Time deadline = absl::Now() + timeout;
  const int world_peer = f.endpoint_to_world_[peer];
  const std::pair<int, int> pair(peer, endpoint_);

  // 1. The header: one left over from a failed Recv, or the next from the wire.
  std::shared_ptr<MpiFabric::Header> header;
  auto sleep = std::chrono::microseconds(10);
  while (header == nullptr) {
    {
      std::lock_guard<std::mutex> lock(MpiLock());
      if (f.PollAbortLocked()) return f.abort_status_;
      auto it = f.pending_headers_.find(pair);
      if (it != f.pending_headers_.end()) {
        header = it->second;
        f.pending_headers_.erase(it);
        break;
      }
      int flag = 0;
      MPI_Message message;
      MPI_Status status;
      if (int rc = MPI_Improbe(world_peer, f.HeaderTag(peer, endpoint_), CommOf(f.comm_), &flag,
                               &message, &status);
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
        absl::StatusOr<MpiFabric::Header> decoded = MpiFabric::Header::Decode(bytes, where);
        if (!decoded.ok()) return decoded.status();
        header = std::make_shared<MpiFabric::Header>(*std::move(decoded));
        break;
      }
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(where, ": nothing arrived within ", absl::FormatDuration(timeout)));
    }
    std::this_thread::sleep_for(sleep);
    sleep = std::min(sleep * 2, std::chrono::microseconds(kMaxPollSleepUs));
  }

  if (header->end_of_stream) {
    return absl::OutOfRangeError(absl::StrCat("end of stream from rank ", peer, " on rank ",
                                              endpoint_, " (after micro-batch ",
                                              header->microbatch - 1, ")"));
  }
  // 2. Validate before touching `into`; a mismatch leaves the message for the next Recv.
  auto keep = [&](absl::Status error) {
    std::lock_guard<std::mutex> lock(MpiLock());
    f.pending_headers_[pair] = header;
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
  for (const MpiFabric::Header::Meta& m : header->tensors) {
    auto it = wanted.find(m.name);
    if (it == wanted.end()) {
      return keep(absl::FailedPreconditionError(
          absl::StrCat(where, ": tensor '", m.name, "' sent but not expected")));
    }
    const Tensor& t = *it->second;
    if (t.dtype() != m.dtype || t.shape() != m.shape || t.layout() != m.layout) {
      return keep(absl::FailedPreconditionError(
          absl::StrCat(where, ": tensor '", m.name, "': expected ", t.DebugString(), ", got ",
                       DTypeName(m.dtype), ShapeToString(m.shape))));
    }
    targets.push_back(it->second);
  }
  if (targets.size() != into->size()) {
    for (const auto& [name, t] : *into) {
      bool sent = false;
      for (const MpiFabric::Header::Meta& m : header->tensors) sent = sent || m.name == name;
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
    std::lock_guard<std::mutex> lock(MpiLock());
    for (Tensor* t : targets) {
      MPI_Request r;
      if (int rc = MPI_Irecv(t->raw_data(), static_cast<int>(t->bytes()), MPI_BYTE, world_peer,
                             f.DataTag(peer, endpoint_), CommOf(f.comm_), &r);
          rc != MPI_SUCCESS) {
        for (MPI_Request& q : requests) {
          MPI_Cancel(&q);
          RequestsOf(f.orphans_).push_back(q);
        }
        for (Tensor& k : keep_alive) f.orphan_tensors_.push_back(k);
        f.orphan_tensors_.push_back(*t);
        return MpiStatus(rc, "MPI_Irecv");
      }
      requests.push_back(r);
      keep_alive.push_back(*t);
    }
  }
  absl::Status status = f.WaitAll(&requests, deadline, where, std::move(keep_alive));
  if (!status.ok()) return status;
  bytes_received_.fetch_add(header->payload, std::memory_order_relaxed);
  return absl::OkStatus();
}

}  // namespace yolopipe
