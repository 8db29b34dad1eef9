#include "base/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>

#include "absl/strings/str_cat.h"

namespace yolopipe {
namespace {

std::mutex& PendingMutex() {
  static std::mutex* mu = new std::mutex;
  return *mu;
}
std::set<std::string>& Pending() {
  static std::set<std::string>* pending = new std::set<std::string>;
  return *pending;
}

// The status code for `err`, with `message` (which already says what failed and why).
absl::Status StatusForErrno(int err, const std::string& message) {
  switch (err) {
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
      return absl::ResourceExhaustedError(message);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(message);
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::Status ErrnoStatus(int err, const std::string& path, const std::string& what) {
  return StatusForErrno(err, absl::StrCat(path, ": ", what, ": ", std::strerror(err)));
}

}  // namespace

TemporaryFile::TemporaryFile(const std::string& path) : path_(path) {
  static std::atomic<int> counter{0};
  temp_path_ = absl::StrCat(path, ".tmp.", getpid(), ".", counter++);
  std::lock_guard<std::mutex> lock(PendingMutex());
  Pending().insert(temp_path_);
}

TemporaryFile::~TemporaryFile() {
  if (!committed_) unlink(temp_path_.c_str());
  std::lock_guard<std::mutex> lock(PendingMutex());
  Pending().erase(temp_path_);
}

absl::Status TemporaryFile::Commit() {
  if (rename(temp_path_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    return ErrnoStatus(err, path_, absl::StrCat("cannot rename ", temp_path_, " into place"));
  }
  committed_ = true;
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const std::string& path, std::string_view bytes) {
  TemporaryFile file(path);
  const std::string& tmp = file.temp_path();
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int err = errno;
    return ErrnoStatus(err, path, "cannot create a temporary file to write");
  }
  const auto fail = [&](int err, const std::string& what) {
    close(fd);
    return ErrnoStatus(err, path, what);
  };
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      const int err = errno;
      if (err == EINTR) continue;
      return fail(err, absl::StrCat("write failed after ", done, " of ", bytes.size(), " bytes"));
    }
    done += static_cast<size_t>(n);
  }
  // Without the flush a crash right after the rename could leave an empty file under the name.
  if (fsync(fd) != 0) {
    const int err = errno;
    if (err != EINVAL && err != EROFS) return fail(err, "flush failed");
  }
  if (close(fd) != 0) {
    const int err = errno;
    return ErrnoStatus(err, path, "close failed");
  }
  return file.Commit();
}

absl::StatusOr<std::string> ReadFileToString(const std::string& path, int64_t max_bytes) {
  // O_NONBLOCK: a FIFO is refused below (not a regular file) instead of blocking this open.
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    return StatusForErrno(err, absl::StrCat("cannot open '", path, "': ", std::strerror(err)));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    return ErrnoStatus(err, path, "cannot stat");
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  if (st.st_size > max_bytes) {
    close(fd);
    return absl::ResourceExhaustedError(absl::StrCat(path, ": ", st.st_size, " bytes, more than the ",
                                                     max_bytes, "-byte limit for this kind of file"));
  }
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close(fd);
      return ErrnoStatus(err, path, "read failed");
    }
    if (n == 0) break;  // the file shrank while being read
    done += static_cast<size_t>(n);
  }
  close(fd);
  bytes.resize(done);
  return bytes;
}

void RemovePendingTemporaryFiles() {
  std::lock_guard<std::mutex> lock(PendingMutex());
  for (const std::string& path : Pending()) unlink(path.c_str());
}

}  // namespace yolopipe
