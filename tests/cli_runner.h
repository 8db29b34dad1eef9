// Runs the real yolopipe binary (a data dependency of the test) and captures what it prints.
#ifndef YOLOPIPE_TESTS_CLI_RUNNER_H_
#define YOLOPIPE_TESTS_CLI_RUNNER_H_

#include <string>

namespace yolopipe::testing {

struct CliResult {
  int exit_code = -1;  // 128 + signal when killed by a signal
  std::string out;
  std::string err;
};

// Runs "tools/yolopipe <args>" through the shell from the test's working directory.
CliResult RunYolopipe(const std::string& args);

// The whole file, or "" when it cannot be read.
std::string ReadFile(const std::string& path);

}  // namespace yolopipe::testing

#endif  // YOLOPIPE_TESTS_CLI_RUNNER_H_
