#include "runtime/comm/bootstrap.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/file_io.h"

namespace yolopipe {

absl::StatusOr<std::unique_ptr<FileBootstrap>> FileBootstrap::Create(int rank, int size,
                                                                     std::string dir,
                                                                     absl::Duration timeout) {
  if (size < 1 || rank < 0 || rank >= size) {
    return absl::InvalidArgumentError(
        absl::StrCat("bootstrap rank ", rank, " must be in [0, ", size, ")"));
  }
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::NotFoundError(absl::StrCat("bootstrap directory '", dir, "' does not exist"));
  }
  return std::unique_ptr<FileBootstrap>(new FileBootstrap(rank, size, std::move(dir), timeout));
}

absl::StatusOr<std::unique_ptr<FileBootstrap>> FileBootstrap::FromEnvironment(
    absl::Duration timeout) {
  const char* dir = std::getenv("YOLOPIPE_BOOTSTRAP_DIR");
  const char* rank = std::getenv("YOLOPIPE_RANK");
  const char* size = std::getenv("YOLOPIPE_WORLD_SIZE");
  if (dir == nullptr || rank == nullptr || size == nullptr) {
    return absl::NotFoundError(
        "YOLOPIPE_BOOTSTRAP_DIR, YOLOPIPE_RANK and YOLOPIPE_WORLD_SIZE are not all set");
  }
  int r = 0, n = 0;
  if (!absl::SimpleAtoi(rank, &r) || !absl::SimpleAtoi(size, &n)) {
    return absl::InvalidArgumentError(
        absl::StrCat("YOLOPIPE_RANK '", rank, "' / YOLOPIPE_WORLD_SIZE '", size, "' are not numbers"));
  }
  return Create(r, n, dir, timeout);
}

absl::Status FileBootstrap::Write(int seq, const std::string& bytes) const {
  // Atomic, so a reader polling for the file never sees it half-written.
  const std::string path = absl::StrCat(dir_, "/", seq, ".", rank_);
  if (absl::Status s = WriteFileAtomically(path, bytes); !s.ok()) {
    return absl::UnavailableError(absl::StrCat("bootstrap: ", s.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> FileBootstrap::Read(int seq, int from) const {
  const std::string path = absl::StrCat(dir_, "/", seq, ".", from);
  const absl::Time deadline = absl::Now() + timeout_;
  auto sleep = std::chrono::milliseconds(1);
  while (true) {
    std::ifstream f(path, std::ios::binary);
    if (f) {
      std::ostringstream text;
      text << f.rdbuf();
      return text.str();
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "bootstrap: rank ", from, " did not take part in step ", seq, " within ",
          absl::FormatDuration(timeout_), " (no ", path, ")"));
    }
    std::this_thread::sleep_for(sleep);
    sleep = std::min(sleep * 2, std::chrono::milliseconds(50));
  }
}

absl::Status FileBootstrap::Broadcast(std::string* bytes, int root) const {
  if (root < 0 || root >= size_) {
    return absl::InvalidArgumentError(absl::StrCat("bootstrap: root ", root, " out of range"));
  }
  const int seq = seq_++;
  if (rank_ == root) return Write(seq, *bytes);
  absl::StatusOr<std::string> got = Read(seq, root);
  if (!got.ok()) return got.status();
  *bytes = *std::move(got);
  return absl::OkStatus();
}

absl::StatusOr<int> FileBootstrap::MaxOverRanks(int value) const {
  const int seq = seq_++;
  if (absl::Status s = Write(seq, std::to_string(value)); !s.ok()) return s;
  int result = value;
  for (int r = 0; r < size_; ++r) {
    if (r == rank_) continue;
    absl::StatusOr<std::string> got = Read(seq, r);
    if (!got.ok()) return got.status();
    int v = 0;
    if (!absl::SimpleAtoi(*got, &v)) {
      return absl::DataLossError(absl::StrCat("bootstrap: rank ", r, " wrote '", *got, "'"));
    }
    result = std::max(result, v);
  }
  return result;
}

}  // namespace yolopipe
