// Files written so that a reader never sees a partial one: the bytes go to a temporary file in the
// same folder, which is flushed to disk and then renamed over the destination. A failed write
// (disk full, file size limit, permissions) removes the temporary file and says why.
#ifndef YOLOPIPE_BASE_FILE_IO_H_
#define YOLOPIPE_BASE_FILE_IO_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace yolopipe {

// Writes `bytes` to `path` atomically (temporary "<path>.tmp.<pid>.<n>", fsync, rename). On error
// `path` is untouched and no temporary file is left. Errors: ResourceExhausted for a full disk or
// a file size limit (ENOSPC, EDQUOT, EFBIG), PermissionDenied, NotFound for a missing folder,
// Internal otherwise; each message names the path and the system's reason. Thread-safe.
absl::Status WriteFileAtomically(const std::string& path, std::string_view bytes);

// For writers that produce a file piece by piece (a video encoder): a temporary name beside
// `path`, registered for RemovePendingTemporaryFiles. Commit() renames it into place; otherwise
// the destructor removes it. Not thread-safe (one writer owns it).
class TemporaryFile {
 public:
  explicit TemporaryFile(const std::string& path);
  ~TemporaryFile();
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;

  const std::string& path() const { return path_; }            // the final name
  const std::string& temp_path() const { return temp_path_; }  // where to write
  // Renames the finished temporary file to path(). Errors name both files and the reason.
  absl::Status Commit();

 private:
  std::string path_;
  std::string temp_path_;
  bool committed_ = false;
};

// Reads a whole regular file, refusing one larger than `max_bytes` before reading it. Errors:
// NotFound (missing), InvalidArgument (a folder, FIFO or device), ResourceExhausted (too large),
// each naming the path.
absl::StatusOr<std::string> ReadFileToString(const std::string& path, int64_t max_bytes);

// Removes the temporary files of writes still in progress. For an interrupted process about to
// exit (tools/interrupt.h calls it): a normal thread, not a signal handler, must call it.
void RemovePendingTemporaryFiles();

}  // namespace yolopipe

#endif  // YOLOPIPE_BASE_FILE_IO_H_
