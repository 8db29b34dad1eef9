// Per-command flag sets for the yolopipe CLI. Each command declares the flags it takes; anything
// else is a usage error (exit status 2), reported with the command's usage text.
// Accepts --name=value, --name value, and for booleans --name / --noname / --name=false.
#ifndef YOLOPIPE_TOOLS_FLAGS_H_
#define YOLOPIPE_TOOLS_FLAGS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace yolopipe::cli {

class FlagSet {
 public:
  FlagSet(std::string command, std::string summary);

  void AddString(const std::string& name, const std::string& default_value,
                 const std::string& help);
  void AddInt(const std::string& name, int64_t default_value, const std::string& help);
  void AddDouble(const std::string& name, double default_value, const std::string& help);
  void AddBool(const std::string& name, bool default_value, const std::string& help);

  // Parses args (the arguments after the command name). Unknown flags, missing values,
  // malformed numbers and positional arguments are InvalidArgument errors.
  absl::Status Parse(const std::vector<std::string>& args);

  std::string GetString(const std::string& name) const;
  int64_t GetInt(const std::string& name) const;
  double GetDouble(const std::string& name) const;
  bool GetBool(const std::string& name) const;
  // True when the flag was given on the command line.
  bool IsSet(const std::string& name) const;
  bool help_requested() const { return help_; }

  std::string Usage() const;

 private:
  enum class Kind { kString, kInt, kDouble, kBool };
  struct Flag {
    Kind kind;
    std::string value;  // textual, validated at parse time
    std::string default_value;
    std::string help;
    bool set = false;
  };
  absl::Status SetValue(const std::string& name, Flag& flag, const std::string& value);

  std::string command_;
  std::string summary_;
  std::vector<std::string> order_;
  std::map<std::string, Flag> flags_;
  bool help_ = false;
};

}  // namespace yolopipe::cli

#endif  // YOLOPIPE_TOOLS_FLAGS_H_
