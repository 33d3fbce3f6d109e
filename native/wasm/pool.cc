// The thread pool of the WebAssembly build (native/src/pool.h), over WebAssembly threads: one instance of
// the module per Web Worker / worker_thread, all on the same shared memory (src/backends/wasm/threads.ts
// starts them). The protocol is native/src/pool.cc's: a job is split into tickets taken from one atomic word
// [job seq:32 | ntasks:16 | next:16] by every participant, the caller included, so a worker that is slow to
// start, descheduled or asleep is never waited for — the caller runs its tickets instead; the caller waits
// only for tickets already taken. Idle workers spin briefly, then sleep in memory.atomic.wait32.
//
// The caller may block (memory.atomic.wait32) only where the embedder allows it: Node's main thread and
// workers do, a browser's main thread does not (dn_set_can_block(0): it spins instead).
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>

#include "../src/pool.h"

#if defined(__wasm_atomics__)
#define DN_WAIT32(p, v, t) __builtin_wasm_memory_atomic_wait32(p, v, t)
#define DN_NOTIFY(p, n) __builtin_wasm_memory_atomic_notify(p, n)
#else  // the single-threaded build: one thread, nothing to wait for
#define DN_WAIT32(p, v, t) 0
#define DN_NOTIFY(p, n) 0
#endif

namespace dn {
namespace {

thread_local bool t_in_task = false;

int g_threads = 1;                       // the caller and the workers JavaScript started
std::atomic<uint64_t> g_word{0};         // [seq:32 | ntasks:16 | next:16]
std::atomic<int32_t> g_seq{0};           // futex: the latest job's seq (workers sleep on it)
std::atomic<int32_t> g_done{0};          // futex: tickets of the current job finished
std::atomic<int32_t> g_sleepers{0};      // workers in (or about to enter) wait32 on g_seq
std::atomic<int32_t> g_caller_waiting{0};
std::atomic<int32_t> g_quit{0};
TaskFn g_fn = nullptr;
void* g_ctx = nullptr;
uint32_t g_next_seq = 0;
bool g_can_block = true;

constexpr int kSpin = 1 << 16;  // ~50–100 µs of polling before a worker sleeps

/** Takes and runs tickets of job `seq` until none are left (or a newer job has replaced it). */
void run_tickets(uint32_t seq) {
  for (;;) {
    uint64_t w = g_word.load(std::memory_order_acquire);
    if (uint32_t(w >> 32) != seq) return;
    const int nt = int((w >> 16) & 0xffff), nx = int(w & 0xffff);
    if (nx >= nt) return;
    if (!g_word.compare_exchange_weak(w, w + 1, std::memory_order_acq_rel)) continue;
    // the job is still live: its caller waits for this ticket before returning
    g_fn(g_ctx, nx, nt);
    if (g_done.fetch_add(1, std::memory_order_acq_rel) + 1 == nt && g_caller_waiting.load())
      DN_NOTIFY(reinterpret_cast<int*>(&g_done), 1);
  }
}

}  // namespace

void pool_run(int ntasks, TaskFn fn, void* ctx) {
  if (ntasks <= 0) return;
  if (ntasks == 1 || g_threads <= 1 || t_in_task) {
    const bool was = t_in_task;
    t_in_task = true;
    for (int t = 0; t < ntasks; t++) fn(ctx, t, ntasks);
    t_in_task = was;
    return;
  }
  g_fn = fn;
  g_ctx = ctx;
  g_done.store(0);
  const uint32_t seq = ++g_next_seq;
  g_word.store((uint64_t(seq) << 32) | (uint64_t(ntasks) << 16), std::memory_order_release);
  g_seq.store(int32_t(seq));
  if (g_sleepers.load() > 0) DN_NOTIFY(reinterpret_cast<int*>(&g_seq), 0xffffffffu);
  t_in_task = true;
  run_tickets(seq);
  t_in_task = false;
  for (int spins = 0;;) {
    const int32_t d = g_done.load(std::memory_order_acquire);
    if (d >= ntasks) break;
    if (!g_can_block || ++spins < kSpin) continue;
    g_caller_waiting.store(1);
    if (g_done.load() < ntasks) DN_WAIT32(reinterpret_cast<int*>(&g_done), d, 1000000);
    g_caller_waiting.store(0);
  }
}

int pool_threads() { return g_threads; }
void pool_set_threads(int n) { g_threads = std::max(1, std::min(n, 256)); }
bool pool_in_task() { return t_in_task; }

namespace {
struct Buf { float* p = nullptr; size_t n = 0; };
Buf g_scratch[size_t(kScratchSlots) * (kMaxTasks + 1)];
}  // namespace

float* scratch(int slot, int tid, size_t floats) {
  if (slot < 0 || slot >= kScratchSlots || tid < 0 || tid > kShared) return nullptr;
  // each (slot, id) is used by one thread at a time (pool.h); malloc is thread-safe
  Buf* b = &g_scratch[size_t(slot) * (kMaxTasks + 1) + size_t(tid)];
  if (b->n >= floats && b->p) return b->p;
  std::free(b->p);
  b->p = nullptr;
  b->n = 0;
  size_t want = std::max<size_t>(floats, 1024);
  want = (want + 15) & ~size_t(15);
  b->p = static_cast<float*>(std::malloc(want * sizeof(float)));
  if (b->p) b->n = want;
  return b->p;
}

}  // namespace dn

extern "C" {

/** A worker's loop (runtime.cc dn_worker_start): every job's tickets until dn_pool_quit. */
void dn_worker_loop(int) {
  using namespace dn;
  t_in_task = true;  // kernels submitted from a worker's task run inline
  int32_t seen = g_seq.load();
  for (;;) {
    int32_t s;
    for (int spins = 0; (s = g_seq.load(std::memory_order_acquire)) == seen;) {
      if (g_quit.load(std::memory_order_relaxed)) return;
      if (++spins < kSpin) continue;
      g_sleepers.fetch_add(1);
      DN_WAIT32(reinterpret_cast<int*>(&g_seq), seen, -1);
      g_sleepers.fetch_sub(1);
      spins = 0;
    }
    seen = s;
    if (g_quit.load()) return;
    run_tickets(uint32_t(s));
  }
}

__attribute__((export_name("dn_set_threads"))) int dn_set_threads(int n) {
  dn::pool_set_threads(n);
  return dn::pool_threads();
}
__attribute__((export_name("dn_set_can_block"))) void dn_set_can_block(int b) { dn::g_can_block = b != 0; }
/** Wakes every worker and makes its loop return (its instance can then be dropped). */
__attribute__((export_name("dn_pool_quit"))) void dn_pool_quit(void) {
  dn::g_quit.store(1);
  dn::g_seq.fetch_add(1);
  DN_NOTIFY(reinterpret_cast<int*>(&dn::g_seq), 0xffffffffu);
}

}  // extern "C"
