// The C runtime of the WebAssembly build (src/backends/wasm), in place of a libc's: a thread-safe allocator
// over the shared linear memory, operator new / delete on it, getenv (the environment is read in JavaScript),
// and the start of a thread (its own stack and thread-local block). wasi-libc supplies only the math
// functions (musl's libm: no system interface, no thread-local state), so the module imports nothing but
// its memory.
#include <atomic>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <new>

extern "C" unsigned char __heap_base;
#if defined(__wasm_atomics__)
extern "C" void __wasm_init_tls(void* block);
#endif
extern "C" void __wasm_call_ctors(void);

namespace {

std::atomic<int> g_lock{0};
inline void lock() {
  while (g_lock.exchange(1, std::memory_order_acquire))
    while (g_lock.load(std::memory_order_relaxed)) {}
}
inline void unlock() { g_lock.store(0, std::memory_order_release); }

// Size classes from 64 bytes, four per power of two (2^e · {1, 1.25, 1.5, 1.75}, those that are whole
// multiples of 64), one free list each, a 64-byte header before every block (so that every block is 64-byte
// aligned, as the kernels' packing buffers want): a block is at most 25% larger than asked for (tensors live
// here: WasmArray). Freed blocks are kept for reuse and never returned: a training step allocates the same
// sizes every step.
constexpr int kClasses = 4 * 32;
constexpr size_t kHeader = 64;
void* g_free[kClasses];
uintptr_t g_top = 0;

size_t class_size(int c) { return size_t((uint64_t(4 + (c & 3)) << (c >> 2)) >> 2); }

int class_of(size_t n) {
  if (n > (size_t(1) << 31) - kHeader) return -1;
  int c = 4 * 6;
  while (class_size(c) < n + kHeader || class_size(c) % 64) c++;
  return c;
}

void* carve(size_t bytes) {
  if (!g_top) g_top = (uintptr_t(&__heap_base) + 63) & ~uintptr_t(63);
  const uintptr_t end = uintptr_t(__builtin_wasm_memory_size(0)) * 65536u;
  if (bytes > UINTPTR_MAX - g_top) return nullptr;
  if (g_top + bytes > end) {
    const uintptr_t need = g_top + bytes - end;
    if (__builtin_wasm_memory_grow(0, (need + 65535) / 65536) == size_t(-1)) return nullptr;
  }
  void* p = reinterpret_cast<void*>(g_top);
  g_top += bytes;
  return p;
}

}  // namespace

extern "C" {

void* malloc(size_t n) {
  const int c = class_of(n);
  if (c < 0 || c >= kClasses) return nullptr;
  lock();
  void* block = g_free[c];
  if (block) g_free[c] = *static_cast<void**>(block);
  else block = carve(class_size(c));
  unlock();
  if (!block) return nullptr;
  *static_cast<uint32_t*>(block) = uint32_t(c);
  return static_cast<char*>(block) + kHeader;
}

void free(void* p) {
  if (!p) return;
  void* block = static_cast<char*>(p) - kHeader;
  const uint32_t c = *static_cast<uint32_t*>(block);
  lock();
  *static_cast<void**>(block) = g_free[c];
  g_free[c] = block;
  unlock();
}

void* calloc(size_t n, size_t size) {
  if (size && n > SIZE_MAX / size) return nullptr;
  void* p = malloc(n * size);
  if (p) __builtin_memset(p, 0, n * size);
  return p;
}

void* realloc(void* p, size_t n) {
  if (!p) return malloc(n);
  const uint32_t c = *reinterpret_cast<uint32_t*>(static_cast<char*>(p) - kHeader);
  const size_t have = class_size(int(c)) - kHeader;
  if (n <= have) return p;
  void* q = malloc(n);
  if (q) { __builtin_memcpy(q, p, have); free(p); }
  return q;
}

// Every block is 64-byte aligned; larger alignments are not used by the kernels.
void* aligned_alloc(size_t align, size_t n) { return align <= 64 ? malloc(n) : nullptr; }
int posix_memalign(void** out, size_t align, size_t n) {
  *out = aligned_alloc(align, n);
  return *out ? 0 : 12 /* ENOMEM */;
}

char* getenv(const char*) { return nullptr; }

/** snprintf for the kernels' info strings (native/src/gemm.cc gemm_info): %s and %d only. wasi-libc's would
 *  bring stdio and errno, compiled without atomics, which a shared memory cannot link. */
int snprintf(char* out, size_t cap, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t n = 0;
  auto put = [&](char ch) { if (n + 1 < cap) out[n] = ch; n++; };
  for (const char* f = fmt; *f; f++) {
    if (*f != '%' || !f[1]) { put(*f); continue; }
    const char k = *++f;
    if (k == 's') {
      for (const char* a = va_arg(ap, const char*); *a; a++) put(*a);
    } else if (k == 'd') {
      const int v = va_arg(ap, int);
      char digits[12];
      int nd = 0;
      unsigned u = v < 0 ? 0u - unsigned(v) : unsigned(v);
      do { digits[nd++] = char('0' + u % 10); u /= 10; } while (u);
      if (v < 0) put('-');
      while (nd) put(digits[--nd]);
    } else {
      put(k);
    }
  }
  if (cap) out[n < cap ? n : cap - 1] = 0;
  va_end(ap);
  return int(n);
}
// Thread-exit destructors of thread_local objects (gemm.cc's packing buffers): threads never exit here.
int __cxa_thread_atexit(void (*)(void*), void*, void*) { return 0; }
void abort(void) { __builtin_trap(); }

// ---- threads. The JavaScript side (src/backends/wasm) instantiates this module once per thread over the same
// memory; instance 0 (the caller's) runs dn_init, every other one dn_worker_start with its own stack and
// thread-local block (allocated by instance 0 through malloc).

__attribute__((export_name("dn_malloc"))) void* dn_malloc(size_t n) { return malloc(n); }
__attribute__((export_name("dn_free"))) void dn_free(void* p) { free(p); }
#if defined(__wasm_atomics__)
__attribute__((export_name("dn_tls_size"))) size_t dn_tls_size(void) { return __builtin_wasm_tls_size(); }

/** Instance 0: static constructors, then its thread-local block (the linker does not set one up). */
__attribute__((export_name("dn_init"))) int dn_init(void) {
  __wasm_call_ctors();
  void* tls = malloc(__builtin_wasm_tls_size() + 64);
  if (!tls) return 0;
  __wasm_init_tls(tls);
  return 1;
}

void dn_worker_loop(int tid);  // pool.cc

__attribute__((noinline)) static void worker_body(void* tls, int tid) {
  __wasm_init_tls(tls);
  dn_worker_loop(tid);
}

/** Workers: switch to their own stack first (nothing here touches the stack before), then run the pool loop,
 *  which returns only when the pool is shut down. */
__attribute__((export_name("dn_worker_start"))) void dn_worker_start(void* stack_top, void* tls, int tid) {
  __asm__ volatile(
      ".globaltype __stack_pointer, i32\n"
      "local.get %0\n"
      "global.set __stack_pointer\n" ::"r"(stack_top));
  worker_body(tls, tid);
}
#else
// The single-threaded build (browsers without cross-origin isolation): thread_local is a plain global there.
__attribute__((export_name("dn_tls_size"))) size_t dn_tls_size(void) { return 0; }
__attribute__((export_name("dn_init"))) int dn_init(void) {
  __wasm_call_ctors();
  return 1;
}
__attribute__((export_name("dn_worker_start"))) void dn_worker_start(void*, void*, int) { __builtin_trap(); }
#endif

}  // extern "C"

void* operator new(size_t n) { return malloc(n); }
void* operator new[](size_t n) { return malloc(n); }
void* operator new(size_t n, const std::nothrow_t&) noexcept { return malloc(n); }
void* operator new[](size_t n, const std::nothrow_t&) noexcept { return malloc(n); }
void operator delete(void* p) noexcept { free(p); }
void operator delete[](void* p) noexcept { free(p); }
void operator delete(void* p, size_t) noexcept { free(p); }
void operator delete[](void* p, size_t) noexcept { free(p); }
