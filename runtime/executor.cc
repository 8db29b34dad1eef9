#include "runtime/executor.h"

#include <chrono>
#include <cstring>
#include <map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "ops/registry.h"
#include "runtime/memory_plan.h"

namespace yolopipe {

struct Executor::Slot {
  enum class Source { kInput, kConstant, kArena };
  std::string value;
  Source source = Source::kArena;
  ops::TensorDesc desc;
  Tensor tensor;  // constants: the data; arena slots: the view (bound at Create)
  int input_index = -1;
  int first_step = 0;
  int last_step = 0;
  // Arena slots only: the slot whose bytes this one views (a zero-copy Reshape), or -1.
  int alias_of = -1;
};

struct Executor::Step {
  // Null for a zero-copy step (an aliasing reshape).
  std::unique_ptr<ops::Kernel> kernel;
  bool zero_copy = false;
  std::vector<int> inputs;              // slot ids; -1 for an absent optional input
  std::vector<int> outputs;             // slot ids
};

namespace {

// Ops whose output is the input's bytes under another shape: in plain layout they need no copy.
bool IsPureReshape(const std::string& op_type) {
  return op_type == "Reshape" || op_type == "Flatten" || op_type == "Squeeze" ||
         op_type == "Unsqueeze" || op_type == "Identity";
}

bool IsActivation4D(const ops::TensorDesc& d) {
  return d.dtype == DType::kFloat32 && d.shape.size() == 4;
}

}  // namespace

Executor::~Executor() = default;

absl::StatusOr<std::unique_ptr<Executor>> Executor::Create(const Graph& graph,
                                                           const ExecutorOptions& options) {
  std::unique_ptr<Executor> ex(new Executor());
  ex->options_ = options;
  const ops::KernelRegistry& registry = ops::KernelRegistry::Global();

  // (value, layout) -> slot id.
  std::map<std::pair<std::string, Layout>, int> slot_of;
  auto add_slot = [&](Slot slot, Layout layout) {
    const int id = static_cast<int>(ex->slots_.size());
    slot_of[{slot.value, layout}] = id;
    ex->slots_.push_back(std::move(slot));
    return id;
  };
  auto desc_of = [&](const std::string& name) -> absl::StatusOr<ops::TensorDesc> {
    const Value* v = graph.FindValue(name);
    if (v == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' has no description"));
    }
    if (!IsFullyKnown(v->shape)) {
      return absl::FailedPreconditionError(
          absl::StrCat("tensor '", name, "' has unbound shape ", ShapeToString(v->shape),
                       "; prepare the graph for an input shape first"));
    }
    return ops::TensorDesc{v->dtype, v->shape, Layout::kPlain};
  };

  for (size_t i = 0; i < graph.inputs().size(); ++i) {
    const std::string& name = graph.inputs()[i];
    Slot slot;
    slot.value = name;
    slot.source = Slot::Source::kInput;
    YP_ASSIGN_OR_RETURN(slot.desc, desc_of(name));
    slot.input_index = static_cast<int>(i);
    ex->input_slots_.push_back(add_slot(std::move(slot), Layout::kPlain));
    ex->input_names_.push_back(name);
  }

  // Returns the slot holding `name` in `layout`, adding a conversion step when only the other
  // layout exists.
  auto slot_in_layout = [&](const std::string& name, Layout layout) -> absl::StatusOr<int> {
    auto it = slot_of.find({name, layout});
    if (it != slot_of.end()) return it->second;
    const Layout other = layout == Layout::kNHWC ? Layout::kPlain : Layout::kNHWC;
    auto src = slot_of.find({name, other});
    if (src == slot_of.end()) {
      return absl::InternalError(absl::StrCat("tensor '", name, "' is not computed before use"));
    }
    Slot converted;
    converted.value = name;
    converted.desc = ex->slots_[src->second].desc;
    converted.desc.layout = layout;
    const int src_id = src->second;
    const int id = add_slot(std::move(converted), layout);
    Step step;
    step.inputs = {src_id};
    step.outputs = {id};
    ops::KernelSpec conversion;
    conversion.node_name = absl::StrCat(name, layout == Layout::kNHWC ? ":to_nhwc" : ":to_plain");
    conversion.op_type = "LayoutConversion";
    conversion.attrs.Set("to", std::string(layout == Layout::kNHWC ? "nhwc" : "plain"));
    conversion.inputs = {ex->slots_[src_id].desc};
    conversion.constant_inputs.resize(1);
    YP_ASSIGN_OR_RETURN(step.kernel, registry.Create(options.backend, conversion));
    YP_RETURN_IF_ERROR(step.kernel->Reshape(conversion.inputs).status());
    const ops::Backend conversion_backend =
        *registry.ResolveBackend("LayoutConversion", options.backend);
    ex->exec_steps_.push_back(std::move(step));
    ExecutionStep info;
    info.name = absl::StrCat(name, layout == Layout::kNHWC ? ":to_nhwc" : ":to_plain");
    info.op_type = "LayoutConversion";
    info.backend = conversion_backend;
    info.output_layout = layout;
    info.output_bytes = ex->slots_[id].desc.bytes();
    ex->steps_.push_back(info);
    return id;
  };

  std::map<std::string, std::vector<int>> consumers = graph.Consumers();
  for (const Node& node : graph.nodes()) {
    ops::KernelSpec spec;
    spec.node_name = node.name;
    spec.op_type = node.op_type;
    spec.attrs = node.attrs;
    spec.num_outputs = static_cast<int>(node.outputs.size());
    std::vector<bool> is_constant(node.inputs.size(), false);
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      const std::string& in = node.inputs[i];
      if (in.empty()) {
        spec.inputs.push_back(ops::TensorDesc{});
        spec.constant_inputs.emplace_back();
        continue;
      }
      if (const Tensor* c = graph.FindInitializer(in)) {
        is_constant[i] = true;
        spec.inputs.push_back(ops::TensorDesc{c->dtype(), c->shape(), Layout::kPlain});
        spec.constant_inputs.push_back(*c);
        if (!slot_of.count({in, Layout::kPlain})) {
          Slot slot;
          slot.value = in;
          slot.source = Slot::Source::kConstant;
          slot.desc = spec.inputs.back();
          slot.tensor = *c;
          ex->weight_bytes_ += c->bytes();
          add_slot(std::move(slot), Layout::kPlain);
        }
        continue;
      }
      YP_ASSIGN_OR_RETURN(ops::TensorDesc d, desc_of(in));
      spec.inputs.push_back(d);
      spec.constant_inputs.emplace_back();
    }

    // Which inputs may arrive channels-last.
    const ops::KernelTraits traits = registry.Traits(node.op_type, options.backend);
    std::vector<bool> nhwc_ok(node.inputs.size(), false);
    bool any_nhwc_available = false;
    if (options.channels_last && traits.accepts_nhwc) {
      for (size_t i = 0; i < node.inputs.size(); ++i) {
        const bool listed =
            traits.nhwc_inputs.empty() ||
            std::find(traits.nhwc_inputs.begin(), traits.nhwc_inputs.end(),
                      static_cast<int>(i)) != traits.nhwc_inputs.end();
        nhwc_ok[i] = listed && !is_constant[i] && !node.inputs[i].empty() &&
                     IsActivation4D(spec.inputs[i]);
        if (nhwc_ok[i] && slot_of.count({node.inputs[i], Layout::kNHWC})) {
          any_nhwc_available = true;
        }
      }
    }
    // Layout-aware ops join a channels-last region already open. A convolution opens one when its
    // output feeds another layout-aware op (so the region lasts); otherwise the two conversions
    // would cost more than they save.
    bool output_feeds_nhwc = false;
    if (node.op_type == "Conv" && options.channels_last) {
      for (int consumer : consumers[node.outputs[0]]) {
        const Node& c = graph.nodes()[consumer];
        output_feeds_nhwc |= registry.Traits(c.op_type, options.backend).accepts_nhwc;
      }
    }
    const bool try_nhwc = any_nhwc_available || output_feeds_nhwc;

    std::unique_ptr<ops::Kernel> kernel;
    std::vector<ops::TensorDesc> outputs;
    std::vector<Layout> input_layouts(node.inputs.size(), Layout::kPlain);
    absl::Status nhwc_status = absl::OkStatus();
    bool created = false;
    for (int attempt = 0; attempt < 2 && !created; ++attempt) {
      const bool nhwc = attempt == 0;
      if (nhwc && !(try_nhwc && std::find(nhwc_ok.begin(), nhwc_ok.end(), true) != nhwc_ok.end())) {
        continue;
      }
      ops::KernelSpec attempt_spec = spec;
      for (size_t i = 0; i < node.inputs.size(); ++i) {
        input_layouts[i] = nhwc && nhwc_ok[i] ? Layout::kNHWC : Layout::kPlain;
        attempt_spec.inputs[i].layout = input_layouts[i];
      }
      auto k = registry.Create(options.backend, attempt_spec);
      if (!k.ok()) {
        if (nhwc) {
          nhwc_status = k.status();
          continue;
        }
        return k.status();
      }
      auto out = (*k)->Reshape(attempt_spec.inputs);
      if (!out.ok()) {
        if (nhwc) {
          nhwc_status = out.status();
          continue;
        }
        return out.status();
      }
      if (out->size() != node.outputs.size()) {
        return absl::InternalError(absl::StrCat("node '", node.name, "': kernel returned ",
                                                out->size(), " outputs, node has ",
                                                node.outputs.size()));
      }
      kernel = std::move(*k);
      outputs = std::move(*out);
      created = true;
    }

    Step step;
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      if (node.inputs[i].empty()) {
        step.inputs.push_back(-1);
        continue;
      }
      YP_ASSIGN_OR_RETURN(int id, slot_in_layout(node.inputs[i], input_layouts[i]));
      step.inputs.push_back(id);
    }
    ExecutionStep info;
    info.name = node.name;
    info.op_type = node.op_type;
    info.backend = *registry.ResolveBackend(node.op_type, options.backend);
    info.workspace_bytes = kernel->workspace_bytes();
    info.output_layout = outputs.empty() ? Layout::kPlain : outputs[0].layout;
    for (size_t o = 0; o < node.outputs.size(); ++o) {
      Slot slot;
      slot.value = node.outputs[o];
      slot.desc = outputs[o];
      info.output_bytes += outputs[o].bytes();
      step.outputs.push_back(add_slot(std::move(slot), outputs[o].layout));
    }
    ex->workspace_bytes_ = std::max(ex->workspace_bytes_, kernel->workspace_bytes());
    // A reshape of a plain arena tensor becomes a view of the same bytes.
    if (IsPureReshape(node.op_type) && step.outputs.size() == 1 && step.inputs[0] >= 0 &&
        ex->slots_[step.inputs[0]].source == Slot::Source::kArena &&
        ex->slots_[step.inputs[0]].desc.layout == Layout::kPlain &&
        outputs[0].layout == Layout::kPlain &&
        outputs[0].bytes() == ex->slots_[step.inputs[0]].desc.bytes()) {
      int root = step.inputs[0];
      while (ex->slots_[root].alias_of >= 0) root = ex->slots_[root].alias_of;
      ex->slots_[step.outputs[0]].alias_of = root;
      step.zero_copy = true;
      info.view = true;
    }
    step.kernel = std::move(kernel);
    ex->exec_steps_.push_back(std::move(step));
    ex->steps_.push_back(std::move(info));
  }

  for (const std::string& out : graph.outputs()) {
    if (graph.IsInitializer(out) || graph.IsGraphInput(out)) {
      return absl::UnimplementedError(
          absl::StrCat("graph output '", out, "' is a constant or an input"));
    }
    YP_ASSIGN_OR_RETURN(int id, slot_in_layout(out, Layout::kPlain));
    ex->output_slots_.push_back(id);
    ex->output_names_.push_back(out);
  }

  // Lifetimes: from the producing step to the last consuming step; outputs live to the end.
  const int num_steps = static_cast<int>(ex->exec_steps_.size());
  for (int s = 0; s < num_steps; ++s) {
    for (int id : ex->exec_steps_[s].outputs) {
      ex->slots_[id].first_step = s;
      ex->slots_[id].last_step = s;
    }
  }
  for (int s = 0; s < num_steps; ++s) {
    for (int id : ex->exec_steps_[s].inputs) {
      if (id >= 0) ex->slots_[id].last_step = std::max(ex->slots_[id].last_step, s);
    }
  }
  for (int id : ex->output_slots_) ex->slots_[id].last_step = num_steps;
  // A view keeps its root's bytes alive.
  for (size_t id = 0; id < ex->slots_.size(); ++id) {
    const Slot& slot = ex->slots_[id];
    if (slot.alias_of >= 0) {
      Slot& root = ex->slots_[slot.alias_of];
      root.last_step = std::max(root.last_step, slot.last_step);
    }
  }

  std::vector<BufferRequest> requests;
  std::vector<int> arena_slots;
  for (size_t id = 0; id < ex->slots_.size(); ++id) {
    const Slot& slot = ex->slots_[id];
    if (slot.source != Slot::Source::kArena || slot.alias_of >= 0) continue;
    requests.push_back({slot.desc.bytes(), slot.first_step, slot.last_step});
    arena_slots.push_back(static_cast<int>(id));
  }
  const MemoryPlan plan = PlanMemory(requests);
  ex->arena_bytes_ = plan.arena_bytes;
  ex->unplanned_bytes_ = plan.total_bytes;
  ex->arena_ = std::make_shared<Buffer>(plan.arena_bytes);
  for (size_t r = 0; r < arena_slots.size(); ++r) {
    Slot& slot = ex->slots_[arena_slots[r]];
    slot.tensor = Tensor(ex->arena_, plan.offsets[r], slot.desc.dtype, slot.desc.shape,
                         slot.desc.layout);
  }
  for (Slot& slot : ex->slots_) {
    if (slot.alias_of < 0) continue;
    const Slot& root = ex->slots_[slot.alias_of];
    slot.tensor = Tensor(ex->arena_, root.tensor.offset(), slot.desc.dtype, slot.desc.shape,
                         Layout::kPlain);
  }
  ex->workspace_ = std::make_shared<Buffer>(ex->workspace_bytes_);
  return ex;
}

absl::StatusOr<std::vector<Tensor>> Executor::Run(absl::Span<const Tensor> inputs) {
  std::lock_guard<std::mutex> lock(mu_);
  if (inputs.size() != input_slots_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("expected ", input_slots_.size(),
                                                   " input tensors, got ", inputs.size()));
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    Slot& slot = slots_[input_slots_[i]];
    const Tensor& t = inputs[i];
    if (!t.defined() || t.dtype() != slot.desc.dtype || t.shape() != slot.desc.shape) {
      return absl::InvalidArgumentError(absl::StrCat(
          "input '", slot.value, "' must be ", DTypeName(slot.desc.dtype),
          ShapeToString(slot.desc.shape), ", got ", t.defined() ? t.DebugString() : "nothing"));
    }
    YP_ASSIGN_OR_RETURN(slot.tensor, t.ToLayout(Layout::kPlain));
  }

  ops::RunContext ctx;
  ctx.num_threads = options_.num_threads;
  ctx.workspace = workspace_->data();
  std::vector<Tensor> in_tensors;
  std::vector<Tensor> out_tensors;
  for (size_t s = 0; s < exec_steps_.size(); ++s) {
    Step& step = exec_steps_[s];
    const auto start = std::chrono::steady_clock::now();
    if (step.zero_copy) {
      // The output slot views the input's bytes; nothing to do.
    } else {
      in_tensors.clear();
      out_tensors.clear();
      for (int id : step.inputs) in_tensors.push_back(id >= 0 ? slots_[id].tensor : Tensor());
      for (int id : step.outputs) out_tensors.push_back(slots_[id].tensor);
      absl::Status status = step.kernel->Run(ctx, in_tensors, absl::MakeSpan(out_tensors));
      if (!status.ok()) {
        return absl::Status(status.code(), absl::StrCat("running node '", steps_[s].name,
                                                        "': ", status.message()));
      }
    }
    if (options_.record_step_times) {
      steps_[s].last_ms = std::chrono::duration<double, std::milli>(
                              std::chrono::steady_clock::now() - start)
                              .count();
    }
  }

  std::vector<Tensor> results;
  results.reserve(output_slots_.size());
  for (int id : output_slots_) results.push_back(slots_[id].tensor.Clone());
  for (int id : input_slots_) slots_[id].tensor = Tensor();  // do not keep the caller's data
  return results;
}

}  // namespace yolopipe
