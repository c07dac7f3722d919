// Session logging: one line per message on stderr, "kiln[level]: message", printed when the
// message's level is at or above the session's SessionOptions::log_level threshold (kError is
// the most severe). Thread-safe: each line is written with one call.
#pragma once

#include <string>

#include "kiln/session.h"

namespace kiln::engine {

void log(LogLevel threshold, LogLevel level, const std::string& message);

}  // namespace kiln::engine
