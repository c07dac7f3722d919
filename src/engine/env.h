// Boolean switches read from the environment (KILN_PROFILE, KILN_ARENA_POISON, ...).
#pragma once

#include <cstdlib>

namespace kiln::engine {

/// `unset` when the variable is unset or empty; otherwise false when it starts with '0'.
inline bool env_flag(const char* name, bool unset) {
  const char* e = std::getenv(name);
  if (e == nullptr || *e == '\0') return unset;
  return *e != '0';
}

}  // namespace kiln::engine
