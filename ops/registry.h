// KernelRegistry: op type x backend -> kernel factory.
#ifndef YOLOPIPE_OPS_REGISTRY_H_
#define YOLOPIPE_OPS_REGISTRY_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "ops/kernel.h"

namespace yolopipe::ops {

using KernelFactory = std::function<absl::StatusOr<std::unique_ptr<Kernel>>(const KernelSpec&)>;

// What a registered kernel can do beyond the plain contract.
struct KernelTraits {
  // The kernel accepts 4-D activations in Layout::kNHWC (on the inputs listed in nhwc_inputs, or
  // on every non-constant input when nhwc_inputs is empty) and then produces kNHWC outputs.
  bool accepts_nhwc = false;
  std::vector<int> nhwc_inputs;
};

// Thread-safe after static initialisation (registration happens from static initialisers in
// the kernel libraries, which are alwayslink).
class KernelRegistry {
 public:
  static KernelRegistry& Global();

  void Register(const std::string& op_type, Backend backend, KernelFactory factory,
                KernelTraits traits = {});

  // Creates a kernel. For kCpu and kCuda, an op without a kernel of that backend falls back to
  // its kReference kernel. An unregistered op is NotFound naming the node and op type.
  absl::StatusOr<std::unique_ptr<Kernel>> Create(Backend backend, const KernelSpec& spec) const;

  // The backend Create would use for `op_type`, or NotFound.
  absl::StatusOr<Backend> ResolveBackend(const std::string& op_type, Backend backend) const;
  // Traits of the kernel Create would use; default traits when not registered.
  KernelTraits Traits(const std::string& op_type, Backend backend) const;
  bool Has(const std::string& op_type, Backend backend) const;
  // Op types with a kReference kernel, sorted.
  std::vector<std::string> ReferenceOpTypes() const;

 private:
  struct Entry {
    KernelFactory factory;
    KernelTraits traits;
  };
  std::map<std::pair<std::string, Backend>, Entry> entries_;
};

// Registers a factory at static-initialisation time:
//   YP_REGISTER_KERNEL(Relu, "Relu", Backend::kReference, CreateReluKernel);
#define YP_REGISTER_KERNEL(id, op_type, backend, factory, ...)                      \
  static const bool yp_kernel_registered_##id = [] {                              \
    ::yolopipe::ops::KernelRegistry::Global().Register(op_type, backend, factory, \
                                                       ##__VA_ARGS__);            \
    return true;                                                                  \
  }()

}  // namespace yolopipe::ops

#endif  // YOLOPIPE_OPS_REGISTRY_H_
