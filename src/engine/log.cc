#include "engine/log.h"

#include <cstdio>

namespace kiln::engine {

void log(LogLevel threshold, LogLevel level, const std::string& message) {
  if (int(level) > int(threshold)) return;
  static const char* const kNames[] = {"error", "warning", "info", "debug"};
  std::string line = "kiln[" + std::string(kNames[int(level)]) + "]: " + message + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace kiln::engine
