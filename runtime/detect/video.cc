#include "runtime/detect/video.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/file_io.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavdevice/avdevice.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

namespace yolopipe {
namespace {

namespace fs = std::filesystem;

std::string AvError(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(code, buf, sizeof(buf));
  return buf;
}

// Converts `frame` (any pixel format) to an RGB Image, reusing *sws between calls.
absl::StatusOr<Image> ToRgb(const std::string& path, const AVFrame* frame, SwsContext** sws) {
  if (frame->width <= 0 || frame->height <= 0 || frame->width > kMaxImageSide ||
      frame->height > kMaxImageSide) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": decoded frame has an unusable size ",
                                                   frame->width, "x", frame->height));
  }
  *sws = sws_getCachedContext(*sws, frame->width, frame->height,
                              static_cast<AVPixelFormat>(frame->format), frame->width,
                              frame->height, AV_PIX_FMT_RGB24, SWS_BILINEAR, nullptr, nullptr,
                              nullptr);
  if (*sws == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": cannot convert pixel format ",
                     av_get_pix_fmt_name(static_cast<AVPixelFormat>(frame->format)) != nullptr
                         ? av_get_pix_fmt_name(static_cast<AVPixelFormat>(frame->format))
                         : "unknown",
                     " to RGB"));
  }
  // swscale's SIMD paths write whole vectors past the end of a row (and of the last row), so it
  // converts into an aligned, padded scratch buffer; the rows are then copied into the Image.
  const int stride = (frame->width * 3 + 63) & ~63;
  std::vector<uint8_t> scratch(static_cast<size_t>(stride) * (frame->height + 1) + 64);
  uint8_t* dst[4] = {scratch.data(), nullptr, nullptr, nullptr};
  int dst_stride[4] = {stride, 0, 0, 0};
  sws_scale(*sws, frame->data, frame->linesize, 0, frame->height, dst, dst_stride);
  Image image(frame->width, frame->height);
  for (int y = 0; y < frame->height; ++y) {
    std::memcpy(image.at(0, y), scratch.data() + static_cast<size_t>(y) * stride,
                static_cast<size_t>(frame->width) * 3);
  }
  return image;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// VideoReader

struct VideoReader::Impl {
  AVFormatContext* format = nullptr;
  AVCodecContext* codec = nullptr;
  AVPacket* packet = nullptr;
  AVFrame* frame = nullptr;
  SwsContext* sws = nullptr;
  int stream = -1;
  bool draining = false;  // the demuxer hit its end; the decoder is being flushed
  bool done = false;

  ~Impl() {
    sws_freeContext(sws);
    av_frame_free(&frame);
    av_packet_free(&packet);
    avcodec_free_context(&codec);
    avformat_close_input(&format);
  }
};

VideoReader::~VideoReader() = default;

namespace {

// FFmpeg's video input devices (v4l2, lavfi, x11grab, ...), by every name each answers to.
const AVInputFormat* FindVideoInputDevice(const std::string& name) {
  static std::once_flag registered;
  std::call_once(registered, [] { avdevice_register_all(); });
  for (const AVInputFormat* f = av_input_video_device_next(nullptr); f != nullptr;
       f = av_input_video_device_next(f)) {
    for (absl::string_view alias : absl::StrSplit(f->name, ',')) {
      if (alias == name) return f;
    }
  }
  return nullptr;
}

// FFmpeg reads "NAME:..." as protocol NAME; a local path with a colon is named as a file.
std::string LocalFileUrl(const std::string& path) {
  return path.find(':') == std::string::npos ? path : "file:" + path;
}

// A device's shortest-known name: the last of its aliases ("video4linux2,v4l2" -> "v4l2").
std::string DeviceName(const AVInputFormat* device) {
  const std::string names = device->name;
  return names.substr(names.rfind(',') + 1);
}

// The device `path` names and the input to give it ("" and `path` for files and URLs).
std::pair<const AVInputFormat*, std::string> SplitDevice(const std::string& path) {
  std::error_code ec;
  if (path.find("://") != std::string::npos) return {nullptr, path};
  if (absl::StartsWith(path, "/dev/video")) return {FindVideoInputDevice("v4l2"), path};
  const size_t colon = path.find(':');
  if (colon == std::string::npos || colon == 0 || fs::exists(path, ec)) return {nullptr, path};
  const AVInputFormat* device = FindVideoInputDevice(path.substr(0, colon));
  if (device == nullptr) return {nullptr, path};
  return {device, path.substr(colon + 1)};
}

}  // namespace

std::string VideoReader::DeviceOf(const std::string& path) {
  const AVInputFormat* device = SplitDevice(path).first;
  return device == nullptr ? "" : DeviceName(device);
}

absl::StatusOr<std::unique_ptr<VideoReader>> VideoReader::Open(const std::string& path,
                                                               const CaptureOptions& capture) {
  // "scheme://..." (rtsp://, http://, file://...) goes to FFmpeg's protocols as it is.
  const bool url = path.find("://") != std::string::npos;
  const auto [device, input] = SplitDevice(path);
  std::error_code ec;
  if (!url && (device == nullptr || absl::StartsWith(input, "/dev/")) && !fs::exists(input, ec)) {
    return absl::NotFoundError(
        absl::StrCat(path, device == nullptr ? ": no such file" : ": no such device"));
  }
  if (url) {
    static std::once_flag network;
    std::call_once(network, [] { avformat_network_init(); });
  }
  av_log_set_level(AV_LOG_ERROR);
  std::unique_ptr<VideoReader> reader(new VideoReader());
  reader->path_ = path;
  reader->impl_ = std::make_unique<Impl>();
  Impl& im = *reader->impl_;
  AVDictionary* options = nullptr;
  if (device != nullptr && !capture.video_size.empty()) {
    av_dict_set(&options, "video_size", capture.video_size.c_str(), 0);
  }
  if (device != nullptr && capture.framerate > 0) {
    av_dict_set(&options, "framerate", absl::StrCat(capture.framerate).c_str(), 0);
  }
  int rc = avformat_open_input(&im.format,
                               url || device != nullptr ? input.c_str() : LocalFileUrl(input).c_str(),
                               device, &options);
  const int unused_options = av_dict_count(options);
  av_dict_free(&options);
  if (rc < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, device == nullptr ? ": cannot open as a video: "
                                : absl::StrCat(": cannot open the ", DeviceName(device), " device: "),
        AvError(rc)));
  }
  if (unused_options > 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": the ", DeviceName(device), " device takes no capture size or frame rate (set them "
        "in its input instead)"));
  }
  rc = avformat_find_stream_info(im.format, nullptr);
  if (rc < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": cannot read stream information: ", AvError(rc)));
  }
  const AVCodec* decoder = nullptr;
  im.stream = av_find_best_stream(im.format, AVMEDIA_TYPE_VIDEO, -1, -1, &decoder, 0);
  if (im.stream < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, im.stream == AVERROR_DECODER_NOT_FOUND ? ": no decoder for its video stream"
                                                     : ": has no video stream"));
  }
  AVStream* st = im.format->streams[im.stream];
  im.codec = avcodec_alloc_context3(decoder);
  if (im.codec == nullptr) return absl::InternalError(absl::StrCat(path, ": out of memory"));
  rc = avcodec_parameters_to_context(im.codec, st->codecpar);
  if (rc >= 0) {
    im.codec->thread_count = 1;  // frames of several streams are decoded on their own threads
    rc = avcodec_open2(im.codec, decoder, nullptr);
  }
  if (rc < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": cannot open the ", decoder->name, " decoder: ", AvError(rc)));
  }
  im.packet = av_packet_alloc();
  im.frame = av_frame_alloc();
  if (im.packet == nullptr || im.frame == nullptr) {
    return absl::InternalError(absl::StrCat(path, ": out of memory"));
  }
  const AVRational rate = st->avg_frame_rate.num > 0 ? st->avg_frame_rate : st->r_frame_rate;
  reader->fps_ = rate.num > 0 && rate.den > 0 ? av_q2d(rate) : 0.0;
  reader->width_ = st->codecpar->width;
  reader->height_ = st->codecpar->height;
  return reader;
}

absl::StatusOr<std::optional<Image>> VideoReader::Next() {
  Impl& im = *impl_;
  while (!im.done) {
    int rc = avcodec_receive_frame(im.codec, im.frame);
    if (rc == 0) {
      auto image = ToRgb(path_, im.frame, &im.sws);
      av_frame_unref(im.frame);
      if (!image.ok()) {
        im.done = true;
        return image.status();
      }
      return std::optional<Image>(std::move(*image));
    }
    if (rc == AVERROR_EOF) {
      im.done = true;
      break;
    }
    if (rc != AVERROR(EAGAIN)) {
      im.done = true;
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ": decoding failed: ", AvError(rc)));
    }
    if (im.draining) {  // EAGAIN after the flush packet should not happen; end rather than spin
      im.done = true;
      break;
    }
    // The decoder wants input: feed it the next packet of our stream.
    rc = av_read_frame(im.format, im.packet);
    if (rc == AVERROR_EOF) {
      im.draining = true;
      avcodec_send_packet(im.codec, nullptr);
      continue;
    }
    if (rc < 0) {
      im.done = true;
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ": reading the container failed: ", AvError(rc)));
    }
    if (im.packet->stream_index == im.stream) {
      rc = avcodec_send_packet(im.codec, im.packet);
      if (rc < 0 && rc != AVERROR(EAGAIN)) {
        av_packet_unref(im.packet);
        im.done = true;
        return absl::InvalidArgumentError(absl::StrCat(
            path_, ": corrupt packet at byte offset ", im.packet->pos, ": ", AvError(rc)));
      }
    }
    av_packet_unref(im.packet);
  }
  return std::optional<Image>();
}

// ---------------------------------------------------------------------------------------------
// VideoWriter

struct VideoWriter::Impl {
  AVFormatContext* format = nullptr;
  AVCodecContext* codec = nullptr;
  AVStream* stream = nullptr;
  AVFrame* frame = nullptr;
  AVPacket* packet = nullptr;
  SwsContext* sws = nullptr;
  std::vector<uint8_t> scratch;  // padded RGB rows for swscale
  bool header_written = false;
  // The video is written under a temporary name and renamed into place by Close, so an
  // interrupted or failed run never leaves a truncated video under the real name.
  std::unique_ptr<TemporaryFile> file;

  ~Impl() {
    sws_freeContext(sws);
    av_frame_free(&frame);
    av_packet_free(&packet);
    avcodec_free_context(&codec);
    if (format != nullptr) {
      if (format->pb != nullptr && !(format->oformat->flags & AVFMT_NOFILE)) {
        avio_closep(&format->pb);
      }
      avformat_free_context(format);
    }
  }

  // Sends `f` (nullptr: flush) and writes every packet the encoder has ready.
  int Encode(const AVFrame* f) {
    int rc = avcodec_send_frame(codec, f);
    if (rc < 0) return rc;
    while (true) {
      rc = avcodec_receive_packet(codec, packet);
      if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return 0;
      if (rc < 0) return rc;
      av_packet_rescale_ts(packet, codec->time_base, stream->time_base);
      packet->stream_index = stream->index;
      rc = av_interleaved_write_frame(format, packet);  // takes the packet's reference
      if (rc < 0) return rc;
    }
  }
};

VideoWriter::~VideoWriter() { Close().IgnoreError(); }

absl::StatusOr<std::unique_ptr<VideoWriter>> VideoWriter::Open(const std::string& path, int width,
                                                               int height, double fps) {
  if (width < 2 || height < 2 || width > kMaxImageSide || height > kMaxImageSide ||
      width % 2 != 0 || height % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": video frame size must be even and in [2, ", kMaxImageSide, "], got ", width,
        "x", height));
  }
  if (!(fps > 0 && fps <= 1000)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": fps must be in (0, 1000], got ", fps));
  }
  av_log_set_level(AV_LOG_ERROR);
  std::unique_ptr<VideoWriter> writer(new VideoWriter());
  writer->path_ = path;
  writer->width_ = width;
  writer->height_ = height;
  writer->impl_ = std::make_unique<Impl>();
  writer->closed_ = true;  // nothing to flush if opening fails below
  Impl& im = *writer->impl_;
  int rc = avformat_alloc_output_context2(&im.format, nullptr, nullptr, path.c_str());
  if (rc < 0 || im.format == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": no container format for this file name (use .avi or .mp4): ", AvError(rc)));
  }
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const bool mjpeg = ext == ".avi";
  const AVCodec* encoder =
      avcodec_find_encoder(mjpeg ? AV_CODEC_ID_MJPEG : AV_CODEC_ID_MPEG4);
  if (encoder == nullptr) {
    return absl::InternalError(absl::StrCat(path, ": this FFmpeg has no ",
                                            mjpeg ? "MJPEG" : "MPEG-4", " encoder"));
  }
  im.stream = avformat_new_stream(im.format, nullptr);
  im.codec = avcodec_alloc_context3(encoder);
  im.frame = av_frame_alloc();
  im.packet = av_packet_alloc();
  if (im.stream == nullptr || im.codec == nullptr || im.frame == nullptr ||
      im.packet == nullptr) {
    return absl::InternalError(absl::StrCat(path, ": out of memory"));
  }
  // A rational close to fps (1/1000 precision is plenty for a container's rate).
  const AVRational rate = av_d2q(fps, 100000);
  im.codec->width = width;
  im.codec->height = height;
  im.codec->time_base = av_inv_q(rate);
  im.codec->framerate = rate;
  im.codec->pix_fmt = mjpeg ? AV_PIX_FMT_YUVJ420P : AV_PIX_FMT_YUV420P;
  im.codec->gop_size = 12;
  im.codec->flags |= AV_CODEC_FLAG_QSCALE;
  im.codec->global_quality = FF_QP2LAMBDA * 2;
  im.codec->thread_count = 1;
  if (im.format->oformat->flags & AVFMT_GLOBALHEADER) {
    im.codec->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  }
  rc = avcodec_open2(im.codec, encoder, nullptr);
  if (rc < 0) {
    return absl::InternalError(
        absl::StrCat(path, ": cannot open the ", encoder->name, " encoder: ", AvError(rc)));
  }
  rc = avcodec_parameters_from_context(im.stream->codecpar, im.codec);
  if (rc < 0) {
    return absl::InternalError(absl::StrCat(path, ": codec parameters: ", AvError(rc)));
  }
  im.stream->time_base = im.codec->time_base;
  im.stream->avg_frame_rate = rate;
  if (!(im.format->oformat->flags & AVFMT_NOFILE)) {
    im.file = std::make_unique<TemporaryFile>(path);
    rc = avio_open(&im.format->pb, LocalFileUrl(im.file->temp_path()).c_str(), AVIO_FLAG_WRITE);
    if (rc < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": cannot open for writing: ", AvError(rc)));
    }
  }
  rc = avformat_write_header(im.format, nullptr);
  if (rc < 0) {
    return absl::InternalError(absl::StrCat(path, ": cannot write the header: ", AvError(rc)));
  }
  im.header_written = true;
  im.frame->format = im.codec->pix_fmt;
  im.frame->width = width;
  im.frame->height = height;
  rc = av_frame_get_buffer(im.frame, 0);
  if (rc < 0) return absl::InternalError(absl::StrCat(path, ": out of memory"));
  im.sws = sws_getContext(width, height, AV_PIX_FMT_RGB24, width, height, im.codec->pix_fmt,
                          SWS_BILINEAR, nullptr, nullptr, nullptr);
  if (im.sws == nullptr) {
    return absl::InternalError(absl::StrCat(path, ": cannot create the RGB converter"));
  }
  writer->closed_ = false;
  return writer;
}

absl::Status VideoWriter::Write(const Image& frame) {
  if (closed_) return absl::FailedPreconditionError(absl::StrCat(path_, ": writer is closed"));
  if (frame.width != width_ || frame.height != height_ ||
      frame.pixels.size() != static_cast<size_t>(width_) * height_ * 3) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": frame ", frames_, " is ",
                                                   frame.width, "x", frame.height,
                                                   ", the video is ", width_, "x", height_));
  }
  Impl& im = *impl_;
  int rc = av_frame_make_writable(im.frame);
  if (rc < 0) return absl::InternalError(absl::StrCat(path_, ": ", AvError(rc)));
  // Padded, aligned rows for swscale (it may read whole vectors past a row's end).
  const int stride = (width_ * 3 + 63) & ~63;
  im.scratch.resize(static_cast<size_t>(stride) * (height_ + 1) + 64);
  for (int y = 0; y < height_; ++y) {
    std::memcpy(im.scratch.data() + static_cast<size_t>(y) * stride, frame.at(0, y),
                static_cast<size_t>(width_) * 3);
  }
  const uint8_t* src[4] = {im.scratch.data(), nullptr, nullptr, nullptr};
  const int src_stride[4] = {stride, 0, 0, 0};
  sws_scale(im.sws, src, src_stride, 0, height_, im.frame->data, im.frame->linesize);
  im.frame->pts = frames_;
  rc = im.Encode(im.frame);
  if (rc < 0) {
    return absl::InternalError(
        absl::StrCat(path_, ": encoding frame ", frames_, " failed: ", AvError(rc)));
  }
  ++frames_;
  return absl::OkStatus();
}

absl::Status VideoWriter::Close() {
  if (closed_) return absl::OkStatus();
  closed_ = true;
  Impl& im = *impl_;
  int rc = im.Encode(nullptr);
  if (rc < 0) {
    return absl::InternalError(absl::StrCat(path_, ": flushing the encoder: ", AvError(rc)));
  }
  rc = av_write_trailer(im.format);
  if (rc < 0) {
    return absl::InternalError(absl::StrCat(path_, ": writing the trailer: ", AvError(rc)));
  }
  if (!(im.format->oformat->flags & AVFMT_NOFILE)) {
    rc = avio_closep(&im.format->pb);
    if (rc < 0) return absl::InternalError(absl::StrCat(path_, ": closing: ", AvError(rc)));
  }
  return im.file != nullptr ? im.file->Commit() : absl::OkStatus();
}

}  // namespace yolopipe
