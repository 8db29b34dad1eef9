// Faults against the real yolopipe binary: SIGINT/SIGTERM in the middle of run, detect and stream,
// a second signal, and a full disk (a file size limit) while writing outputs. Each must end with a
// clear message and the conventional exit code, and no output file may look complete when it is
// not: no temporary files left, nothing half-written under a real name.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/detect/image.h"
#include "runtime/detect/video.h"
#include "tests/cli_runner.h"

namespace yolopipe {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::ReadFile;

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// One yolopipe process with stdout/stderr in files.
class Child {
 public:
  // `file_size_limit` > 0 sets RLIMIT_FSIZE in the child (how the test fills the disk).
  Child(const std::vector<std::string>& args, const std::string& dir, long file_size_limit = 0)
      : out_(dir + "/out.txt"), err_(dir + "/err.txt") {
    std::vector<std::string> argv_storage = {"tools/yolopipe"};
    argv_storage.insert(argv_storage.end(), args.begin(), args.end());
    pid_ = fork();
    if (pid_ == 0) {
      const int out = open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int err = open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(out, 1);
      dup2(err, 2);
      if (file_size_limit > 0) {
        struct rlimit limit = {static_cast<rlim_t>(file_size_limit),
                               static_cast<rlim_t>(file_size_limit)};
        setrlimit(RLIMIT_FSIZE, &limit);
      }
      std::vector<char*> argv;
      for (std::string& a : argv_storage) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  // Waits until `file` (out or err) contains `text`; false after `seconds` or if the child exited.
  bool WaitFor(const std::string& file, const std::string& text, double seconds) {
    const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
    while (Clock::now() < deadline) {
      if (ReadFile(file).find(text) != std::string::npos) return true;
      if (waitpid(pid_, &status_, WNOHANG) == pid_) {
        reaped_ = true;
        return ReadFile(file).find(text) != std::string::npos;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  void Signal(int signal) { kill(pid_, signal); }
  // The exit code (128+signal if killed), or -1 if it did not exit within `seconds` (then killed).
  int Wait(double seconds) {
    const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
    while (!reaped_ && Clock::now() < deadline) {
      if (waitpid(pid_, &status_, WNOHANG) == pid_) reaped_ = true;
      else std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!reaped_) return -1;
    return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
  }
  std::string out() const { return ReadFile(out_); }
  std::string err() const { return ReadFile(err_); }
  const std::string& err_path() const { return err_; }
  const std::string& out_path() const { return out_; }

 private:
  std::string out_, err_;
  pid_t pid_ = -1;
  int status_ = 0;
  bool reaped_ = false;
};

// Names of files in `dir` containing ".tmp" (what an unfinished atomic write leaves).
std::vector<std::string> TemporaryFiles(const std::string& dir) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) {
    if (e.path().filename().string().find(".tmp") != std::string::npos) {
      found.push_back(e.path().string());
    }
  }
  return found;
}

int CountOccurrences(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

Image Picture(int w, int h, int i) {
  Image im(w, h);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* p = im.at(x, y);
      p[0] = static_cast<uint8_t>((x * 7 + i * 13) & 255);
      p[1] = static_cast<uint8_t>((y * 5 + i * 3) & 255);
      p[2] = static_cast<uint8_t>(((x ^ y) + i) & 255);
    }
  }
  return im;
}

class FaultCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    images_ = new std::string(::testing::TempDir() + "/fault_images");
    fs::create_directories(*images_);
    for (int i = 0; i < kImages; ++i) {
      char name[32];
      std::snprintf(name, sizeof(name), "/img%03d.png", i);
      ASSERT_TRUE(WritePng(*images_ + name, Picture(40, 30, i)).ok());
    }
  }
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_ + "/outputs");
  }
  static constexpr int kImages = 120;
  static std::string* images_;
  std::string dir_;
};
std::string* FaultCliTest::images_ = nullptr;

TEST_F(FaultCliTest, SigintStopsAStreamingRunCleanly) {
  Child run({"run", "--mode", "pipeline", "--devices", "cpu:2", "--imgsz", "64", "--batch", "2",
             "--microbatch", "1", "--stream", "100000000", "--output", dir_ + "/outputs/out.npy"},
            dir_);
  ASSERT_TRUE(run.WaitFor(run.out_path(), "yolopipe run:", 120)) << run.err();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  run.Signal(SIGINT);
  EXPECT_EQ(run.Wait(60), 130) << run.err();
  EXPECT_THAT(run.err(), HasSubstr("SIGINT received: finishing the work in flight"));
  EXPECT_THAT(run.err(), HasSubstr("interrupted by SIGINT after"));
  EXPECT_THAT(run.err(), HasSubstr("every one pushed came out"));
  EXPECT_THAT(run.err(), Not(HasSubstr("error:")));
  EXPECT_THAT(run.out(), HasSubstr("img/s"));  // the stats of what did run
  // An interrupted run's output is not the requested one: not written.
  EXPECT_FALSE(fs::exists(dir_ + "/outputs/out.npy"));
  EXPECT_THAT(run.out(), HasSubstr("not written"));
  EXPECT_THAT(TemporaryFiles(dir_ + "/outputs"), ::testing::IsEmpty());
}

TEST_F(FaultCliTest, SigtermDuringAFiniteRunExitsAtOnceWithAMessage) {
  Child run({"run", "--imgsz", "320", "--batch", "4", "--repeats", "1000", "--output",
             dir_ + "/outputs/out.npy"},
            dir_);
  ASSERT_TRUE(run.WaitFor(run.out_path(), "yolopipe run:", 120)) << run.err();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  run.Signal(SIGTERM);
  EXPECT_EQ(run.Wait(30), 143) << run.err();
  EXPECT_THAT(run.err(), HasSubstr("interrupted by SIGTERM: stopped at once"));
  EXPECT_FALSE(fs::exists(dir_ + "/outputs/out.npy"));
  EXPECT_THAT(TemporaryFiles(dir_ + "/outputs"), ::testing::IsEmpty());
}

TEST_F(FaultCliTest, SecondSigintStopsAtOnce) {
  // Micro-batches of 32 at 320x320 take about a second each here: the second signal arrives while
  // the first one's drain is still running.
  Child run({"run", "--imgsz", "320", "--batch", "32", "--microbatch", "32", "--stream", "1000000"},
            dir_);
  ASSERT_TRUE(run.WaitFor(run.out_path(), "yolopipe run:", 120)) << run.err();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  run.Signal(SIGINT);
  ASSERT_TRUE(run.WaitFor(run.err_path(), "send it again", 30)) << run.err();
  run.Signal(SIGINT);
  EXPECT_EQ(run.Wait(30), 130) << run.err();
  EXPECT_THAT(run.err(), HasSubstr("interrupted by SIGINT: stopped at once"));
}

TEST_F(FaultCliTest, SigintDuringDetectKeepsWhatWasDoneAsPartial) {
  Child detect({"detect", "--imgsz", "320", "--batch", "2", "--image", *images_, "--out",
                dir_ + "/outputs/png", "--json", dir_ + "/outputs/dets.json"},
               dir_);
  // The progress line (stderr is not a terminal: one line per 10%) says the run is under way.
  ASSERT_TRUE(detect.WaitFor(detect.err_path(), "detect 12/120", 300)) << detect.err();
  detect.Signal(SIGINT);
  const int code = detect.Wait(60);
  ASSERT_EQ(code, 130) << detect.out() << detect.err();
  EXPECT_THAT(detect.err(), HasSubstr("interrupted by SIGINT after"));
  EXPECT_FALSE(fs::exists(dir_ + "/outputs/dets.json"));
  const std::string partial = ReadFile(dir_ + "/outputs/dets.json.partial");
  const int listed = CountOccurrences(partial, "\"file\": ");
  EXPECT_GE(listed, 12);
  EXPECT_LT(listed, kImages);
  // Every PNG written is whole (decodes), and there is one per image in the partial JSON.
  int pngs = 0;
  for (const auto& e : fs::directory_iterator(dir_ + "/outputs/png")) {
    ++pngs;
    EXPECT_TRUE(DecodeImageFile(e.path().string()).ok()) << e.path();
  }
  EXPECT_EQ(pngs, listed);
  EXPECT_THAT(TemporaryFiles(dir_ + "/outputs"), ::testing::IsEmpty());
}

TEST_F(FaultCliTest, SigintDuringStreamEndsTheSourcesAndClosesTheVideos) {
  Child stream({"stream", "--imgsz", "320", "--microbatch", "2", "--source", *images_,
                "--source", *images_, "--json-dir", dir_ + "/outputs/json", "--out-dir",
                dir_ + "/outputs/video"},
               dir_);
  ASSERT_TRUE(stream.WaitFor(stream.out_path(), "yolopipe stream:", 120)) << stream.err();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  stream.Signal(SIGINT);
  ASSERT_EQ(stream.Wait(60), 130) << stream.out() << stream.err();
  EXPECT_THAT(stream.err(), HasSubstr("interrupted by SIGINT: the sources were ended early"));
  int videos = 0;
  for (const auto& e : fs::directory_iterator(dir_ + "/outputs/json")) {
    const std::string json = ReadFile(e.path().string());
    EXPECT_THAT(json, HasSubstr("\"complete\": false")) << e.path();
    int processed = -1;
    const size_t at = json.find("\"frames_processed\": ");
    ASSERT_NE(at, std::string::npos);
    std::sscanf(json.c_str() + at, "\"frames_processed\": %d", &processed);
    EXPECT_GT(processed, 0);
    EXPECT_LT(processed, kImages);
    // The annotated video was closed properly: it decodes to exactly the processed frames.
    const std::string video =
        dir_ + "/outputs/video/" + e.path().stem().string() + ".mp4";
    auto reader = VideoReader::Open(video);
    ASSERT_TRUE(reader.ok()) << reader.status();
    int frames = 0;
    while (true) {
      auto f = (*reader)->Next();
      ASSERT_TRUE(f.ok()) << f.status();
      if (!f->has_value()) break;
      ++frames;
    }
    EXPECT_EQ(frames, processed) << video;
    ++videos;
  }
  EXPECT_EQ(videos, 2);
  EXPECT_THAT(TemporaryFiles(dir_ + "/outputs"), ::testing::IsEmpty());
}

// RLIMIT_FSIZE makes every write past 64 KiB fail with EFBIG, like a full disk fails with ENOSPC.
TEST_F(FaultCliTest, FullDiskWhileWritingOutputsFailsClearlyAndLeavesNothing) {
  Child run({"run", "--imgsz", "320", "--batch", "2", "--output", dir_ + "/outputs/out.npy"}, dir_,
            64 << 10);
  EXPECT_EQ(run.Wait(300), 1) << run.err();
  EXPECT_THAT(run.err(), HasSubstr(dir_ + "/outputs/out.npy"));
  EXPECT_THAT(run.err(), HasSubstr("File too large"));
  EXPECT_FALSE(fs::exists(dir_ + "/outputs/out.npy"));
  EXPECT_THAT(TemporaryFiles(dir_ + "/outputs"), ::testing::IsEmpty());

  // The JSON of 120 images is far beyond 4 KiB (what the test's own out.txt/err.txt also fit in).
  Child detect({"detect", "--imgsz", "64", "--image", *images_, "--json",
                dir_ + "/outputs/dets.json"},
               dir_, 4 << 10);
  EXPECT_EQ(detect.Wait(300), 1) << detect.err();
  EXPECT_THAT(detect.err(), HasSubstr(dir_ + "/outputs/dets.json"));
  EXPECT_THAT(detect.err(), HasSubstr("File too large"));
  EXPECT_FALSE(fs::exists(dir_ + "/outputs/dets.json"));
  EXPECT_THAT(TemporaryFiles(dir_ + "/outputs"), ::testing::IsEmpty());
}

}  // namespace
}  // namespace yolopipe
