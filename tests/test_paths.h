// Paths the tests use: ../shared beside the checkout (optional), the CLI binary, temp dirs.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace kiln::testing {

/// ../shared beside the checkout, or $KILN_SHARED_DIR (a device bundle's copy, say).
inline std::string shared_dir() {
  const char* e = std::getenv("KILN_SHARED_DIR");
  return e && *e ? e : KILN_SHARED_DIR;
}
inline bool have_shared() { return std::filesystem::exists(shared_dir() + "/models"); }
inline std::string cli_path() { return KILN_CLI_PATH; }

/// A fresh temporary folder, removed when the object dies.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "kiln_test_XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

/// Sets an environment variable for the life of the object (sessions read some at creation).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { setenv(name, value, 1); }
  ~ScopedEnv() { unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
};

}  // namespace kiln::testing
