// SIGINT / SIGTERM as a flag that JavaScript reads between kernel calls.
//
// Node runs its own signal handlers (process.on('SIGTERM')) on the event loop, which a long synchronous
// training step never reaches: the step would finish before anyone heard the signal. This handler, chained in
// front of libuv's, stores the signal number in a 4-byte buffer that the engine checks before each kernel
// (src/tensor/cancel.ts), then calls the handler it replaced, so Node's own handlers still run later.
// Storing one aligned int is async-signal-safe. Install it after process.on(...) has installed libuv's
// handler, and remove it before process.off(...) restores the default.
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>

#include <cstdint>

#if !defined(_WIN32)
#include <signal.h>
#endif

namespace dn {
namespace {

int32_t* g_flag = nullptr;     // the backing store of a buffer kept alive by g_flag_ref
napi_ref g_flag_ref = nullptr;
napi_env g_flag_env = nullptr;  // the env that owns the buffer (worker threads get no flag)

#if !defined(_WIN32)
struct sigaction g_prev_int, g_prev_term;
bool g_installed = false;

void forward(const struct sigaction& prev, int sig, siginfo_t* info, void* ctx) {
  if (prev.sa_flags & SA_SIGINFO) {
    if (prev.sa_sigaction) prev.sa_sigaction(sig, info, ctx);
  } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN && prev.sa_handler != nullptr) {
    prev.sa_handler(sig);
  }
}

void on_signal(int sig, siginfo_t* info, void* ctx) {
  if (int32_t* f = g_flag) __atomic_store_n(f, sig, __ATOMIC_SEQ_CST);
  forward(sig == SIGINT ? g_prev_int : g_prev_term, sig, info, ctx);
}

bool is_ours(int sig) {
  struct sigaction cur;
  return sigaction(sig, nullptr, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_signal;
}
#endif

napi_value undefined_value(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

// watchSignals() → Int32Array(1): 0 until SIGINT or SIGTERM arrives, then the signal number (reset it by
// writing 0). Returns null where there are no POSIX signals or on a worker thread's second env.
napi_value WatchSignals(napi_env env, napi_callback_info) {
  napi_value result;
#if defined(_WIN32)
  napi_get_null(env, &result);
  return result;
#else
  if (g_flag_env != nullptr && g_flag_env != env) {
    napi_get_null(env, &result);
    return result;
  }
  napi_value ab;
  if (g_flag_ref == nullptr) {
    void* data = nullptr;
    if (napi_create_arraybuffer(env, sizeof(int32_t), &data, &ab) != napi_ok) return undefined_value(env);
    if (napi_create_reference(env, ab, 1, &g_flag_ref) != napi_ok) return undefined_value(env);
    g_flag = static_cast<int32_t*>(data);
    *g_flag = 0;
    g_flag_env = env;
  } else if (napi_get_reference_value(env, g_flag_ref, &ab) != napi_ok) {
    return undefined_value(env);
  }
  if (!g_installed) {
    struct sigaction sa = {};
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, &g_prev_int) != 0) return undefined_value(env);
    if (sigaction(SIGTERM, &sa, &g_prev_term) != 0) {
      sigaction(SIGINT, &g_prev_int, nullptr);
      return undefined_value(env);
    }
    g_installed = true;
  }
  if (napi_create_typedarray(env, napi_int32_array, 1, ab, 0, &result) != napi_ok) return undefined_value(env);
  return result;
#endif
}

// unwatchSignals(): puts back the handlers watchSignals replaced (where ours is still installed).
napi_value UnwatchSignals(napi_env env, napi_callback_info) {
#if !defined(_WIN32)
  if (g_installed && g_flag_env == env) {
    if (is_ours(SIGINT)) sigaction(SIGINT, &g_prev_int, nullptr);
    if (is_ours(SIGTERM)) sigaction(SIGTERM, &g_prev_term, nullptr);
    g_installed = false;
  }
#endif
  return undefined_value(env);
}

}  // namespace

bool register_signal_functions(napi_env env, napi_value exports) {
  const struct { const char* name; napi_callback fn; } entries[] = {
      {"watchSignals", WatchSignals},
      {"unwatchSignals", UnwatchSignals},
  };
  for (const auto& e : entries) {
    napi_value f;
    if (napi_create_function(env, e.name, NAPI_AUTO_LENGTH, e.fn, nullptr, &f) != napi_ok) return false;
    if (napi_set_named_property(env, exports, e.name, f) != napi_ok) return false;
  }
  return true;
}

}  // namespace dn
