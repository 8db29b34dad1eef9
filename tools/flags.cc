#include "tools/flags.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace yolopipe::cli {

FlagSet::FlagSet(std::string command, std::string summary)
    : command_(std::move(command)), summary_(std::move(summary)) {}

void FlagSet::AddString(const std::string& name, const std::string& default_value,
                        const std::string& help) {
  order_.push_back(name);
  flags_[name] = Flag{Kind::kString, default_value, default_value, help};
}

void FlagSet::AddInt(const std::string& name, int64_t default_value, const std::string& help) {
  order_.push_back(name);
  flags_[name] = Flag{Kind::kInt, absl::StrCat(default_value), absl::StrCat(default_value), help};
}

void FlagSet::AddDouble(const std::string& name, double default_value, const std::string& help) {
  order_.push_back(name);
  flags_[name] = Flag{Kind::kDouble, absl::StrCat(default_value), absl::StrCat(default_value),
                      help};
}

void FlagSet::AddBool(const std::string& name, bool default_value, const std::string& help) {
  order_.push_back(name);
  const std::string v = default_value ? "true" : "false";
  flags_[name] = Flag{Kind::kBool, v, v, help};
}

absl::Status FlagSet::SetValue(const std::string& name, Flag& flag, const std::string& value) {
  switch (flag.kind) {
    case Kind::kInt: {
      int64_t v;
      if (!absl::SimpleAtoi(value, &v)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " expects a whole number, got '", value, "'"));
      }
      break;
    }
    case Kind::kDouble: {
      double v;
      if (!absl::SimpleAtod(value, &v)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " expects a number, got '", value, "'"));
      }
      break;
    }
    case Kind::kBool: {
      bool v;
      if (!absl::SimpleAtob(value, &v)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " expects true or false, got '", value, "'"));
      }
      flag.value = v ? "true" : "false";
      flag.set = true;
      return absl::OkStatus();
    }
    case Kind::kString:
      break;
  }
  flag.value = value;
  flag.set = true;
  return absl::OkStatus();
}

absl::Status FlagSet::Parse(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h" || arg == "help") {
      help_ = true;
      continue;
    }
    if (!absl::StartsWith(arg, "-")) {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument '", arg, "' (flags look like --name=value)"));
    }
    std::string body = arg.substr(absl::StartsWith(arg, "--") ? 2 : 1);
    std::string name = body, value;
    bool has_value = false;
    if (size_t eq = body.find('='); eq != std::string::npos) {
      name = body.substr(0, eq);
      value = body.substr(eq + 1);
      has_value = true;
    }
    auto it = flags_.find(name);
    if (it == flags_.end() && absl::StartsWith(name, "no") && !has_value) {
      auto neg = flags_.find(name.substr(2));
      if (neg != flags_.end() && neg->second.kind == Kind::kBool) {
        neg->second.value = "false";
        neg->second.set = true;
        continue;
      }
    }
    if (it == flags_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, " for 'yolopipe ", command_, "'"));
    }
    Flag& flag = it->second;
    if (!has_value) {
      if (flag.kind == Kind::kBool) {
        flag.value = "true";
        flag.set = true;
        continue;
      }
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
      }
      value = args[++i];
    }
    if (absl::Status s = SetValue(name, flag, value); !s.ok()) return s;
  }
  return absl::OkStatus();
}

std::string FlagSet::GetString(const std::string& name) const { return flags_.at(name).value; }

int64_t FlagSet::GetInt(const std::string& name) const {
  int64_t v = 0;
  (void)absl::SimpleAtoi(flags_.at(name).value, &v);
  return v;
}

double FlagSet::GetDouble(const std::string& name) const {
  double v = 0;
  (void)absl::SimpleAtod(flags_.at(name).value, &v);
  return v;
}

bool FlagSet::GetBool(const std::string& name) const { return flags_.at(name).value == "true"; }

bool FlagSet::IsSet(const std::string& name) const { return flags_.at(name).set; }

std::string FlagSet::Usage() const {
  std::string out = absl::StrCat("usage: yolopipe ", command_, " [flags]\n  ", summary_, "\n\n");
  for (const std::string& name : order_) {
    const Flag& f = flags_.at(name);
    std::string left = absl::StrCat("  --", name);
    if (f.kind != Kind::kBool) absl::StrAppend(&left, "=", f.kind == Kind::kString ? "S" : "N");
    left.resize(std::max<size_t>(left.size() + 1, 24), ' ');
    absl::StrAppend(&out, left, f.help);
    if (!f.default_value.empty()) absl::StrAppend(&out, " (default ", f.default_value, ")");
    out += "\n";
  }
  return out;
}

}  // namespace yolopipe::cli
