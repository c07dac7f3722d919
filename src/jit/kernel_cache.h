// KernelCache: compiled kernels by structural key, in process and on disk.
//
// The key of a kernel is a hash of its printed IR (which includes every element type, dim and
// schedule decision), the host target id (CPU name and features), the Kiln version and the LLVM
// version. get() is thread-safe and single-flight: threads that need the same missing kernel wait
// for one compile. The in-process cache is bounded (LRU); evicting an entry drops the cache's
// reference, and the code is freed when no plan holds it any more.
//
// With a cache directory (SessionOptions::cache_dir or $KILN_CACHE_DIR) every compiled object is
// also written to <dir>/<key>.kobj, atomically (write to a unique temporary, fsync, rename), with
// a header holding a magic, a format version, the full key and the payload's size and checksum.
// A later process finds the file and loads it instead of compiling. A file that is truncated,
// corrupt, for another key or another format version is ignored (and replaced by a fresh compile);
// nothing read from disk is linked before it has been checked. Processes sharing one directory
// are safe: readers only see complete files, and concurrent writers of one key write equal bytes.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>

#include "jit/jit.h"
#include "jit/kir.h"

namespace kiln::jit {

enum class KernelSource { kMemory, kDisk, kCompiled };

struct KernelLookup {
  std::shared_ptr<const CompiledKernel> kernel;
  KernelSource source = KernelSource::kCompiled;
  double compile_ms = 0;  // time spent in LLVM for this lookup (0 on hits)
  std::string key;
};

struct KernelCacheStats {
  uint64_t memory_hits = 0;
  uint64_t disk_hits = 0;
  uint64_t compiled = 0;
  uint64_t evicted = 0;
  uint64_t disk_writes = 0;
  uint64_t disk_rejected = 0;  // files found but not trusted (corrupt, truncated, stale)
  double compile_ms = 0;
  size_t entries = 0;
};

class KernelCache {
 public:
  explicit KernelCache(size_t capacity = 4096);
  ~KernelCache();
  KernelCache(const KernelCache&) = delete;
  KernelCache& operator=(const KernelCache&) = delete;

  /// The cache every session shares.
  static KernelCache& global();

  /// Finds or builds the code of `k`; `disk_dir` empty means no disk cache.
  KernelLookup get(const Kernel& k, const std::string& disk_dir);

  /// The cache key of a kernel (32 hex digits), also its file name stem and symbol suffix.
  static std::string key_of(const Kernel& k);

  KernelCacheStats stats() const;
  void set_capacity(size_t capacity);  // evicts down to the new bound
  void clear();                        // drops every in-process entry (disk files stay)

  /// Tests only: compiles with `compiler` instead of compile_to_object (to count, delay or fail
  /// compiles); an empty function restores compile_to_object. Call it while no get() runs.
  using Compiler = std::function<std::string(const Kernel& k, const std::string& symbol)>;
  void set_compiler_for_testing(Compiler compiler);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// The disk cache directory to use: `option` if non-empty, else $KILN_CACHE_DIR, else "".
std::string resolve_cache_dir(const std::string& option);

/// The bytes of a cache file (<dir>/<key>.kobj) holding `object`; exposed so that tests can forge
/// files that pass or fail each check of the reader.
std::string encode_cache_file(const std::string& key, const std::string& symbol,
                              const std::string& object);

/// Writes <dir>/<stem><ext> atomically as the kernel cache does (unique temporary, fsync, rename),
/// creating dir; false (with a warning once per dir) when the disk cache cannot be written. Used
/// by other code caches in the same directory (the CUDA backend's PTX).
bool write_cache_file_atomic(const std::string& dir, const std::string& stem,
                             const std::string& ext, const std::string& bytes);
/// The whole content of a regular cache file; false when absent or unreadable.
bool read_cache_file(const std::string& path, std::string* bytes);

}  // namespace kiln::jit
