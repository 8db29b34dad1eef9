#include "ops/reference/transpose.h"

#include <array>

#include "absl/strings/str_cat.h"
#include "ops/reference/kernel_util.h"
#include "ops/registry.h"

namespace yolopipe::ops {
namespace {

class TransposeKernel : public SpecKernel {
 public:
  using SpecKernel::SpecKernel;

  absl::Status Init() override {
    has_perm_ = spec_.attrs.Has("perm");
    if (has_perm_) {
      auto perm = spec_.attrs.GetInts("perm");
      if (!perm.ok()) return Error(std::string(perm.status().message()));
      perm_attr_ = *perm;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_RETURN_IF_ERROR(CheckInputCount(spec_, inputs, 1, 1));
    YP_RETURN_IF_ERROR(CheckPlainAndKnown(spec_, inputs));
    const Shape& in = inputs[0].shape;
    const int rank = static_cast<int>(in.size());
    perm_.clear();
    if (!has_perm_) {
      for (int d = rank - 1; d >= 0; --d) perm_.push_back(d);
    } else {
      if (static_cast<int>(perm_attr_.size()) != rank) {
        return Error(absl::StrCat("perm ", IntsString(perm_attr_), " has ", perm_attr_.size(),
                                  " entries but input ", DescString(inputs[0]), " has rank ",
                                  rank));
      }
      std::vector<bool> used(rank, false);
      for (int64_t p : perm_attr_) {
        if (p < 0 || p >= rank || used[p]) {
          return Error(absl::StrCat("perm ", IntsString(perm_attr_),
                                    " is not a permutation of 0..", rank - 1));
        }
        used[p] = true;
        perm_.push_back(static_cast<int>(p));
      }
    }
    Shape out(rank);
    for (int d = 0; d < rank; ++d) out[d] = in[perm_[d]];
    return std::vector<TensorDesc>{TensorDesc{inputs[0].dtype, out, Layout::kPlain}};
  }

  absl::Status Run(const RunContext&, absl::Span<const Tensor> inputs,
                   absl::Span<Tensor> outputs) override {
    const Tensor& x = inputs[0];
    Tensor& y = outputs[0];
    const std::vector<int64_t> in_strides = RowMajorStrides(x.shape());
    // Output dimension d walks input dimension perm[d].
    std::array<std::vector<int64_t>, 1> strides;
    strides[0].resize(perm_.size());
    for (size_t d = 0; d < perm_.size(); ++d) strides[0][d] = in_strides[perm_[d]];
    const size_t size = DTypeSize(x.dtype());
    ForEachBroadcastElement<1>(y.shape(), strides,
                               [&](int64_t i, const std::array<int64_t, 1>& off) {
                                 CopyElement(x.raw_data(), off[0], y.raw_data(), i, size);
                               });
    return absl::OkStatus();
  }

 private:
  bool has_perm_ = false;
  std::vector<int64_t> perm_attr_;
  std::vector<int> perm_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceTranspose(const KernelSpec& spec) {
  return CreateValidatedKernel<TransposeKernel>(spec);
}

YP_REGISTER_KERNEL(RefTranspose, "Transpose", Backend::kReference, CreateReferenceTranspose);

}  // namespace yolopipe::ops
