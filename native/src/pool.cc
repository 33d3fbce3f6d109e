#include "pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <immintrin.h>
static inline void cpu_relax() { _mm_pause(); }
#elif defined(__aarch64__)
static inline void cpu_relax() { __asm__ __volatile__("yield"); }
#else
static inline void cpu_relax() {}
#endif

namespace dn {
namespace {

thread_local bool t_in_task = false;

int default_threads() {
  if (const char* s = std::getenv("DIFFUSE_NUM_THREADS")) {
    char* end = nullptr;
    long v = std::strtol(s, &end, 10);
    if (end != s && v >= 1) return int(std::min<long>(v, 256));
  }
#if defined(__linux__)
  cpu_set_t set;  // the CPUs this process may run on (taskset / container cpusets), not all of the machine's
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n >= 1) return std::min(n, 256);
  }
#endif
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : int(std::min<unsigned>(hc, 256));
}

// Jobs are split into nth "tickets" (task ids 0..nth−1). Every participant, the caller included, takes
// tickets from one atomic word until none are left, so a worker that is descheduled or still asleep is
// never waited for: the caller runs its tickets instead. The word packs [job seq:32 | nth:16 | next:16],
// so a late worker can never take a ticket of a job other than the one it saw.
class Pool {
 public:
  explicit Pool(int n) { start(n); }
  ~Pool() { stop(); }

  int size() const { return nthreads_; }

  void resize(int n) {
    if (n == nthreads_) return;
    stop();
    start(n);
  }

  void run(int nth, TaskFn fn, void* ctx) {
    fn_ = fn;
    ctx_ = ctx;
    done_.store(0, std::memory_order_relaxed);
    const uint64_t seq = (job_.load(std::memory_order_relaxed) >> 32) + 1;
    {
      std::lock_guard<std::mutex> lk(mu_);
      job_.store((seq << 32) | (uint64_t(nth) << 16), std::memory_order_release);
    }
    if (sleepers_.load(std::memory_order_acquire) > 0) cv_.notify_all();
    t_in_task = true;
    work(seq);
    t_in_task = false;
    // All tickets are taken; wait for the ones other threads hold: spin a little, then block (never
    // busy-yield: on an oversubscribed machine that burns the CPU time the workers need).
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; done_.load(std::memory_order_acquire) != nth; i++) {
      cpu_relax();
      if ((i & 127) == 127 && std::chrono::steady_clock::now() - t0 > std::chrono::microseconds(30)) {
        std::unique_lock<std::mutex> lk(done_mu_);
        done_cv_.wait(lk, [&] { return done_.load(std::memory_order_acquire) == nth; });
        break;
      }
    }
  }

 private:
  /** Takes and runs tickets of job `seq` until there are none left; returns how many it ran. */
  int work(uint64_t seq) {
    int ran = 0;
    for (;;) {
      uint64_t v = job_.load(std::memory_order_acquire);
      int t, nth;
      for (;;) {
        if ((v >> 32) != seq) return ran;
        nth = int((v >> 16) & 0xffff);
        t = int(v & 0xffff);
        if (t >= nth) return ran;
        if (job_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel, std::memory_order_acquire)) break;
      }
      fn_(ctx_, t, nth);
      ran++;
      if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == nth) {
        std::lock_guard<std::mutex> lk(done_mu_);  // pairs with the caller's predicate check: no lost wake-up
        done_cv_.notify_one();
      }
    }
  }

  void start(int n) {
    nthreads_ = std::max(1, n);
    stop_ = false;
    const uint64_t seq0 = job_.load(std::memory_order_acquire) >> 32;  // workers wait for a later job
    for (int t = 1; t < nthreads_; t++) workers_.emplace_back([this, seq0] { loop(seq0); });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
      const uint64_t seq = (job_.load(std::memory_order_relaxed) >> 32) + 1;
      job_.store(seq << 32, std::memory_order_release);  // an empty job (nth = 0) wakes everyone
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
    nthreads_ = 1;
  }

  void loop(uint64_t seen) {
    t_in_task = true;
    for (;;) {
      // Spin briefly (kernels arrive back to back during a training step), then block.
      auto t0 = std::chrono::steady_clock::now();
      uint64_t seq;
      for (int i = 0;; i++) {
        seq = job_.load(std::memory_order_acquire) >> 32;
        if (seq != seen) break;
        cpu_relax();
        if ((i & 255) == 255 && std::chrono::steady_clock::now() - t0 > std::chrono::microseconds(100)) {
          std::unique_lock<std::mutex> lk(mu_);
          sleepers_.fetch_add(1, std::memory_order_acq_rel);
          cv_.wait(lk, [&] { return (job_.load(std::memory_order_acquire) >> 32) != seen; });
          sleepers_.fetch_sub(1, std::memory_order_acq_rel);
          seq = job_.load(std::memory_order_acquire) >> 32;
          break;
        }
      }
      seen = seq;
      if (stop_) return;
      work(seq);
    }
  }

  int nthreads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::mutex done_mu_;
  std::condition_variable done_cv_;
  std::atomic<uint64_t> job_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<int> done_{0};
  std::atomic<bool> stop_{false};
  TaskFn fn_ = nullptr;
  void* ctx_ = nullptr;
};

Pool& pool() {
  static Pool* p = new Pool(default_threads());  // never destroyed: workers may outlive static teardown order
  return *p;
}

struct Buf {
  float* p = nullptr;
  size_t n = 0;
};
std::mutex g_scratch_mu;
std::vector<Buf> g_scratch;  // [slot · (kMaxTasks + 1) + id]

}  // namespace

void pool_run(int ntasks, TaskFn fn, void* ctx) {
  Pool& p = pool();
  ntasks = std::min(ntasks, kMaxTasks);
  if (ntasks <= 0) return;
  if (ntasks == 1 || p.size() <= 1 || t_in_task) {
    const bool was = t_in_task;
    t_in_task = true;
    for (int t = 0; t < ntasks; t++) fn(ctx, t, ntasks);
    t_in_task = was;
    return;
  }
  p.run(ntasks, fn, ctx);
}

int pool_threads() { return pool().size(); }

void pool_set_threads(int n) { pool().resize(std::max(1, std::min(n, 256))); }

bool pool_in_task() { return t_in_task; }

float* scratch(int slot, int tid, size_t floats) {
  if (slot < 0 || slot >= kScratchSlots || tid < 0 || tid > kShared) return nullptr;
  Buf* b;
  {
    std::lock_guard<std::mutex> lk(g_scratch_mu);
    if (g_scratch.empty()) g_scratch.resize(size_t(kScratchSlots) * (kMaxTasks + 1));
    b = &g_scratch[size_t(slot) * (kMaxTasks + 1) + size_t(tid)];
  }
  if (b->n >= floats && b->p) return b->p;
  std::free(b->p);
  b->p = nullptr;
  b->n = 0;
  size_t want = std::max<size_t>(floats, 1024);
  want = (want + 15) & ~size_t(15);
  void* q = nullptr;
  if (posix_memalign(&q, 64, want * sizeof(float)) != 0) return nullptr;
  b->p = static_cast<float*>(q);
  b->n = want;
  return b->p;
}

}  // namespace dn
