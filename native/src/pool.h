// The addon's one thread pool: persistent std::thread workers, parked on a condition variable after a
// short spin. The calling (JS) thread always takes part, so a pool of T threads has T−1 workers.
// Work submitted from inside a pool task runs inline (no nesting), and small work should not be submitted
// at all (parallel_for runs inline when the range is below its grain).
#pragma once
#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <atomic>
#include <type_traits>

namespace dn {

using TaskFn = void (*)(void* ctx, int task, int ntasks);

/** Most tasks one job may have; task ids index per-task scratch buffers. */
constexpr int kMaxTasks = 1024;
/** Tasks per thread that parallel_for cuts large ranges into (handed out dynamically, see pool_run). */
constexpr int kTasksPerThread = 4;

/** Runs fn(ctx, t, ntasks) once for every task t in [0, ntasks) (ntasks ≤ kMaxTasks) and returns when all
 *  are done. Participating threads, the caller included, take tasks from a shared counter until none are
 *  left: a thread that is slow, descheduled or still waking up simply takes fewer (the caller never waits
 *  for a worker that has not started). Inside a pool task, or with one thread, the tasks run inline. */
void pool_run(int ntasks, TaskFn fn, void* ctx);
/** Number of threads (caller included) the pool runs with. */
int pool_threads();
/** Resizes the pool (1..256). Must not be called while a task runs. */
void pool_set_threads(int n);
/** True on a pool worker or inside a task on the caller. */
bool pool_in_task();

/** f(task, ntasks) for every task in [0, ntasks), on the pool. */
template <class F>
inline void parallel_run(int ntasks, F&& f) {
  ntasks = std::min(ntasks, kMaxTasks);
  if (ntasks <= 0) return;
  if (ntasks == 1 || pool_threads() <= 1 || pool_in_task()) {
    for (int t = 0; t < ntasks; t++) f(t, ntasks);
    return;
  }
  using Fn = std::remove_reference_t<F>;
  struct Ctx { Fn* f; };
  Ctx c{&f};
  pool_run(ntasks, [](void* p, int t, int n) { (*static_cast<Ctx*>(p)->f)(t, n); }, &c);
}

/** Number of chunks parallel_for / parallel_for_tid cut [0, n) into (1 when it runs inline). */
inline int64_t parallel_chunks(int64_t n, int64_t grain) {
  if (n <= 0) return 0;
  if (grain < 1) grain = 1;
  const int T = pool_threads();
  if (T <= 1 || pool_in_task()) return 1;
  return std::max<int64_t>(1, std::min<int64_t>({int64_t(T) * kTasksPerThread, (n + grain - 1) / grain, kMaxTasks}));
}

/** f(begin, end) over [0, n) in contiguous chunks of at least `grain` items (up to kTasksPerThread per
 *  thread, handed out dynamically). */
template <class F>
inline void parallel_for(int64_t n, int64_t grain, F&& f) {
  const int64_t chunks = parallel_chunks(n, grain);
  if (chunks == 0) return;
  if (chunks == 1) { f(int64_t(0), n); return; }
  parallel_run(int(chunks), [&](int t, int nt) {
    int64_t b = n * t / nt, e = n * (t + 1) / nt;
    if (b < e) f(b, e);
  });
}

/** f(chunk, begin, end): parallel_for that also passes the chunk index (< parallel_chunks(n, grain)),
 *  for per-chunk scratch or partial results. The chunking depends only on n, grain and the pool size. */
template <class F>
inline void parallel_for_tid(int64_t n, int64_t grain, F&& f) {
  const int64_t chunks = parallel_chunks(n, grain);
  if (chunks == 0) return;
  if (chunks == 1) { f(0, int64_t(0), n); return; }
  parallel_run(int(chunks), [&](int t, int nt) {
    int64_t b = n * t / nt, e = n * (t + 1) / nt;
    if (b < e) f(t, b, e);
  });
}

/** f(tid, i) for every i in [0, n), handed out one at a time from a shared counter (dynamic balance: a
 *  descheduled or slower thread takes fewer items). Which thread runs which item varies between calls, so
 *  results must not depend on it (index partial results by item, not by tid). */
template <class F>
inline void parallel_dynamic(int64_t n, F&& f, bool parallel = true) {
  if (n <= 0) return;
  const int nth = parallel ? int(std::min<int64_t>(pool_threads(), n)) : 1;
  if (nth <= 1 || pool_in_task()) {
    for (int64_t i = 0; i < n; i++) f(0, i);
    return;
  }
  std::atomic<int64_t> next{0};
  parallel_run(nth, [&](int t, int) {
    for (int64_t i = next.fetch_add(1, std::memory_order_relaxed); i < n; i = next.fetch_add(1, std::memory_order_relaxed))
      f(t, i);
  });
}

/** Grow-only, 64-byte aligned scratch memory: slot × task id (0..kMaxTasks−1), plus one shared buffer per
 *  slot at id kShared. Returns nullptr when the allocation fails. Valid until the next call with the same
 *  (slot, id); a task id is used by one thread at a time. */
float* scratch(int slot, int tid, size_t floats);
constexpr int kScratchSlots = 7;
constexpr int kShared = kMaxTasks;

}  // namespace dn
