// yolopipe detect: images in, boxes out (annotated PNGs and JSON), through any parallel mode.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <system_error>
#include <thread>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "runtime/artifact_io.h"
#include "runtime/detect/draw.h"
#include "runtime/detect/image.h"
#include "runtime/detect/letterbox.h"
#include "runtime/detect/nms.h"
#include "runtime/device.h"
#include "runtime/pipeline/pipeline.h"
#include "runtime/pipeline/tagged_stream.h"
#include "runtime/proto/plan.pb.h"
#include "tools/cli_common.h"
#include "tools/interrupt.h"

namespace yolopipe::cli {
namespace {

namespace fs = std::filesystem;

constexpr char kExitCodesHelp[] =
    "exit status: 0 when at least one image was processed (unreadable or corrupt images are "
    "reported as 'warning: skipping FILE: reason' and skipped); 1 when no image could be "
    "processed or the model, pipeline or an output file failed; 2 for bad usage";

bool IsImageExtension(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp";
}

// Directories expand to their image files (sorted, not recursive); anything else is taken as a
// file (a missing one is reported when it is decoded).
absl::StatusOr<std::vector<std::string>> ExpandInputs(const std::vector<std::string>& inputs) {
  std::vector<std::string> files;
  for (const std::string& in : inputs) {
    std::error_code ec;
    if (!fs::is_directory(in, ec)) {
      files.push_back(in);
      continue;
    }
    std::vector<std::string> found;
    for (fs::directory_iterator it(in, ec), end; !ec && it != end; it.increment(ec)) {
      std::error_code fec;
      if (it->is_regular_file(fec) && IsImageExtension(it->path())) {
        found.push_back(it->path().string());
      }
    }
    if (ec) {
      return absl::InvalidArgumentError(absl::StrCat(in, ": cannot list directory: ", ec.message()));
    }
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  return files;
}

// One decoded image and what post-processing needs of it.
struct PreparedImage {
  std::string file;
  Image image;  // kept only when annotated PNGs are written
  int width = 0, height = 0;
  LetterboxTransform transform;
};
// A micro-batch ready to push: images letterboxed straight into its (m, 3, S, S) input.
struct PreparedMicroBatch {
  Tensor input;
  std::vector<PreparedImage> images;
};
struct PreparedBatch {
  std::vector<PreparedMicroBatch> micro_batches;
  std::vector<std::string> warnings;  // "skipping FILE: reason"
};

// Decodes files[begin, end) and letterboxes the readable ones into micro-batches of at most
// `microbatch` images.
PreparedBatch Prepare(const std::vector<std::string>& files, size_t begin, size_t end,
                      int64_t size, size_t microbatch, bool keep_images) {
  PreparedBatch batch;
  std::vector<PreparedImage> images;
  std::vector<Image> decoded;
  for (size_t i = begin; i < end; ++i) {
    auto image = DecodeImageFile(files[i]);
    if (!image.ok()) {
      // The decoder's message already starts with the file name; say it once.
      std::string reason(image.status().message());
      if (absl::StartsWith(reason, files[i] + ": ")) reason.erase(0, files[i].size() + 2);
      batch.warnings.push_back(absl::StrCat("skipping ", files[i], ": ", reason));
      continue;
    }
    PreparedImage p;
    p.file = files[i];
    p.width = image->width;
    p.height = image->height;
    images.push_back(std::move(p));
    decoded.push_back(std::move(*image));
  }
  for (size_t off = 0; off < decoded.size(); off += microbatch) {
    const size_t m = std::min(microbatch, decoded.size() - off);
    PreparedMicroBatch mb;
    mb.input = Tensor(DType::kFloat32, {static_cast<int64_t>(m), 3, size, size});
    for (size_t k = 0; k < m; ++k) {
      PreparedImage& p = images[off + k];
      auto t = LetterboxIntoBatch(decoded[off + k], mb.input, static_cast<int64_t>(k));
      // Cannot fail: the tensor was made for it and the image decoded non-empty.
      p.transform = t.ok() ? *t : LetterboxTransform{};
      if (keep_images) p.image = std::move(decoded[off + k]);
      mb.images.push_back(std::move(p));
    }
    batch.micro_batches.push_back(std::move(mb));
  }
  return batch;
}

struct ImageResult {
  std::string file;
  int width = 0, height = 0;
  std::vector<Detection> detections;  // original-image pixels
};

std::string ToJson(const std::vector<ImageResult>& results,
                   const std::vector<std::string>& class_names) {
  std::string out = "[\n";
  for (size_t i = 0; i < results.size(); ++i) {
    const ImageResult& r = results[i];
    absl::StrAppend(&out, "  {\"file\": ", JsonString(r.file), ", \"width\": ", r.width,
                    ", \"height\": ", r.height, ", \"detections\": ");
    absl::StrAppend(&out, DetectionsJsonArray(r.detections, class_names), "}",
                    i + 1 < results.size() ? ",\n" : "\n");
  }
  return out + "]\n";
}

}  // namespace

int DetectCommand(const std::vector<std::string>& args) {
  FlagSet flags("detect",
                absl::StrCat("Detect objects in images: annotated PNGs and JSON, through any "
                             "mode (single, pipeline, data, hybrid).\n",
                             kExitCodesHelp));
  AddModelFlags(flags);
  flags.AddString("image", "",
                  "an image file (.jpg .jpeg .png .bmp) or a directory of them (sorted); repeat "
                  "for more");
  flags.AddString("out", "", "write <out>/<name>.png with boxes and labels for every image");
  flags.AddString("json", "", "write detections of every image as JSON to this file");
  AddPostprocessFlags(flags, "image");
  flags.AddInt("batch", 8,
               "images decoded and letterboxed at a time, ahead of the pipeline (which takes them "
               "in micro-batches of --microbatch)");
  AddPipelineFlags(flags, "images per micro-batch (0: the plan's, else 1)");

  std::vector<std::string> rest, inputs;
  std::string image_error;
  if (!ExtractRepeatedFlag(args, "image", &rest, &inputs, &image_error)) {
    std::cerr << "error: " << image_error << "\n\n" << flags.Usage();
    return kExitUsage;
  }
  if (int rc = ParseOrExit(flags, rest); rc >= 0) return rc;
  if (inputs.empty()) {
    std::cerr << "error: give at least one --image FILE|DIR\n\n" << flags.Usage();
    return kExitUsage;
  }
  absl::StatusOr<PostprocessOptions> post = PostprocessFromFlags(flags);
  if (!post.ok()) {
    std::cerr << "error: " << post.status().message() << "\n";
    return kExitUsage;
  }
  const int64_t batch_size = flags.GetInt("batch");
  if (batch_size < 1 || batch_size > 4096) {
    std::cerr << "error: --batch must be in [1, 4096], got " << batch_size << "\n";
    return kExitUsage;
  }
  absl::StatusOr<PipelineFlags> run_flags = ParsePipelineFlags(flags);
  if (!run_flags.ok()) {
    std::cerr << "error: " << run_flags.status().message() << "\n";
    return kExitUsage;
  }

  // Under mpirun/srun every rank runs one stage; rank 0 reads the images and writes every
  // output. Once MPI is up, a failure on rank 0 must end the job (FailRank), or the other ranks
  // would wait for it.
  std::unique_ptr<MpiRuntime> mpi;
  if (absl::Status s = InitMpiIfLaunched(&mpi); !s.ok()) return ReportError(s);
  const bool serving = mpi != nullptr && mpi->rank() != 0;
  std::vector<std::string> files;
  const std::string out_dir = flags.GetString("out");
  if (!serving) {
    auto expanded = ExpandInputs(inputs);
    if (!expanded.ok()) return FailRank(mpi.get(), expanded.status());
    files = std::move(*expanded);
    if (files.empty()) {
      return FailRank(mpi.get(), absl::InvalidArgumentError(
                                     "no images found (directories are searched for .jpg .jpeg "
                                     ".png .bmp files)"));
    }
    if (!out_dir.empty()) {
      std::error_code ec;
      fs::create_directories(out_dir, ec);
      if (ec || !fs::is_directory(out_dir)) {
        return FailRank(mpi.get(), absl::InvalidArgumentError(absl::StrCat(
                                       out_dir, ": cannot create output directory: ", ec.message())));
      }
    }
  }

  auto model = LoadModelFromFlags(flags);
  if (!model.ok()) return FailRank(mpi.get(), model.status());
  auto shape = InputShapeFor(*model, 1, flags.GetInt("imgsz"));
  if (!shape.ok()) return FailRank(mpi.get(), shape.status());
  if ((*shape)[2] != (*shape)[3]) {
    return FailRank(mpi.get(), absl::InvalidArgumentError(absl::StrCat(
                                   "detect needs a square model input, got ", ShapeToString(*shape))));
  }
  const int64_t size = (*shape)[2];

  proto::Plan plan;
  absl::StatusOr<PipelineOptions> options =
      PipelineOptionsFromFlags(flags, *run_flags, /*default_microbatch=*/1, &plan);
  if (!options.ok()) return FailRank(mpi.get(), options.status());
  OpenedStream opened;
  if (int rc = OpenOneStream(*model, size, *options, mpi.get(), "images", &opened); rc >= 0) {
    return rc;
  }
  Pipeline& p = *opened.pipeline;
  PipelineStream& stream = *opened.stream;
  const size_t mb = static_cast<size_t>(stream.microbatch());
  std::cout << "yolopipe detect: " << model->source << ", mode " << ModeName(run_flags->mode)
            << ", " << p.num_replicas() << " replica(s) x " << p.num_stages() << " stage(s), micro-batch "
            << mb << ", " << files.size() << " image(s) at " << size << "x" << size << "\n";

  const std::vector<std::string>& class_names = model->metadata.class_names;
  const bool annotate = !out_dir.empty();
  const size_t n = files.size();
  const size_t chunk = static_cast<size_t>(batch_size);
  // Each pushed micro-batch carries its images (names, sizes, letterbox, pixels to annotate).
  TaggedStream<std::vector<PreparedImage>> tagged(stream);
  std::atomic<int64_t> skipped{0};
  std::atomic<size_t> attempted{0};  // images taken from the input (processed or skipped)
  // SIGINT/SIGTERM: no more images are taken; those in flight are finished and kept (below).
  GracefulInterruptScope graceful;
  const auto start = std::chrono::steady_clock::now();
  // Decoding and letterboxing run on their own thread, --batch images at a time, ahead of the
  // pipeline as far as the stream's capacity lets them.
  std::thread producer([&] {
    for (size_t begin = 0; begin < n && !InterruptRequested(); begin += chunk) {
      const size_t end = std::min(n, begin + chunk);
      PreparedBatch batch = Prepare(files, begin, end, size, mb, annotate);
      for (const std::string& w : batch.warnings) std::cerr << "warning: " << w << "\n";
      skipped += static_cast<int64_t>(batch.warnings.size());
      for (PreparedMicroBatch& micro : batch.micro_batches) {
        if (!tagged.Push(micro.input, std::move(micro.images)).ok()) {
          stream.CloseInput();  // the stream failed or was cancelled: Pop says why
          return;
        }
      }
      attempted = end;
    }
    stream.CloseInput();
  });

  std::vector<ImageResult> results;
  std::set<std::string> used_names;
  int64_t detections = 0;
  ProgressLine progress("detect", static_cast<int64_t>(n));
  absl::Status failure;
  while (failure.ok()) {
    auto popped = tagged.Pop();
    if (!popped.ok()) {
      if (popped.status().code() != absl::StatusCode::kOutOfRange) failure = popped.status();
      break;
    }
    const Tensor& output = popped->output;
    const int64_t rows = output.dim(1), anchors = output.dim(2);
    for (size_t i = 0; i < popped->context.size() && failure.ok(); ++i) {
      PreparedImage& im = popped->context[i];
      auto dets = Postprocess(output.data<float>() + i * rows * anchors, rows, anchors, *post);
      if (!dets.ok()) {
        failure = dets.status();
        break;
      }
      for (Detection& d : *dets) MapBoxToOriginal(im.transform, &d.x1, &d.y1, &d.x2, &d.y2);
      detections += static_cast<int64_t>(dets->size());
      if (annotate) {
        for (const Detection& d : *dets) {
          const std::string name = d.class_id < static_cast<int>(class_names.size())
                                       ? class_names[d.class_id]
                                       : std::to_string(d.class_id);
          DrawDetection(im.image, d, name);
        }
        // <out>/<stem>.png; a name already used (two inputs with one stem) gets _2, _3, ...
        const std::string stem = fs::path(im.file).stem().string();
        std::string name = stem + ".png";
        for (int k = 2; used_names.count(name) > 0; ++k) name = absl::StrCat(stem, "_", k, ".png");
        used_names.insert(name);
        const std::string path = (fs::path(out_dir) / name).string();
        std::error_code ec;
        if (fs::equivalent(path, im.file, ec)) {
          failure = absl::InvalidArgumentError(
              absl::StrCat(path, ": refusing to overwrite an input image; choose another --out"));
          break;
        }
        if (absl::Status s = WritePng(path, im.image); !s.ok()) {
          failure = s;
          break;
        }
      }
      results.push_back({im.file, im.width, im.height, std::move(*dets)});
    }
    progress.Update(static_cast<int64_t>(results.size()) + skipped.load());
  }
  if (!failure.ok()) stream.Cancel(failure);
  producer.join();
  absl::Status finished = stream.Finish();
  progress.Done();
  if (!failure.ok()) return FailRank(mpi.get(), failure);
  if (!finished.ok()) return FailRank(mpi.get(), finished);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  if (!flags.GetString("json").empty()) {
    // An interrupted run keeps its detections, under a name that says they are not all of them.
    const std::string json_path =
        flags.GetString("json") + (InterruptRequested() ? ".partial" : "");
    if (absl::Status s = WriteFileAtomically(json_path, ToJson(results, class_names)); !s.ok()) {
      return ReportError(s);
    }
    std::cout << "wrote " << json_path << "\n";
  }
  if (annotate) std::cout << "wrote " << results.size() << " annotated PNG(s) to " << out_dir << "\n";
  std::cout << absl::StrFormat("%d image(s) processed, %d skipped, %d detection(s), %.2f img/s\n",
                               results.size(), skipped.load(), detections,
                               seconds > 0 ? results.size() / seconds : 0.0);
  if (InterruptRequested()) {
    std::cerr << absl::StrFormat("interrupted by %s after %d of %d image(s)%s\n",
                                 InterruptSignalName(), attempted.load(), n,
                                 flags.GetString("json").empty()
                                     ? ""
                                     : "; their detections are in the .partial JSON, the JSON "
                                       "itself was not written");
    return InterruptExitCode();
  }
  if (results.empty()) {
    return ReportError(absl::InvalidArgumentError(
        absl::StrCat("no image could be processed (", skipped.load(), " skipped)")));
  }
  return kExitOk;
}

}  // namespace yolopipe::cli
