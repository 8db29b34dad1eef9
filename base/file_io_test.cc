#include "base/file_io.h"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace yolopipe {
namespace {

namespace fs = std::filesystem;

class FileIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* base = std::getenv("TEST_TMPDIR");
    dir_ = fs::path(base != nullptr ? base : "/tmp") /
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  // Everything in the folder except `keep`: a failed write must leave no temporary file behind.
  int OtherFiles(const std::string& keep) const {
    int n = 0;
    for (const auto& entry : fs::directory_iterator(dir_)) {
      if (entry.path().filename() != keep) ++n;
    }
    return n;
  }
  static std::string Slurp(const fs::path& path) {
    std::ifstream f(path, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
  }
  fs::path dir_;
};

TEST_F(FileIoTest, WritesAndReplaces) {
  const std::string path = (dir_ / "out.txt").string();
  ASSERT_TRUE(WriteFileAtomically(path, "first").ok());
  EXPECT_EQ(Slurp(path), "first");
  std::string big(3 << 20, 'x');
  big[12345] = 'y';
  ASSERT_TRUE(WriteFileAtomically(path, big).ok());
  EXPECT_EQ(Slurp(path), big);
  EXPECT_EQ(OtherFiles("out.txt"), 0);
  absl::StatusOr<std::string> read = ReadFileToString(path, big.size());
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, big);
}

TEST_F(FileIoTest, MissingFolderIsNotFound) {
  const std::string path = (dir_ / "no_such_dir" / "out.txt").string();
  absl::Status s = WriteFileAtomically(path, "x");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_NE(s.message().find(path), std::string::npos) << s;
}

// A file size limit fails the write the way a full disk does (EFBIG instead of ENOSPC): the
// destination keeps its old contents and the temporary file is gone.
TEST_F(FileIoTest, FullDiskKeepsTheOldFileAndLeavesNoTemporary) {
  const std::string path = (dir_ / "out.txt").string();
  ASSERT_TRUE(WriteFileAtomically(path, "old contents").ok());
  struct rlimit old_limit;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  struct sigaction ignore = {}, old_action;
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGXFSZ, &ignore, &old_action), 0);
  struct rlimit limit = old_limit;
  limit.rlim_cur = 4096;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
  absl::Status s = WriteFileAtomically(path, std::string(100000, 'z'));
  setrlimit(RLIMIT_FSIZE, &old_limit);
  sigaction(SIGXFSZ, &old_action, nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_NE(s.message().find("File too large"), std::string::npos) << s;
  EXPECT_NE(s.message().find(path), std::string::npos) << s;
  EXPECT_EQ(Slurp(path), "old contents");
  EXPECT_EQ(OtherFiles("out.txt"), 0);
}

TEST_F(FileIoTest, TemporaryFileAppearsOnlyOnCommit) {
  const std::string path = (dir_ / "video.mp4").string();
  {
    TemporaryFile file(path);
    std::ofstream(file.temp_path()) << "frames";
    EXPECT_FALSE(fs::exists(path));
    ASSERT_TRUE(file.Commit().ok());
  }
  EXPECT_EQ(Slurp(path), "frames");
  {
    TemporaryFile abandoned((dir_ / "other.mp4").string());
    std::ofstream(abandoned.temp_path()) << "half";
    RemovePendingTemporaryFiles();  // what an interrupted process does before exiting
    EXPECT_FALSE(fs::exists(abandoned.temp_path()));
  }
  {
    TemporaryFile dropped((dir_ / "third.mp4").string());
    std::ofstream(dropped.temp_path()) << "half";
  }
  EXPECT_EQ(OtherFiles("video.mp4"), 0);
}

TEST_F(FileIoTest, ReadRefusesLargeFilesFoldersAndMissingOnes) {
  const std::string path = (dir_ / "in.bin").string();
  ASSERT_TRUE(WriteFileAtomically(path, std::string(1000, 'a')).ok());
  EXPECT_TRUE(ReadFileToString(path, 1000).ok());
  EXPECT_EQ(ReadFileToString(path, 999).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ReadFileToString(dir_.string(), 1 << 20).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadFileToString((dir_ / "missing").string(), 10).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace yolopipe
