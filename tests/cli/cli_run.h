// Runs the kiln CLI for the CLI tests: exit code or signal, and stdout and stderr together.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include "test_paths.h"

namespace kiln::testing {

struct CliResult {
  int exit_code = -1;
  int signal = 0;
  std::string out;
};

/// `kiln ARGS` with stderr merged into stdout.
inline CliResult run_cli(const std::string& args) {
  CliResult r;
  FILE* p = popen((cli_path() + " " + args + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = pclose(p);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return r;
}

}  // namespace kiln::testing
