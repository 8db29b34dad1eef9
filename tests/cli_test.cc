// CLI contract tests: run the real yolopipe binary and check exit status, stdout and stderr.
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/cuda/cuda_probe.h"
#include "tests/cli_runner.h"

namespace {

using ::testing::HasSubstr;
using ::testing::Not;

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

using Result = ::yolopipe::testing::CliResult;
using ::yolopipe::testing::ReadFile;

Result Yolopipe(const std::string& args) { return ::yolopipe::testing::RunYolopipe(args); }

std::string Tmp(const std::string& name) { return ::testing::TempDir() + "/" + name; }

// A .npy header + zero data for the given shape and dtype (<f4 or <f8).
std::string Npy(const std::string& shape_tuple, size_t elements, const std::string& descr = "<f4") {
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " +
                       shape_tuple + ", }";
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  const size_t element_bytes = descr == "<f8" ? 8 : 4;
  out.append(elements * element_bytes, '\0');
  return out;
}

TEST(CliTest, NoArgumentsIsUsageError) {
  Result r = Yolopipe("");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("usage: yolopipe"));
}

TEST(CliTest, UnknownCommandIsUsageError) {
  Result r = Yolopipe("frobnicate");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("error: unknown command 'frobnicate'"));
}

TEST(CliTest, UnknownFlagIsUsageError) {
  Result r = Yolopipe("run --bogus=1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown flag --bogus"));
}

TEST(CliTest, MalformedNumberIsUsageError) {
  Result r = Yolopipe("run --batch=two");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--batch expects a whole number"));
}

TEST(CliTest, HelpListsFlags) {
  Result r = Yolopipe("run --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("--model"));
  EXPECT_THAT(r.out, HasSubstr("--devices"));
}

TEST(CliTest, MissingModelFileNamesThePath) {
  Result r = Yolopipe("info --model=" + Tmp("does_not_exist.onnx"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("error: "));
  EXPECT_THAT(r.err, HasSubstr("does_not_exist.onnx"));
}

TEST(CliTest, UnknownBuiltinNameIsExplained) {
  Result r = Yolopipe("info --model=yolov8q");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("yolov8q"));
}

TEST(CliTest, GarbageOnnxFileIsRejectedCleanly) {
  WriteFile(Tmp("garbage.onnx"), std::string(1000, '\x07') + "not a protobuf");
  Result r = Yolopipe("run --model=" + Tmp("garbage.onnx"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("error: "));
  EXPECT_THAT(r.err, HasSubstr("garbage.onnx"));
}

TEST(CliTest, TruncatedExportIsRejectedCleanly) {
  Result e = Yolopipe("export --model=yolov8n -o " + Tmp("n.onnx"));
  ASSERT_EQ(e.exit_code, 0) << e.err;
  const std::string bytes = ReadFile(Tmp("n.onnx"));
  ASSERT_GT(bytes.size(), 1000000u);
  WriteFile(Tmp("cut.onnx"), bytes.substr(0, bytes.size() / 2));
  Result r = Yolopipe("info --model=" + Tmp("cut.onnx"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("cut.onnx"));
}

TEST(CliTest, InputWithWrongChannelsIsRejected) {
  WriteFile(Tmp("four.npy"), Npy("(1, 4, 64, 64)", 4 * 64 * 64));
  Result r = Yolopipe("run --model=yolov8n --input=" + Tmp("four.npy"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("channels"));
}

TEST(CliTest, InputWithWrongRankIsRejected) {
  WriteFile(Tmp("rank3.npy"), Npy("(3, 64, 64)", 3 * 64 * 64));
  Result r = Yolopipe("run --model=yolov8n --input=" + Tmp("rank3.npy"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("(3, 64, 64)"));
}

TEST(CliTest, WrongDtypeInputIsRejected) {
  WriteFile(Tmp("f8.npy"), Npy("(1, 3, 2, 2)", 12, "<f8"));
  Result r = Yolopipe("run --model=yolov8n --input=" + Tmp("f8.npy"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("float32"));
}

TEST(CliTest, TruncatedNpyIsRejected) {
  std::string npy = Npy("(1, 3, 64, 64)", 3 * 64 * 64);
  WriteFile(Tmp("short.npy"), npy.substr(0, npy.size() - 10));
  Result r = Yolopipe("run --model=yolov8n --input=" + Tmp("short.npy"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("short.npy"));
}

TEST(CliTest, BadDevicesIsUsageError) {
  Result r = Yolopipe("run --devices=tpu:3");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--devices"));
}

// Without a GPU (here and in CI) the CUDA path reports it cleanly; with one, it runs.
TEST(CliTest, BenchOnCudaWithoutAGpuSaysSo) {
  Result r = Yolopipe("bench --device cuda:0 --imgsz 64 --repeats 1 --warmup 0");
  if (r.exit_code == 0) {
    EXPECT_THAT(r.out, HasSubstr("img/s"));
    GTEST_SKIP() << "a GPU is present: the CUDA bench ran";
  }
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("error: no CUDA devices"));
  Result bad = Yolopipe("bench --device cuda:0 --precision fp8 --imgsz 64");
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_THAT(bad.err, HasSubstr("--precision must be fp16 or fp32"));
}

// --nccl: what it needs is said before any GPU is looked for.
TEST(CliTest, NcclBetweenStagesStatesWhatItNeeds) {
  Result cpu = Yolopipe("run --imgsz 64 --mode pipeline --devices cpu:2 --nccl");
  EXPECT_NE(cpu.exit_code, 0);
  EXPECT_THAT(cpu.err, HasSubstr("nccl needs every stage on a CUDA device"));
  Result shared = Yolopipe("run --imgsz 64 --mode pipeline --devices cuda:0,0 --nccl");
  EXPECT_NE(shared.exit_code, 0);
  EXPECT_THAT(shared.err, HasSubstr("a distinct GPU per stage"));
  Result single = Yolopipe("run --imgsz 64 --devices cuda:0 --nccl");
  EXPECT_NE(single.exit_code, 0);
  EXPECT_THAT(single.err, HasSubstr("mode single has none"));
}

// profile-link between two CPU devices of one process, then plan with the measured link.
TEST(CliTest, ProfileLinkFeedsPlan) {
  const std::string dir = ::testing::TempDir();
  Result link = Yolopipe("profile-link --sizes 4K,256K,1M --repeats 3 --warmup 1 -o " + dir +
                         "/link.pbtxt");
  ASSERT_EQ(link.exit_code, 0) << link.err;
  EXPECT_THAT(link.out, HasSubstr("link: local"));
  EXPECT_THAT(link.out, HasSubstr("fit: latency"));
  EXPECT_THAT(link.out, HasSubstr("wrote"));
  Result profile = Yolopipe("profile --imgsz 64 --device cpu:2 --microbatches 1 --repeats 1 -o " +
                            dir + "/p.pbtxt");
  ASSERT_EQ(profile.exit_code, 0) << profile.err;
  Result plan = Yolopipe("plan --profile " + dir + "/p.pbtxt --stages 2 --link " + dir +
                         "/link.pbtxt -o " + dir + "/plan.json");
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_THAT(plan.out, HasSubstr("measured (local)"));
  Result missing = Yolopipe("plan --profile " + dir + "/p.pbtxt --stages 2 --link " + dir +
                            "/no_such_link.pbtxt -o " + dir + "/plan2.json");
  EXPECT_EQ(missing.exit_code, 1) << missing.err;
  EXPECT_THAT(missing.err, HasSubstr("no_such_link.pbtxt"));
  Result bad = Yolopipe("profile-link --sizes 4K,zz");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("--sizes"));
}

// profile-link over NCCL: how its ranks meet, and what a machine without a GPU says.
TEST(CliTest, ProfileLinkOverNcclWithoutGpu) {
  Result no_ranks = Yolopipe("profile-link --transport nccl");
  EXPECT_EQ(no_ranks.exit_code, 2) << no_ranks.err;
  EXPECT_THAT(no_ranks.err, HasSubstr("YOLOPIPE_BOOTSTRAP_DIR"));
  Result bad = Yolopipe("profile-link --transport tcp");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("--transport must be mpi, local or nccl"));
  Result mpi = Yolopipe("profile-link --transport mpi");
  EXPECT_EQ(mpi.exit_code, 2);
  EXPECT_THAT(mpi.err, HasSubstr("mpirun"));
  Result device = Yolopipe("profile-link --device cuda:0");
  EXPECT_EQ(device.exit_code, 2);
  EXPECT_THAT(device.err, HasSubstr("--device applies to --transport nccl"));
  // Rank 0 of 2 meeting through a directory: without a GPU it fails at once, before waiting for
  // rank 1 (which is never started). With a GPU it would wait for rank 1 until its deadline.
  if (::yolopipe::ListCudaDevices().ok()) GTEST_SKIP() << "a GPU is present";
  const std::string dir = ::testing::TempDir() + "/nccl_boot";
  ASSERT_EQ(std::system(("rm -rf " + dir + " && mkdir -p " + dir).c_str()), 0);
  setenv("YOLOPIPE_BOOTSTRAP_DIR", dir.c_str(), 1);
  setenv("YOLOPIPE_RANK", "0", 1);
  setenv("YOLOPIPE_WORLD_SIZE", "2", 1);
  Result alone = Yolopipe("profile-link --transport nccl");
  unsetenv("YOLOPIPE_BOOTSTRAP_DIR");
  unsetenv("YOLOPIPE_RANK");
  unsetenv("YOLOPIPE_WORLD_SIZE");
  EXPECT_EQ(alone.exit_code, 1) << alone.err;
  EXPECT_THAT(alone.err, HasSubstr("no CUDA devices"));
}

// Writes a 2x2 24-bit BMP (grey pixels).
void WriteTinyBmp(const std::string& path) {
  const unsigned char header[54] = {'B', 'M', 70, 0, 0, 0, 0, 0, 0, 0, 54, 0, 0, 0,  // file
                                    40, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 1, 0, 24, 0,  // info
                                    0, 0, 0, 0, 16, 0, 0, 0, 0x13, 0x0b, 0, 0, 0x13, 0x0b,
                                    0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(header), sizeof(header));
  const unsigned char row[8] = {128, 128, 128, 128, 128, 128, 0, 0};  // 2 pixels + padding
  out.write(reinterpret_cast<const char*>(row), sizeof(row));
  out.write(reinterpret_cast<const char*>(row), sizeof(row));
}

// Every command that runs the model takes CUDA devices; without a GPU (or a CUDA build) each
// says so, with an exit status of 1.
TEST(CliTest, CudaDevicesWithoutGpuFailClearly) {
  if (::yolopipe::ListCudaDevices().ok()) GTEST_SKIP() << "a GPU is present";
  const std::string dir = ::testing::TempDir() + "/cuda_inputs";
  ASSERT_EQ(std::system(("rm -rf " + dir + " && mkdir -p " + dir).c_str()), 0);
  WriteTinyBmp(dir + "/000001.bmp");
  for (const std::string& args : std::vector<std::string>{
           "run --imgsz 64 --devices cuda:0", "run --imgsz 64 --devices cuda:0,0 --mode pipeline",
        "run --imgsz 64 --devices cuda:0 --mode data --precision fp32",
        "compare --imgsz 64 --devices cuda:0,0 --batch 2",
        "detect --imgsz 64 --devices cuda:0 --image " + dir,
        "stream --imgsz 64 --devices cuda:0 --source " + dir,
        "profile --imgsz 64 --device cuda:0 -o " + dir + "/cuda_profile.pbtxt"}) {
    Result r = Yolopipe(args);
    EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr("no CUDA devices")) << args;
  }
  Result bad = Yolopipe("run --imgsz 64 --devices cuda:0 --precision int8");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("--precision must be fp16 or fp32"));
}

TEST(CliTest, ExportRequiresOutput) {
  Result r = Yolopipe("export --model=yolov8n");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("-o"));
}

TEST(CliTest, InfoReportsYolov8nFigures) {
  Result r = Yolopipe("info --model=yolov8n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Figures from YOLOV8.md (published Ultralytics numbers).
  EXPECT_THAT(r.out, HasSubstr("3,151,904"));
  EXPECT_THAT(r.out, HasSubstr("8.74 GFLOPs"));
  EXPECT_THAT(r.out, HasSubstr("(1, 84, 8400)"));
  EXPECT_THAT(r.out, HasSubstr("model.4.m.1.cv2"));
}

TEST(CliTest, RunWritesOutputOfTheRightShape) {
  Result r = Yolopipe("run --model=yolov8n --nc=3 --imgsz=128 --batch=2 --output=" +
                      Tmp("o.npy"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("img/s"));
  const std::string npy = ReadFile(Tmp("o.npy"));
  // 128x128 gives 16*16 + 8*8 + 4*4 = 336 anchors; 4 + 3 classes.
  EXPECT_THAT(npy, HasSubstr("'shape': (2, 7, 336)"));
  EXPECT_THAT(r.err, Not(HasSubstr("error")));
}

}  // namespace
