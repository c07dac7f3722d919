// KernelCache: the in-process LRU of compiled kernels, its single-flight compiles and the on-disk
// object store (see kernel_cache.h for the guarantees).
//
// Locking: one mutex guards the LRU list, its index, the in-flight map and the counters. It is
// never held while compiling, loading or touching the disk, so different kernels compile
// concurrently; threads that need a kernel already being built wait on that build's shared_future
// instead. Disk trouble of any kind (missing or unwritable directory, full disk, corrupt or foreign
// files) only costs a compile: it is logged or counted, never thrown.
//
// File format (<dir>/<key>.kobj, integers little-endian):
//   "KILNOBJ1" | u32 format version | u32 key length, key | u32 symbol length, symbol |
//   u64 payload size | u64 FNV-1a of the payload | payload (the object file)
// The reader requires every field to match what this process would write for the key, and the file
// size to be exactly the header plus the payload, before it hands the payload to the linker.
#include "jit/kernel_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <iterator>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>

#include "engine/log.h"
#include "kiln/error.h"
#include "kiln/session.h"

namespace kiln::jit {
namespace {

constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'O', 'B', 'J', '1'};
constexpr uint32_t kFormatVersion = 1;
// A cache file larger than this is not an object we wrote; refusing it bounds the read.
constexpr uint64_t kMaxFileBytes = uint64_t(1) << 30;

std::string symbol_of(const std::string& key) { return "kiln_k_" + key; }

// 128-bit FNV-1a: the key combines an already well-mixed structural hash with short strings, so a
// simple, stable, dependency-free hash is enough; 128 bits make collisions negligible.
std::string fnv1a128_hex(const std::string& bytes) {
  __extension__ using u128 = unsigned __int128;
  const u128 prime = (u128(0x0000000001000000ull) << 64) | 0x000000000000013Bull;
  u128 h = (u128(0x6c62272e07bb0142ull) << 64) | 0x62b821756295c58dull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= prime;
  }
  static const char kHex[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 31; i >= 0; --i) {
    out[i] = kHex[unsigned(h & 0xf)];
    h >>= 4;
  }
  return out;
}

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(char((v >> (8 * i)) & 0xff));
}
void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(char((v >> (8 * i)) & 0xff));
}

// Sequential little-endian reader over a byte string; every read checks the remaining length.
class Reader {
 public:
  explicit Reader(const std::string& bytes) : bytes_(bytes) {}
  size_t remaining() const { return bytes_.size() - pos_; }
  bool u32(uint32_t* v) {
    if (remaining() < 4) return false;
    *v = 0;
    for (int i = 0; i < 4; ++i) *v |= uint32_t(uint8_t(bytes_[pos_ + i])) << (8 * i);
    pos_ += 4;
    return true;
  }
  bool u64(uint64_t* v) {
    if (remaining() < 8) return false;
    *v = 0;
    for (int i = 0; i < 8; ++i) *v |= uint64_t(uint8_t(bytes_[pos_ + i])) << (8 * i);
    pos_ += 8;
    return true;
  }
  bool bytes(uint64_t n, std::string* out) {
    if (remaining() < n) return false;
    out->assign(bytes_, pos_, size_t(n));
    pos_ += size_t(n);
    return true;
  }

 private:
  const std::string& bytes_;
  size_t pos_ = 0;
};

// The payload of a cache file if the file is exactly what this build writes for `key`.
bool decode_cache_file(const std::string& file, const std::string& key, const std::string& symbol,
                       std::string* payload) {
  Reader r(file);
  std::string magic, file_key, file_symbol;
  uint32_t version = 0, key_len = 0, symbol_len = 0;
  uint64_t payload_size = 0, checksum = 0;
  if (!r.bytes(sizeof(kMagic), &magic) || magic != std::string(kMagic, sizeof(kMagic))) {
    return false;
  }
  if (!r.u32(&version) || version != kFormatVersion) return false;
  if (!r.u32(&key_len) || key_len != key.size() || !r.bytes(key_len, &file_key) ||
      file_key != key) {
    return false;
  }
  if (!r.u32(&symbol_len) || symbol_len != symbol.size() || !r.bytes(symbol_len, &file_symbol) ||
      file_symbol != symbol) {
    return false;
  }
  if (!r.u64(&payload_size) || !r.u64(&checksum)) return false;
  if (payload_size == 0 || payload_size != r.remaining()) return false;
  if (!r.bytes(payload_size, payload)) return false;
  return fnv1a64(*payload) == checksum;
}

void warn(const std::string& message) {
  engine::log(LogLevel::kWarning, LogLevel::kWarning, message);
}

// One warning per directory and process: a misconfigured cache dir should be visible, but not once
// per kernel.
void warn_dir_once(const std::string& dir, const std::string& message) {
  static std::mutex mu;
  static std::set<std::string> warned;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (!warned.insert(dir).second) return;
  }
  warn("kernel cache directory '" + dir + "': " + message + "; continuing without it");
}

enum class ReadResult { kAbsent, kRead, kUnreadable };

ReadResult read_whole_file(const std::string& path, std::string* out) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    return (errno == ENOENT || errno == ENOTDIR) ? ReadResult::kAbsent : ReadResult::kUnreadable;
  }
  ReadResult result = ReadResult::kUnreadable;
  struct stat st;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && uint64_t(st.st_size) <= kMaxFileBytes) {
    out->resize(size_t(st.st_size));
    size_t done = 0;
    bool ok = true;
    while (done < out->size()) {
      ssize_t n = ::read(fd, out->data() + done, out->size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ok = false;  // error, or the file shrank under us
        break;
      }
      done += size_t(n);
    }
    // A file that grew after fstat is not the one we sized; reject rather than read half of it.
    char extra;
    ssize_t n;
    do {
      n = ok ? ::read(fd, &extra, 1) : 0;
    } while (n < 0 && errno == EINTR);
    if (ok && n == 0) result = ReadResult::kRead;
  }
  ::close(fd);
  return result;
}

bool write_all(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += size_t(n);
  }
  return true;
}

uint64_t random_u64() {
  thread_local std::mt19937_64 rng = [] {
    uint64_t seed = uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
    seed ^= uint64_t(std::hash<std::thread::id>()(std::this_thread::get_id())) << 1;
    seed ^= uint64_t(::getpid()) << 32;
    try {
      std::random_device rd;
      seed ^= (uint64_t(rd()) << 32) ^ rd();
    } catch (...) {
      // No entropy device: the time, thread and pid still make the name unique enough, and O_EXCL
      // catches the rare clash.
    }
    return std::mt19937_64(seed);
  }();
  return rng();
}

// Writes `bytes` to <dir>/<key>.kobj through a unique temporary: fsync, then an atomic rename, so
// readers in any process see either no file, the old one or the complete new one.
bool write_cache_file(const std::string& dir, const std::string& key, const std::string& bytes,
                      const std::string& ext = ".kobj") {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir, ec)) {
    warn_dir_once(dir, ec ? "cannot create it (" + ec.message() + ")" : "not a directory");
    return false;
  }
  char suffix[64];
  std::snprintf(suffix, sizeof(suffix), ".%ld.%016llx.tmp", long(::getpid()),
                static_cast<unsigned long long>(random_u64()));
  std::string tmp = dir + "/." + key + suffix;
  std::string final_path = dir + "/" + key + ext;
  int fd;
  do {
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    warn_dir_once(dir, std::string("cannot write to it (") + std::strerror(errno) + ")");
    return false;
  }
  bool ok = write_all(fd, bytes) && ::fsync(fd) == 0;
  ok = (::close(fd) == 0) && ok;
  if (ok && ::rename(tmp.c_str(), final_path.c_str()) == 0) {
    // Make the rename itself durable; failing here loses nothing but durability.
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      (void)::fsync(dfd);
      ::close(dfd);
    }
    return true;
  }
  int err = errno;
  ::unlink(tmp.c_str());
  warn_dir_once(dir, std::string("cannot write a kernel file (") + std::strerror(err) + ")");
  return false;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

std::string encode_cache_file(const std::string& key, const std::string& symbol,
                              const std::string& object) {
  std::string out(kMagic, sizeof(kMagic));
  put_u32(out, kFormatVersion);
  put_u32(out, uint32_t(key.size()));
  out += key;
  put_u32(out, uint32_t(symbol.size()));
  out += symbol;
  put_u64(out, object.size());
  put_u64(out, fnv1a64(object));
  out += object;
  return out;
}

using KernelPtr = std::shared_ptr<const CompiledKernel>;

struct KernelCache::State {
  struct Entry {
    std::string key;
    KernelPtr kernel;
  };

  mutable std::mutex mu;
  size_t capacity;
  std::list<Entry> lru;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index;
  // A build in progress: waiters block on `done`; a failed build leaves its error in `error`
  // (written before the future is made ready) and a null kernel. Each waiter throws its own copy:
  // one exception object rethrown on many threads would be freed by whichever finishes last.
  struct Flight {
    std::shared_future<KernelPtr> done;
    std::shared_ptr<Error> error = std::make_shared<Error>(ErrorCode::kInternal, "");
  };
  std::unordered_map<std::string, Flight> in_flight;
  KernelCacheStats stats;
  Compiler compiler;  // empty: compile_to_object

  explicit State(size_t cap) : capacity(cap) {}

  // Requires mu. Moves the least recently used entries to `dropped`, which the caller destroys
  // after unlocking: freeing code takes the JIT's lock, and that must not stall every lookup.
  void evict_to(size_t bound, std::list<Entry>* dropped) {
    while (lru.size() > bound) {
      index.erase(lru.back().key);
      dropped->splice(dropped->begin(), lru, std::prev(lru.end()));
      ++stats.evicted;
    }
  }

  // Requires mu.
  void insert(const std::string& key, KernelPtr kernel, std::list<Entry>* dropped) {
    lru.push_front(Entry{key, std::move(kernel)});
    index[key] = lru.begin();
    evict_to(capacity, dropped);
  }

  void count(uint64_t KernelCacheStats::* counter) {
    std::lock_guard<std::mutex> lock(mu);
    ++(stats.*counter);
  }

  // Builds the kernel without holding mu: from the disk cache when a trusted file is there,
  // otherwise by compiling (and then writing the file).
  KernelLookup build(const Kernel& k, const std::string& key, const std::string& dir) {
    const std::string symbol = symbol_of(key);
    KernelLookup out;
    out.key = key;
    const std::string path = dir.empty() ? std::string() : dir + "/" + key + ".kobj";
    if (!dir.empty()) {
      std::string file, payload;
      ReadResult r = read_whole_file(path, &file);
      if (r != ReadResult::kAbsent) {
        if (r == ReadResult::kRead && decode_cache_file(file, key, symbol, &payload)) {
          try {
            out.kernel = load_object(payload, symbol);
          } catch (...) {
            // It passed every check yet does not link (e.g. written by a differently configured
            // build): treat it like any other untrusted file.
            out.kernel = nullptr;
          }
        }
        if (out.kernel) {
          out.source = KernelSource::kDisk;
          count(&KernelCacheStats::disk_hits);
          return out;
        }
        count(&KernelCacheStats::disk_rejected);
      }
    }
    auto t0 = std::chrono::steady_clock::now();
    std::string object = compiler ? compiler(k, symbol) : compile_to_object(k, symbol);
    out.kernel = load_object(object, symbol);
    out.compile_ms = ms_since(t0);
    out.source = KernelSource::kCompiled;
    {
      std::lock_guard<std::mutex> lock(mu);
      ++stats.compiled;
      stats.compile_ms += out.compile_ms;
    }
    if (!dir.empty() && write_cache_file(dir, key, encode_cache_file(key, symbol, object))) {
      count(&KernelCacheStats::disk_writes);
    }
    return out;
  }
};

KernelCache::KernelCache(size_t capacity) : state_(std::make_unique<State>(capacity)) {}

KernelCache::~KernelCache() = default;

KernelCache& KernelCache::global() {
  // Never destroyed: kernels free their code through the JIT, which may already be gone when static
  // destructors run at exit.
  static KernelCache* cache = new KernelCache();
  return *cache;
}

std::string KernelCache::key_of(const Kernel& k) {
  std::string text = structural_hash(k);
  text += '\n';
  text += host_target_id();
  text += "\nkiln ";
  text += kiln::version();
  return fnv1a128_hex(text);
}

KernelLookup KernelCache::get(const Kernel& k, const std::string& disk_dir) {
  State& s = *state_;
  std::string key = key_of(k);
  std::promise<KernelPtr> promise;
  std::shared_ptr<Error> flight_error;
  {
    std::unique_lock<std::mutex> lock(s.mu);
    auto it = s.index.find(key);
    if (it != s.index.end()) {
      s.lru.splice(s.lru.begin(), s.lru, it->second);
      ++s.stats.memory_hits;
      return KernelLookup{it->second->kernel, KernelSource::kMemory, 0, key};
    }
    auto flight = s.in_flight.find(key);
    if (flight != s.in_flight.end()) {
      // Another thread is building this kernel: wait for it (and share its error, if any). The wait
      // reuses that build, so it counts as a memory hit.
      State::Flight f = flight->second;
      lock.unlock();
      KernelPtr kernel = f.done.get();
      if (!kernel) throw Error(f.error->code(), f.error->what());
      s.count(&KernelCacheStats::memory_hits);
      return KernelLookup{std::move(kernel), KernelSource::kMemory, 0, key};
    }
    flight_error =
        s.in_flight.emplace(key, State::Flight{promise.get_future().share()}).first->second.error;
  }

  KernelLookup result;
  try {
    result = s.build(k, key, disk_dir);
  } catch (const Error& e) {
    {
      std::lock_guard<std::mutex> lock(s.mu);
      s.in_flight.erase(key);  // a later get() tries again
    }
    *flight_error = e;
    promise.set_value(nullptr);
    throw;
  } catch (const std::exception& e) {
    {
      std::lock_guard<std::mutex> lock(s.mu);
      s.in_flight.erase(key);
    }
    *flight_error = Error(ErrorCode::kInternal, std::string("kernel build failed: ") + e.what());
    promise.set_value(nullptr);
    throw *flight_error;
  }
  std::list<State::Entry> dropped;
  {
    // Insert before leaving the in-flight map, in one critical section, so that no thread can find
    // the key in neither and build it a second time.
    std::lock_guard<std::mutex> lock(s.mu);
    s.insert(key, result.kernel, &dropped);
    s.in_flight.erase(key);
  }
  promise.set_value(result.kernel);
  return result;
}

KernelCacheStats KernelCache::stats() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  KernelCacheStats out = state_->stats;
  out.entries = state_->lru.size();
  return out;
}

void KernelCache::set_capacity(size_t capacity) {
  std::list<State::Entry> dropped;  // destroyed after the lock is released
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->capacity = capacity;
  state_->evict_to(capacity, &dropped);
}

void KernelCache::clear() {
  std::list<State::Entry> dropped;  // destroyed after the lock is released
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->index.clear();
  dropped.swap(state_->lru);
}

void KernelCache::set_compiler_for_testing(Compiler compiler) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->compiler = std::move(compiler);
}

std::string resolve_cache_dir(const std::string& option) {
  if (!option.empty()) return option;
  const char* env = std::getenv("KILN_CACHE_DIR");
  return env ? std::string(env) : std::string();
}

bool write_cache_file_atomic(const std::string& dir, const std::string& stem,
                             const std::string& ext, const std::string& bytes) {
  return write_cache_file(dir, stem, bytes, ext);
}

bool read_cache_file(const std::string& path, std::string* bytes) {
  return read_whole_file(path, bytes) == ReadResult::kRead;
}

}  // namespace kiln::jit
