// Bootstrap: the few collectives a group of processes needs to set up a transport — hand rank 0's
// NCCL unique id to everyone, and agree whether every rank succeeded. MpiRuntime provides them
// over MPI; FileBootstrap over a shared directory, for launches without MPI (e.g. a GPU machine
// with no MPI installed, ranks started by a shell script).
#ifndef YOLOPIPE_RUNTIME_COMM_BOOTSTRAP_H_
#define YOLOPIPE_RUNTIME_COMM_BOOTSTRAP_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace yolopipe {

// Every rank must make the same calls in the same order (collectives).
class Bootstrap {
 public:
  virtual ~Bootstrap() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // `bytes` on every rank becomes `root`'s.
  virtual absl::Status Broadcast(std::string* bytes, int root) const = 0;
  // The largest of every rank's `value`.
  virtual absl::StatusOr<int> MaxOverRanks(int value) const = 0;
};

// Ranks exchange small files in a directory every rank can read and write (one host, or a shared
// file system). Each collective has a sequence number; a rank writes <dir>/<seq>.<rank> (to a
// temporary name, then renamed, so readers never see half a file) and polls for the others' until
// `timeout` (DeadlineExceeded naming the missing ranks). The directory should be fresh per job.
// Not thread-safe: one thread makes the collectives.
class FileBootstrap final : public Bootstrap {
 public:
  // InvalidArgument unless 0 <= rank < size; NotFound if `dir` is not a directory.
  static absl::StatusOr<std::unique_ptr<FileBootstrap>> Create(int rank, int size, std::string dir,
                                                               absl::Duration timeout);
  // From YOLOPIPE_BOOTSTRAP_DIR, YOLOPIPE_RANK and YOLOPIPE_WORLD_SIZE; NotFound when they are
  // not set, InvalidArgument when malformed.
  static absl::StatusOr<std::unique_ptr<FileBootstrap>> FromEnvironment(absl::Duration timeout);

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  absl::Status Broadcast(std::string* bytes, int root) const override;
  absl::StatusOr<int> MaxOverRanks(int value) const override;

 private:
  FileBootstrap(int rank, int size, std::string dir, absl::Duration timeout)
      : rank_(rank), size_(size), dir_(std::move(dir)), timeout_(timeout) {}
  absl::Status Write(int seq, const std::string& bytes) const;
  absl::StatusOr<std::string> Read(int seq, int from) const;

  int rank_;
  int size_;
  std::string dir_;
  absl::Duration timeout_;
  mutable int seq_ = 0;
};

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_COMM_BOOTSTRAP_H_
