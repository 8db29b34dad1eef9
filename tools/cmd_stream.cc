// yolopipe stream: several videos / frame folders detected at once through one pipeline stream.
//
// Threads: one reader per source (decode + letterbox into the source's queue of a
// StreamMultiplexer), one pusher (round-robin micro-batches from all queues into the
// PipelineStream, shared without a copy), and the main thread popping outputs in push order,
// post-processing them and routing detections back to their source (JSON, annotated video).
#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/artifact_io.h"
#include "runtime/detect/draw.h"
#include "runtime/detect/image.h"
#include "runtime/detect/letterbox.h"
#include "runtime/detect/nms.h"
#include "runtime/detect/stream_mux.h"
#include "runtime/detect/video.h"
#include "runtime/device.h"
#include "runtime/pipeline/pipeline.h"
#include "runtime/pipeline/tagged_stream.h"
#include "runtime/proto/plan.pb.h"
#include "tools/cli_common.h"
#include "tools/interrupt.h"

namespace yolopipe::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr char kHelp[] =
    "Detect objects in several videos, cameras or frame folders at once: frames of all sources are "
    "interleaved round-robin into the micro-batches of one pipeline (any mode); detections go "
    "back to per-source JSON (<json-dir>/<name>.json) and annotated videos "
    "(<out-dir>/<name>.mp4). Prints per-stream FPS, decode-to-result latency and dropped "
    "frames.\nexit status: 0 when every source was read to its end (or --max-frames); 1 when a "
    "source cannot be opened or decoded, or the model, pipeline or an output failed; 2 for bad "
    "usage";

// One decoded frame waiting to be batched. Under --policy block its reader letterboxes it at
// once (readers work in parallel and every frame is used). Under --policy drop it waits as
// decoded pixels and is letterboxed only if it is batched, so dropped frames cost no
// pre-processing.
struct QueuedFrame {
  Tensor input;  // (1, 3, S, S) once letterboxed; undefined before
  LetterboxTransform transform;
  int width = 0, height = 0;
  Clock::time_point decoded;
  std::optional<Image> image;  // kept only for annotated video
};

// What a pushed micro-batch carries: its frames' tags and frames (inputs released; transform,
// timing and image kept).
struct InFlight {
  std::vector<FrameTag> tags;
  std::vector<QueuedFrame> frames;
};

struct FrameResult {
  int64_t frame = 0;
  int width = 0, height = 0;
  std::vector<Detection> detections;
};

struct SourceState {
  std::string path;
  std::string name;  // output file stem, unique among the sources
  std::unique_ptr<FrameSource> reader;
  std::vector<FrameResult> results;
  std::vector<double> latency_ms;
  double last_result_s = 0;
  std::unique_ptr<VideoWriter> writer;
  // Why this source ended early (a frame that cannot be decoded); written by its reader thread,
  // read after the readers have joined. The other sources go on.
  std::string error;
};

std::string ToJson(const SourceState& s, int64_t dropped,
                   const std::vector<std::string>& class_names) {
  std::string out = absl::StrCat("{\"source\": ", JsonString(s.path), ", \"frames_processed\": ",
                                 s.results.size(), ", \"frames_dropped\": ", dropped,
                                 ", \"complete\": ",
                                 InterruptRequested() || !s.error.empty() ? "false" : "true",
                                 s.error.empty() ? "" : ", \"error\": " + JsonString(s.error),
                                 ", \"frames\": [\n");
  for (size_t i = 0; i < s.results.size(); ++i) {
    const FrameResult& r = s.results[i];
    absl::StrAppend(&out, "  {\"frame\": ", r.frame, ", \"width\": ", r.width, ", \"height\": ",
                    r.height, ", \"detections\": ");
    absl::StrAppend(&out, DetectionsJsonArray(r.detections, class_names), "}",
                    i + 1 < s.results.size() ? ",\n" : "\n");
  }
  return out + "]}\n";
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t k = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size()))) ;
  return v[std::min(v.size() - 1, k == 0 ? 0 : k - 1)];
}

absl::Status EnsureDirectory(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, ": cannot create output directory: ", ec.message()));
  }
  return absl::OkStatus();
}

// The largest even-sized top-left crop (video encoders need even sizes).
Image EvenCrop(const Image& im) {
  const int w = im.width & ~1, h = im.height & ~1;
  if (w == im.width && h == im.height) return im;
  Image out(w, h);
  for (int y = 0; y < h; ++y) std::memcpy(out.at(0, y), im.at(0, y), static_cast<size_t>(w) * 3);
  return out;
}

}  // namespace

int StreamCommand(const std::vector<std::string>& args) {
  FlagSet flags("stream", kHelp);
  AddModelFlags(flags);
  flags.AddString("source", "",
                  "a video file, a URL (rtsp://, http://, file://), a camera (/dev/video0), any "
                  "FFmpeg video input device as DEVICE:INPUT (v4l2:/dev/video2, "
                  "lavfi:testsrc=size=640x480:rate=30, x11grab::0.0), or a folder of images "
                  "(sorted); repeat for more. Cameras run until --max-frames or Ctrl-C");
  flags.AddString("capture-size", "", "cameras: ask for this frame size, WIDTHxHEIGHT");
  flags.AddDouble("capture-fps", 0, "cameras: ask for this frame rate (0: the device's)");
  flags.AddString("policy", "block",
                  "when a source's queue is full: block (the reader waits, no frame is lost) or "
                  "drop (the oldest queued frame is dropped and counted)");
  flags.AddInt("queue", 4, "frames queued per source before the policy applies");
  flags.AddString("json-dir", "", "write <json-dir>/<name>.json with every frame's detections");
  flags.AddString("out-dir", "", "write <out-dir>/<name>.mp4 with boxes and labels drawn");
  flags.AddInt("max-frames", 0, "read at most this many frames per source (0: all)");
  flags.AddBool("realtime", false,
                "read each source at its frame rate, as a camera delivers frames, instead of as "
                "fast as it decodes (frame folders and videos without a rate use --fps)");
  flags.AddDouble("fps", 25, "--realtime: the frame rate of frame folders");
  AddPostprocessFlags(flags, "frame");
  AddPipelineFlags(flags, "frames per micro-batch (0: the plan's, else the number of sources)");

  std::vector<std::string> rest, inputs;
  std::string source_error;
  if (!ExtractRepeatedFlag(args, "source", &rest, &inputs, &source_error)) {
    std::cerr << "error: " << source_error << "\n\n" << flags.Usage();
    return kExitUsage;
  }
  if (int rc = ParseOrExit(flags, rest); rc >= 0) return rc;
  if (inputs.empty()) {
    std::cerr << "error: give at least one --source VIDEO|DIR\n\n" << flags.Usage();
    return kExitUsage;
  }
  if (inputs.size() > 256) {
    std::cerr << "error: at most 256 sources, got " << inputs.size() << "\n";
    return kExitUsage;
  }
  absl::StatusOr<PostprocessOptions> post = PostprocessFromFlags(flags);
  if (!post.ok()) {
    std::cerr << "error: " << post.status().message() << "\n";
    return kExitUsage;
  }
  auto policy = ParseBackpressurePolicy(flags.GetString("policy"));
  if (!policy.ok()) {
    std::cerr << "error: --" << policy.status().message() << "\n";
    return kExitUsage;
  }
  const int64_t queue = flags.GetInt("queue");
  const int64_t max_frames = flags.GetInt("max-frames");
  if (queue < 1 || queue > 1024 || max_frames < 0) {
    std::cerr << "error: --queue must be in [1, 1024] and --max-frames >= 0\n";
    return kExitUsage;
  }
  const bool realtime = flags.GetBool("realtime");
  const double folder_fps = flags.GetDouble("fps");
  if (!(folder_fps > 0 && folder_fps <= 1000)) {
    std::cerr << "error: --fps must be in (0, 1000]\n";
    return kExitUsage;
  }
  absl::StatusOr<PipelineFlags> run_flags = ParsePipelineFlags(flags);
  if (!run_flags.ok()) {
    std::cerr << "error: " << run_flags.status().message() << "\n";
    return kExitUsage;
  }
  if (flags.GetInt("microbatch") > 4096) {
    std::cerr << "error: --microbatch must be in [0, 4096]\n";
    return kExitUsage;
  }
  CaptureOptions capture;
  capture.video_size = flags.GetString("capture-size");
  capture.framerate = flags.GetDouble("capture-fps");
  if (!capture.video_size.empty()) {
    int w = 0, h = 0;
    char tail = 0;
    if (std::sscanf(capture.video_size.c_str(), "%dx%d%c", &w, &h, &tail) != 2 || w < 1 ||
        h < 1 || w > 16384 || h > 16384) {
      std::cerr << "error: --capture-size must be WIDTHxHEIGHT (e.g. 640x480), got '"
                << capture.video_size << "'\n";
      return kExitUsage;
    }
  }
  if (!(capture.framerate >= 0 && capture.framerate <= 1000)) {
    std::cerr << "error: --capture-fps must be in [0, 1000]\n";
    return kExitUsage;
  }
  const std::string json_dir = flags.GetString("json-dir");
  const std::string out_dir = flags.GetString("out-dir");
  // Under mpirun/srun every rank runs one stage; rank 0 reads the sources and writes every
  // output. Once MPI is up, a failure on rank 0 must end the job (FailRank), or the other ranks
  // would wait for it.
  std::unique_ptr<MpiRuntime> mpi;
  if (absl::Status s = InitMpiIfLaunched(&mpi); !s.ok()) return ReportError(s);
  const bool serving = mpi != nullptr && mpi->rank() != 0;
  for (const std::string& dir : {json_dir, out_dir}) {
    if (dir.empty() || serving) continue;
    if (absl::Status s = EnsureDirectory(dir); !s.ok()) return FailRank(mpi.get(), s);
  }

  // Open every source first: a missing or unreadable one stops before any work.
  const int num_sources = static_cast<int>(inputs.size());
  std::vector<SourceState> sources(num_sources);
  std::set<std::string> used_names;
  for (int i = 0; i < num_sources && !serving; ++i) {
    SourceState& s = sources[i];
    s.path = inputs[i];
    auto reader = OpenFrameSource(s.path, capture);
    if (!reader.ok()) return FailRank(mpi.get(), reader.status());
    s.reader = std::move(*reader);
    std::string stem = fs::path(s.path).filename().string();
    if (stem.empty()) stem = fs::path(s.path).parent_path().filename().string();
    if (!VideoReader::DeviceOf(s.path).empty()) {
      // A device spec ("lavfi:testsrc=size=640x480", "/dev/video0") names its output files with
      // its letters and digits only.
      for (char& c : stem) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') c = '_';
      }
    } else {
      stem = fs::path(stem).stem().string();
    }
    if (stem.empty()) stem = "source";
    s.name = stem;
    for (int k = 2; used_names.count(s.name) > 0; ++k) s.name = absl::StrCat(stem, "_", k);
    used_names.insert(s.name);
  }

  auto model = LoadModelFromFlags(flags);
  if (!model.ok()) return FailRank(mpi.get(), model.status());
  auto shape = InputShapeFor(*model, 1, flags.GetInt("imgsz"));
  if (!shape.ok()) return FailRank(mpi.get(), shape.status());
  if ((*shape)[2] != (*shape)[3]) {
    return FailRank(mpi.get(), absl::InvalidArgumentError(absl::StrCat(
                                   "stream needs a square model input, got ", ShapeToString(*shape))));
  }
  const int64_t size = (*shape)[2];

  proto::Plan plan;
  absl::StatusOr<PipelineOptions> options =
      PipelineOptionsFromFlags(flags, *run_flags, /*default_microbatch=*/num_sources, &plan);
  if (!options.ok()) return FailRank(mpi.get(), options.status());
  OpenedStream opened;
  if (int rc = OpenOneStream(*model, size, *options, mpi.get(), "sources", &opened); rc >= 0) {
    return rc;
  }
  Pipeline& p = *opened.pipeline;
  PipelineStream& stream = *opened.stream;
  const int mb = stream.microbatch();
  std::cout << "yolopipe stream: " << model->source << ", mode " << ModeName(run_flags->mode)
            << ", " << p.num_replicas() << " replica(s) x " << p.num_stages() << " stage(s), micro-batch "
            << mb << ", " << num_sources << " source(s) at " << size << "x" << size
            << ", policy " << BackpressurePolicyName(*policy) << "\n";

  const bool annotate = !out_dir.empty();
  StreamMultiplexer<QueuedFrame> mux(num_sources, static_cast<int>(queue), *policy);
  std::mutex error_mu;
  absl::Status first_error;  // guarded by error_mu
  const auto fail = [&](const absl::Status& s) {
    {
      std::lock_guard<std::mutex> lock(error_mu);
      if (first_error.ok()) first_error = s;
    }
    mux.Cancel();
    stream.Cancel(s);
  };
  const auto start = Clock::now();

  // SIGINT/SIGTERM end every source as if its input ended: the frames in flight come out, the
  // videos are closed and the JSON says "complete": false.
  GracefulInterruptScope graceful;
  const bool letterbox_in_readers = *policy == BackpressurePolicy::kBlock;
  std::vector<std::thread> readers;
  for (int i = 0; i < num_sources; ++i) {
    readers.emplace_back([&, i] {
      FrameSource& reader = *sources[i].reader;
      // A frame that cannot be decoded ends this source only: the others go on, and the run
      // reports it (JSON "error", exit status 1) once everything else is written.
      const auto end_source = [&](int64_t n, const absl::Status& s) {
        sources[i].error = absl::StrCat("frame ", n, ": ", s.message());
        std::cerr << "warning: stream " << i << " " << sources[i].path << ": " << sources[i].error
                  << "; this source ends here, the others go on\n";
      };
      // --realtime: frame n is read no earlier than n frame periods after the start, as a
      // camera would deliver it; the backpressure policy then decides what a slow pipeline loses.
      const double fps = reader.fps() > 0 ? reader.fps() : folder_fps;
      const auto paced_from = Clock::now();
      for (int64_t n = 0; (max_frames == 0 || n < max_frames) && !InterruptRequested(); ++n) {
        if (realtime) {
          std::this_thread::sleep_until(
              paced_from + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(static_cast<double>(n) / fps)));
        }
        auto frame = reader.Next();
        if (!frame.ok()) {
          end_source(n, frame.status());
          break;
        }
        if (!frame->has_value()) break;
        QueuedFrame q;
        q.decoded = Clock::now();
        q.width = (*frame)->width;
        q.height = (*frame)->height;
        if (letterbox_in_readers) {
          q.input = Tensor(DType::kFloat32, {1, 3, size, size});
          auto t = LetterboxIntoBatch(**frame, q.input, 0);
          if (!t.ok()) {
            end_source(n, t.status());
            break;
          }
          q.transform = *t;
        }
        if (annotate || !letterbox_in_readers) q.image = std::move(**frame);
        if (!mux.Push(i, std::move(q)).ok()) break;  // cancelled
      }
      mux.CloseSource(i);
    });
  }

  TaggedStream<InFlight> tagged(stream);
  std::thread pusher([&] {
    const int64_t image_elems = 3 * size * size;
    while (true) {
      auto batch = mux.NextBatch(mb);
      if (batch.empty()) break;
      InFlight f;
      Tensor input(DType::kFloat32, {static_cast<int64_t>(batch.size()), 3, size, size});
      for (size_t k = 0; k < batch.size(); ++k) {
        QueuedFrame& q = batch[k].frame;
        if (!q.input.defined()) {
          auto t = LetterboxIntoBatch(*q.image, input, static_cast<int64_t>(k));
          if (!t.ok()) {
            fail(absl::InvalidArgumentError(absl::StrCat(
                "stream ", batch[k].tag.source, " frame ", batch[k].tag.frame, ": ",
                t.status().message())));
            break;
          }
          q.transform = *t;
          if (!annotate) q.image.reset();
        } else {
          std::memcpy(input.data<float>() + k * image_elems, q.input.data<float>(),
                      static_cast<size_t>(image_elems) * sizeof(float));
          q.input = Tensor();
        }
        f.tags.push_back(batch[k].tag);
        f.frames.push_back(std::move(batch[k].frame));
      }
      if (absl::Status s = tagged.Push(input, std::move(f)); !s.ok()) {
        fail(s);
        break;
      }
    }
    stream.CloseInput();
  });

  const std::vector<std::string>& class_names = model->metadata.class_names;
  StreamDemultiplexer<FrameResult> demux(num_sources);
  std::vector<std::map<int64_t, Image>> images(num_sources);  // annotated frames awaiting order
  int64_t total = 0;
  while (true) {
    auto popped = tagged.Pop();
    if (!popped.ok()) {
      if (popped.status().code() != absl::StatusCode::kOutOfRange) fail(popped.status());
      break;
    }
    const Tensor& output = popped->output;
    InFlight& f = popped->context;
    const int64_t rows = output.dim(1), anchors = output.dim(2);
    bool failed = false;
    for (size_t k = 0; k < f.frames.size() && !failed; ++k) {
      QueuedFrame& q = f.frames[k];
      const FrameTag tag = f.tags[k];
      auto dets = Postprocess(output.data<float>() + k * rows * anchors, rows, anchors, *post);
      if (!dets.ok()) {
        fail(dets.status());
        failed = true;
        break;
      }
      for (Detection& d : *dets) MapBoxToOriginal(q.transform, &d.x1, &d.y1, &d.x2, &d.y2);
      SourceState& s = sources[tag.source];
      const auto now = Clock::now();
      s.latency_ms.push_back(std::chrono::duration<double, std::milli>(now - q.decoded).count());
      s.last_result_s = std::chrono::duration<double>(now - start).count();
      if (annotate && q.image.has_value()) {
        for (const Detection& d : *dets) {
          DrawDetection(*q.image, d,
                        d.class_id < static_cast<int>(class_names.size())
                            ? class_names[d.class_id]
                            : std::to_string(d.class_id));
        }
        images[tag.source].emplace(tag.frame, std::move(*q.image));
      }
      absl::Status st = demux.Expect(tag);
      if (st.ok()) st = demux.Deliver(tag, FrameResult{tag.frame, q.width, q.height, std::move(*dets)});
      if (!st.ok()) {
        fail(absl::InternalError(absl::StrCat("stream routing: ", st.message())));
        failed = true;
        break;
      }
      for (auto& [index, result] : demux.TakeReady(tag.source)) {
        if (annotate) {
          auto it = images[tag.source].find(index);
          if (it != images[tag.source].end()) {
            Image frame = EvenCrop(it->second);
            images[tag.source].erase(it);
            if (s.writer == nullptr) {
              const double fps = s.reader->fps() > 0 ? s.reader->fps() : 25.0;
              auto w = VideoWriter::Open((fs::path(out_dir) / (s.name + ".mp4")).string(),
                                         frame.width, frame.height, fps);
              if (!w.ok()) {
                fail(w.status());
                failed = true;
                break;
              }
              s.writer = std::move(*w);
            }
            if (absl::Status ws = s.writer->Write(frame); !ws.ok()) {
              fail(ws);
              failed = true;
              break;
            }
          }
        }
        s.results.push_back(std::move(result));
        ++total;
      }
    }
    if (failed) break;
  }
  pusher.join();
  for (auto& t : readers) t.join();
  PipelineStats stats;
  absl::Status finished = stream.Finish(&stats);
  absl::Status failed_with;
  {
    std::lock_guard<std::mutex> lock(error_mu);
    if (!first_error.ok()) failed_with = first_error;
  }
  if (failed_with.ok()) failed_with = finished;
  if (!failed_with.ok()) {
    // The videos written so far are closed (kept, as a run that fails without MPI keeps them)
    // before an MPI abort could leave them as temporary files.
    for (SourceState& s : sources) {
      if (s.writer != nullptr) s.writer->Close().IgnoreError();
    }
    return FailRank(mpi.get(), failed_with);
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  int64_t dropped_total = 0;
  for (int i = 0; i < num_sources; ++i) {
    SourceState& s = sources[i];
    const int64_t dropped = mux.dropped(i);
    dropped_total += dropped;
    if (s.writer != nullptr) {
      if (absl::Status ws = s.writer->Close(); !ws.ok()) return ReportError(ws);
    }
    if (!json_dir.empty()) {
      const std::string path = (fs::path(json_dir) / (s.name + ".json")).string();
      if (absl::Status ws = WriteFileAtomically(path, ToJson(s, dropped, class_names)); !ws.ok()) {
        return ReportError(ws);
      }
    }
    std::cout << absl::StrFormat(
        "stream %d %s: %d frame(s), %d dropped, %.2f FPS, latency p50 %.1f ms p99 %.1f ms\n", i,
        s.path, s.results.size(), dropped,
        s.last_result_s > 0 ? s.results.size() / s.last_result_s : 0.0,
        Percentile(s.latency_ms, 0.50), Percentile(s.latency_ms, 0.99));
  }
  if (!json_dir.empty()) std::cout << "wrote " << num_sources << " JSON file(s) to " << json_dir << "\n";
  if (annotate) std::cout << "wrote annotated video(s) to " << out_dir << "\n";
  std::cout << absl::StrFormat("total: %d frame(s), %d dropped, %.2f FPS over %.2f s\n", total,
                               dropped_total, seconds > 0 ? total / seconds : 0.0, seconds);
  if (InterruptRequested()) {
    std::cerr << "interrupted by " << InterruptSignalName()
              << ": the sources were ended early; every frame read was processed and written\n";
    return InterruptExitCode();
  }
  std::vector<std::string> failed_sources;
  for (int i = 0; i < num_sources; ++i) {
    if (!sources[i].error.empty()) {
      failed_sources.push_back(absl::StrCat("stream ", i, " ", sources[i].path, ": ",
                                            sources[i].error));
    }
  }
  if (!failed_sources.empty()) {
    return ReportError(absl::DataLossError(absl::StrCat(
        failed_sources.size(), " of ", num_sources, " source(s) ended early (their frames before "
        "the error were processed and written): ", absl::StrJoin(failed_sources, "; "))));
  }
  return kExitOk;
}

}  // namespace yolopipe::cli
