// Video and frame-folder input, video output (FFmpeg 5.1: libavformat/libavcodec/libswscale).
//
// Readers hand out decoded frames as RGB Images one at a time; a writer encodes RGB Images into a
// video file. None of these classes is thread-safe: use one object from one thread at a time
// (distinct objects may be used from distinct threads concurrently).
#ifndef YOLOPIPE_RUNTIME_DETECT_VIDEO_H_
#define YOLOPIPE_RUNTIME_DETECT_VIDEO_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/detect/image.h"

namespace yolopipe {

// A sequence of frames: a video file or a folder of images.
class FrameSource {
 public:
  virtual ~FrameSource() = default;
  // The next frame (RGB, the source's size), std::nullopt at the end. Errors name the file and
  // say what failed (demuxing, decoding, an unreadable image); after an error the source is at
  // its end.
  virtual absl::StatusOr<std::optional<Image>> Next() = 0;
  // The path it was opened from.
  virtual const std::string& path() const = 0;
  // Frames per second the source declares (a folder: 0, unknown).
  virtual double fps() const = 0;
};

// How a capture device is asked to deliver frames (ignored for files and URLs); empty or 0:
// the device's default.
struct CaptureOptions {
  std::string video_size;  // "WIDTHxHEIGHT", e.g. "640x480"
  double framerate = 0;    // frames per second
};

// Decodes the best video stream of a container file (anything the system's FFmpeg demuxes), a
// URL, or a capture device.
class VideoReader : public FrameSource {
 public:
  // Opens `path` and its decoder. `path` may be:
  //   - a file;
  //   - a URL FFmpeg's protocols read ("rtsp://...", "http://...", "file://...");
  //   - a camera: a V4L2 device node ("/dev/video0");
  //   - "DEVICE:INPUT" for any FFmpeg video input device (libavdevice): "v4l2:/dev/video2",
  //     "lavfi:testsrc=size=640x480:rate=30" (a synthetic camera), "x11grab::0.0". A file of that
  //     name, when one exists, is read as a file.
  // Devices are live: they end only when the device does. `capture` applies to devices only.
  // NotFound for a missing file or device node; InvalidArgument for a file that is not a video or
  // has no video stream or no decoder, or a device that cannot be opened; every message starts
  // with the path.
  static absl::StatusOr<std::unique_ptr<VideoReader>> Open(const std::string& path,
                                                           const CaptureOptions& capture = {});
  // The FFmpeg input device `path` names (see Open), or "" for a file or URL.
  static std::string DeviceOf(const std::string& path);
  ~VideoReader() override;

  absl::StatusOr<std::optional<Image>> Next() override;
  const std::string& path() const override { return path_; }
  double fps() const override { return fps_; }
  int width() const { return width_; }   // the stream's declared frame size (pixels)
  int height() const { return height_; }

 private:
  struct Impl;
  VideoReader() = default;
  std::string path_;
  double fps_ = 0;
  int width_ = 0, height_ = 0;
  std::unique_ptr<Impl> impl_;
};

// The image files (.jpg .jpeg .png .bmp, case-insensitive) of one folder in name order; frame i
// is the i-th file. A file that cannot be decoded is an error naming it.
class FrameFolderReader : public FrameSource {
 public:
  // InvalidArgument when `dir` is not a readable directory or holds no image file.
  static absl::StatusOr<std::unique_ptr<FrameFolderReader>> Open(const std::string& dir);

  absl::StatusOr<std::optional<Image>> Next() override;
  const std::string& path() const override { return dir_; }
  double fps() const override { return 0; }
  const std::vector<std::string>& files() const { return files_; }

 private:
  FrameFolderReader() = default;
  std::string dir_;
  std::vector<std::string> files_;
  size_t next_ = 0;
};

// A directory opens as a FrameFolderReader, anything else as a VideoReader (a missing path is
// NotFound naming it; `capture` applies to devices).
absl::StatusOr<std::unique_ptr<FrameSource>> OpenFrameSource(const std::string& path,
                                                             const CaptureOptions& capture = {});

// Encodes RGB frames of one fixed size into a video file. The codec follows the extension:
// ".avi" -> MJPEG, ".mp4"/".mkv"/anything else FFmpeg knows -> MPEG-4 part 2; both are built into
// Debian's libavcodec (no external encoder library). Quality is high (near-constant quantizer 2)
// because the tests compare decoded pixels with the originals.
class VideoWriter {
 public:
  // width and height must be even and in [2, kMaxImageSide]; fps in (0, 1000].
  // InvalidArgument for bad arguments or an unknown container; Internal when FFmpeg fails; every
  // message starts with the path.
  static absl::StatusOr<std::unique_ptr<VideoWriter>> Open(const std::string& path, int width,
                                                           int height, double fps);
  ~VideoWriter();  // Close()s if not closed (errors then are dropped)

  // Appends one frame; it must have the writer's size.
  absl::Status Write(const Image& frame);
  // Flushes the encoder and writes the trailer. Idempotent; Write after Close is an error.
  absl::Status Close();
  int64_t frames_written() const { return frames_; }

 private:
  struct Impl;
  VideoWriter() = default;
  std::string path_;
  int width_ = 0, height_ = 0;
  int64_t frames_ = 0;
  bool closed_ = false;
  std::unique_ptr<Impl> impl_;
};

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_DETECT_VIDEO_H_
