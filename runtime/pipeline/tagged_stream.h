// TaggedStream: a PipelineStream whose micro-batches carry the caller's context (the files or
// frames they hold), so that whoever pops an output knows what it belongs to.
//
//   TaggedStream<std::vector<std::string>> tagged(stream);
//   producer thread: tagged.Push(input, {"a.jpg", "b.jpg"}); ... stream.CloseInput();
//   consumer thread: while (auto out = tagged.Pop(); out.ok()) use(out->output, out->context);
//
// Push hands the input to the stages to read in place (PipelineStream::Push with share) and keeps
// it alive until its output is popped. One thread may push while another pops; Push must not be
// called from two threads at once (push order is the order the contexts come back in).
#ifndef YOLOPIPE_RUNTIME_PIPELINE_TAGGED_STREAM_H_
#define YOLOPIPE_RUNTIME_PIPELINE_TAGGED_STREAM_H_

#include <deque>
#include <mutex>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/tensor.h"
#include "runtime/pipeline/pipeline.h"

namespace yolopipe {

template <typename Context>
class TaggedStream {
 public:
  struct Popped {
    Tensor output;    // the model's first output for the pushed images
    Context context;  // what Push was given with them
  };

  explicit TaggedStream(PipelineStream& stream) : stream_(stream) {}
  TaggedStream(const TaggedStream&) = delete;
  TaggedStream& operator=(const TaggedStream&) = delete;

  // As PipelineStream::Push (share = true), with `context` kept for Pop.
  absl::Status Push(const Tensor& images, Context context) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending_.push_back({images, std::move(context)});
    }
    absl::Status s = stream_.Push(images, /*share=*/true);
    if (!s.ok()) {
      // Not taken: its output will never come, so its context must not answer a later Pop.
      std::lock_guard<std::mutex> lock(mu_);
      pending_.pop_back();
    }
    return s;
  }

  // As PipelineStream::Pop (OutOfRange at the end of the stream), with the output's context.
  absl::StatusOr<Popped> Pop() {
    absl::StatusOr<Tensor> output = stream_.Pop();
    if (!output.ok()) return output.status();
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_.empty()) {
      return absl::InternalError("an output came back that no tagged Push accounts for");
    }
    Popped popped{*std::move(output), std::move(pending_.front().context)};
    pending_.pop_front();
    return popped;
  }

  PipelineStream& stream() { return stream_; }

 private:
  struct Pending {
    Tensor input;  // the stages read it in place until the output is popped
    Context context;
  };
  PipelineStream& stream_;
  std::mutex mu_;
  std::deque<Pending> pending_;  // guarded by mu_; push order
};

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_PIPELINE_TAGGED_STREAM_H_
