// N-API surface of diffuse_native: one function per Backend kernel (see src/backends/backend.ts).
// Every function checks its argument count and types, that every number is a finite integer in range where a
// size is expected, and that every buffer is exactly (or, for strided views, at least) as long as the shape
// arguments imply. A mismatch throws a JS Error naming the kernel and the argument; nothing reads or writes
// out of bounds. Outputs are new Float32Arrays allocated here, uninitialized (every kernel writes its whole
// output).
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>

#include <cmath>
#include <mutex>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "conv_impl.h"
#include "cpu.h"
#include "kernels.h"
#include "pool.h"

namespace dn {

/** Type tag of the large outputs alloc() makes (see Free). */
const napi_type_tag kOutputTag = {0x6469666675736530ULL, 0x6f75747075747331ULL};
bool register_signal_functions(napi_env env, napi_value exports);  // signals.cc

namespace {

constexpr int kMaxArgs = 20;
constexpr double kMaxSize = 9007199254740991.0;  // 2^53 − 1
constexpr int64_t kBlasMax = 2147483647;          // GEMM dimensions fit an int

// One kernel at a time per process: the pool, its scratch buffers and the conv settings are process-wide,
// while the addon may be loaded by several worker_threads (each its own napi_env) calling concurrently.
std::mutex g_kernel_mu;

struct Call {
  std::lock_guard<std::mutex> lock{g_kernel_mu};  // held for the whole call (validation included: cheap)
  napi_env env;
  const char* kernel;
  size_t argc = kMaxArgs;
  napi_value argv[kMaxArgs];
  bool failed = false;

  Call(napi_env e, napi_callback_info info, const char* k) : env(e), kernel(k) {
    if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) {
      fail("could not read arguments");
      argc = 0;
    }
  }

  bool fail(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    if (failed) return false;
    failed = true;
    char msg[512];
    int n = std::snprintf(msg, sizeof msg, "diffuse_native.%s: ", kernel);
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(msg + n, sizeof msg - size_t(n), fmt, ap);
    va_end(ap);
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) napi_throw_error(env, nullptr, msg);
    return false;
  }

  bool expect_args(size_t n) {
    if (argc < n) return fail("expected %zu arguments, got %zu", n, argc);
    return true;
  }

  napi_valuetype type_of(size_t i) {
    napi_valuetype t = napi_undefined;
    if (i < argc) napi_typeof(env, argv[i], &t);
    return t;
  }

  bool is_nullish(size_t i) {
    napi_valuetype t = type_of(i);
    return t == napi_null || t == napi_undefined;
  }

  /** Float32Array (or Int32Array when want_int) argument; nullable allows null/undefined (data = nullptr). */
  bool typed(size_t i, const char* name, napi_typedarray_type want, void** data, int64_t* len, bool nullable = false) {
    if (failed) return false;
    if (nullable && is_nullish(i)) { *data = nullptr; *len = -1; return true; }
    bool is = false;
    if (i >= argc || napi_is_typedarray(env, argv[i], &is) != napi_ok || !is)
      return fail("argument %zu (%s) must be a %s%s", i, name,
                  want == napi_float32_array ? "Float32Array" : "Int32Array", nullable ? " or null" : "");
    napi_typedarray_type t;
    size_t length = 0;
    void* d = nullptr;
    if (napi_get_typedarray_info(env, argv[i], &t, &length, &d, nullptr, nullptr) != napi_ok)
      return fail("argument %zu (%s): could not read the typed array", i, name);
    if (t != want)
      return fail("argument %zu (%s) must be a %s", i, name, want == napi_float32_array ? "Float32Array" : "Int32Array");
    if (length > 0 && d == nullptr) return fail("argument %zu (%s) is detached", i, name);
    *data = d;
    *len = int64_t(length);
    return true;
  }

  bool f32(size_t i, const char* name, float** p, int64_t* len, bool nullable = false) {
    void* d;
    if (!typed(i, name, napi_float32_array, &d, len, nullable)) return false;
    *p = static_cast<float*>(d);
    return true;
  }

  bool i32(size_t i, const char* name, int32_t** p, int64_t* len) {
    void* d;
    if (!typed(i, name, napi_int32_array, &d, len)) return false;
    *p = static_cast<int32_t*>(d);
    return true;
  }

  bool number(size_t i, const char* name, double* out) {
    if (failed) return false;
    if (type_of(i) != napi_number) return fail("argument %zu (%s) must be a number", i, name);
    napi_get_value_double(env, argv[i], out);
    return true;
  }

  /** Integer in [lo, hi]. */
  bool integer(size_t i, const char* name, int64_t* out, double lo = 0, double hi = kMaxSize) {
    double v;
    if (!number(i, name, &v)) return false;
    if (!(v == std::floor(v)) || v < lo || v > hi)
      return fail("argument %zu (%s) must be an integer in [%.0f, %.0f], got %g", i, name, lo, hi, v);
    *out = int64_t(v);
    return true;
  }

  bool boolean(size_t i, const char* name, bool* out) {
    if (failed) return false;
    if (type_of(i) != napi_boolean) return fail("argument %zu (%s) must be a boolean", i, name);
    napi_get_value_bool(env, argv[i], out);
    return true;
  }

  /** Array of integers (at most kMaxDims) in [lo, hi]. */
  bool int_array(size_t i, const char* name, int64_t* out, int* count, double lo, double hi) {
    if (failed) return false;
    bool is = false;
    if (i >= argc || napi_is_array(env, argv[i], &is) != napi_ok || !is)
      return fail("argument %zu (%s) must be an array of integers", i, name);
    uint32_t n = 0;
    napi_get_array_length(env, argv[i], &n);
    if (n > uint32_t(kMaxDims)) return fail("argument %zu (%s) has %u entries (at most %d)", i, name, n, kMaxDims);
    for (uint32_t k = 0; k < n; k++) {
      napi_value e;
      double v = NAN;
      napi_valuetype t = napi_undefined;
      if (napi_get_element(env, argv[i], k, &e) == napi_ok) napi_typeof(env, e, &t);
      if (t == napi_number) napi_get_value_double(env, e, &v);
      if (!(v == std::floor(v)) || v < lo || v > hi)
        return fail("argument %zu (%s)[%u] must be an integer in [%.0f, %.0f]", i, name, k, lo, hi);
      out[k] = int64_t(v);
    }
    *count = int(n);
    return true;
  }

  bool str(size_t i, const char* name, char* buf, size_t cap) {
    if (failed) return false;
    if (type_of(i) != napi_string) return fail("argument %zu (%s) must be a string", i, name);
    size_t len = 0;
    napi_get_value_string_utf8(env, argv[i], buf, cap, &len);
    return true;
  }

  /** Named integer property of an object argument. */
  bool prop_int(size_t i, const char* key, int64_t* out, double lo, double hi) {
    if (failed) return false;
    napi_value v;
    napi_valuetype t = napi_undefined;
    if (napi_get_named_property(env, argv[i], key, &v) == napi_ok) napi_typeof(env, v, &t);
    double d = NAN;
    if (t == napi_number) napi_get_value_double(env, v, &d);
    if (!(d == std::floor(d)) || d < lo || d > hi)
      return fail("geometry.%s must be an integer in [%.0f, %.0f]", key, lo, hi);
    *out = int64_t(d);
    return true;
  }

  /** New Float32Array of `count` elements; *data receives its (uninitialized) storage.
   *  The storage is a V8-owned backing store (napi_create_buffer: malloc without zero-fill), freed by the
   *  garbage collector directly. (External array buffers are not used: Node defers their finalizers to the
   *  event loop, so a synchronous training loop would never give their memory back.) */
  napi_value alloc(int64_t count, float** data) {
    if (failed) return nullptr;
    if (count < 0 || double(count) * 4.0 > kMaxSize) { fail("output too large"); return nullptr; }
    const size_t bytes = size_t(count) * sizeof(float);
    napi_value buf = nullptr, ab = nullptr, out = nullptr;
    void* p = nullptr;
    size_t offset = 0;
    // small: a plain (zero-filled) ArrayBuffer is the cheapest object to make; large: skip the zero fill
    bool small = bytes <= (size_t(1) << 16);
    if (!small && (napi_create_buffer(env, bytes, &p, &buf) != napi_ok ||
                   napi_get_typedarray_info(env, buf, nullptr, nullptr, nullptr, &ab, &offset) != napi_ok ||
                   offset % alignof(float) != 0)) {
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) { failed = true; return nullptr; }  // e.g. ERR_BUFFER_TOO_LARGE, already thrown
      small = true;  // try V8's allocator instead
    }
    if (small) {
      offset = 0;
      if (napi_create_arraybuffer(env, bytes, &p, &ab) != napi_ok) {
        fail("could not allocate an output of %lld floats", (long long)count);
        return nullptr;
      }
    }
    if (napi_create_typedarray(env, napi_float32_array, size_t(count), ab, offset, &out) != napi_ok) {
      fail("could not create the output array");
      return nullptr;
    }
    // Large outputs are marked as ours: free() gives back only what a kernel made (never a caller's array).
    if (!small) napi_type_tag_object(env, ab, &kOutputTag);
    *data = static_cast<float*>(p);
    return out;
  }

  napi_value undefined() {
    napi_value u;
    napi_get_undefined(env, &u);
    return u;
  }
  napi_value null() {
    napi_value u;
    napi_get_null(env, &u);
    return u;
  }
};

/** a·b with overflow / 2^53 check. */
bool mul(int64_t a, int64_t b, int64_t* out) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r) || double(r) > kMaxSize) return false;
  *out = r;
  return true;
}

bool product(Call& c, const int64_t* v, int n, int64_t* out, const char* what) {
  int64_t p = 1;
  for (int i = 0; i < n; i++)
    if (!mul(p, v[i], &p)) return c.fail("%s is too large", what);
  *out = p;
  return true;
}

/** Checks that offset + Σ idx·stride stays inside [0, len) for every index of shape (non-empty shape). */
bool strided_in_bounds(Call& c, const char* name, int64_t len, int64_t offset, const int64_t* strides,
                       const int64_t* shape, int nd) {
  __int128 lo = offset, hi = offset;
  for (int d = 0; d < nd; d++) {
    if (shape[d] == 0) return true;
    __int128 span = (__int128)(shape[d] - 1) * strides[d];
    if (span < 0) lo += span; else hi += span;
  }
  if (lo < 0 || hi >= len)
    return c.fail("%s: strided view reaches element %lld but the array has %lld elements", name,
                  (long long)(lo < 0 ? (long long)lo : (long long)hi), (long long)len);
  return true;
}

// Same order as the UnaryOp enum (kernels.h): the primitive ops, then the activations.
const char* const kUnaryNames[U_COUNT] = {"neg", "exp", "log",  "sqrt",       "rsqrt", "sin",     "cos",  "tanh",
                                          "relu", "abs", "square", "reciprocal", "erf", "sigmoid", "silu", "gelu"};

/** Code of a unary op in [lo, hi), or -1. */
int unary_code(const char* s, int lo, int hi) {
  for (int i = lo; i < hi; i++)
    if (std::strcmp(s, kUnaryNames[i]) == 0) return i;
  return -1;
}

int binary_code(const char* s) {
  static const char* names[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "gt", "lt"};
  for (int i = 0; i < B_COUNT; i++)
    if (std::strcmp(s, names[i]) == 0) return i;
  return -1;
}

#define DN_FN(name) napi_value name(napi_env env, napi_callback_info info)

// ---------------------------------------------------------------- elementwise

/** The one output pattern of the kernels: a new Float32Array of n elements, filled by fn(out). */
template <class F>
napi_value map_out(Call& c, int64_t n, F&& fn) {
  float* y;
  napi_value out = c.alloc(n, &y);
  if (!out) return nullptr;
  fn(y);
  return out;
}

/** Reads argument i as a unary op code in [lo, hi) ("unknown op" otherwise). */
bool op_code(Call& c, size_t i, int lo, int hi, int* code) {
  char op[32];
  if (!c.str(i, "op", op, sizeof op)) return false;
  *code = unary_code(op, lo, hi);
  if (*code < 0) return c.fail("unknown op '%s'", op);
  return true;
}

/** dy must have x's length. */
bool same_len(Call& c, const char* a, int64_t na, const char* b, int64_t nb) {
  if (na != nb) return c.fail("%s has %lld elements, %s has %lld", a, (long long)na, b, (long long)nb);
  return true;
}

DN_FN(Unary) {
  Call c(env, info, "unary");
  int code;
  float* x;
  int64_t n;
  if (!c.expect_args(2) || !op_code(c, 0, 0, U_FIRST_ACTIVATION, &code) || !c.f32(1, "x", &x, &n)) return nullptr;
  return map_out(c, n, [&](float* y) { unary(code, x, y, n); });
}

DN_FN(Activation) {
  Call c(env, info, "activation");
  int code;
  float* x;
  int64_t n;
  if (!c.expect_args(2) || !op_code(c, 0, U_FIRST_ACTIVATION, U_COUNT, &code) || !c.f32(1, "x", &x, &n)) return nullptr;
  return map_out(c, n, [&](float* y) { unary(code, x, y, n); });
}

DN_FN(ActivationBackward) {
  Call c(env, info, "activationBackward");
  int code;
  float *x, *dy;
  int64_t n, ndy;
  if (!c.expect_args(3) || !op_code(c, 0, U_FIRST_ACTIVATION, U_COUNT, &code) || !c.f32(1, "x", &x, &n) ||
      !c.f32(2, "dy", &dy, &ndy) || !same_len(c, "dy", ndy, "x", n))
    return nullptr;
  return map_out(c, n, [&](float* dx) { activation_backward(code, x, dy, dx, n); });
}

DN_FN(Binary) {
  Call c(env, info, "binary");
  char op[32];
  float *a, *b;
  int64_t na, nb, as[kMaxDims], bs[kMaxDims], shape[kMaxDims];
  int nda, ndb, nd;
  if (!c.expect_args(6) || !c.str(0, "op", op, sizeof op) || !c.f32(1, "a", &a, &na) ||
      !c.int_array(2, "aStrides", as, &nda, -kMaxSize, kMaxSize) || !c.f32(3, "b", &b, &nb) ||
      !c.int_array(4, "bStrides", bs, &ndb, -kMaxSize, kMaxSize) ||
      !c.int_array(5, "outShape", shape, &nd, 0, kMaxSize))
    return nullptr;
  int code = binary_code(op);
  if (code < 0) { c.fail("unknown op '%s'", op); return nullptr; }
  if (nda != nd || ndb != nd) { c.fail("aStrides, bStrides and outShape must have the same length"); return nullptr; }
  int64_t total;
  if (!product(c, shape, nd, &total, "outShape")) return nullptr;
  if (total > 0 && (!strided_in_bounds(c, "a", na, 0, as, shape, nd) || !strided_in_bounds(c, "b", nb, 0, bs, shape, nd)))
    return nullptr;
  return map_out(c, total, [&](float* o) { if (total > 0) binary(code, a, as, b, bs, shape, nd, o); });
}

DN_FN(Where) {
  Call c(env, info, "where");
  float *cd, *a, *b;
  int64_t nc, na, nb, cs[kMaxDims], as[kMaxDims], bs[kMaxDims], shape[kMaxDims];
  int ndc, nda, ndb, nd;
  if (!c.expect_args(7) || !c.f32(0, "cond", &cd, &nc) || !c.int_array(1, "cStrides", cs, &ndc, -kMaxSize, kMaxSize) ||
      !c.f32(2, "a", &a, &na) || !c.int_array(3, "aStrides", as, &nda, -kMaxSize, kMaxSize) ||
      !c.f32(4, "b", &b, &nb) || !c.int_array(5, "bStrides", bs, &ndb, -kMaxSize, kMaxSize) ||
      !c.int_array(6, "outShape", shape, &nd, 0, kMaxSize))
    return nullptr;
  if (ndc != nd || nda != nd || ndb != nd) { c.fail("strides and outShape must have the same length"); return nullptr; }
  int64_t total;
  if (!product(c, shape, nd, &total, "outShape")) return nullptr;
  if (total > 0 && (!strided_in_bounds(c, "cond", nc, 0, cs, shape, nd) || !strided_in_bounds(c, "a", na, 0, as, shape, nd) ||
                    !strided_in_bounds(c, "b", nb, 0, bs, shape, nd)))
    return nullptr;
  return map_out(c, total, [&](float* o) { if (total > 0) where(cd, cs, a, as, b, bs, shape, nd, o); });
}

DN_FN(Affine) {
  Call c(env, info, "affine");
  float* x;
  int64_t n;
  double s, t;
  if (!c.expect_args(3) || !c.f32(0, "x", &x, &n) || !c.number(1, "scale", &s) || !c.number(2, "shift", &t)) return nullptr;
  return map_out(c, n, [&](float* y) { affine(x, y, n, s, t); });
}

DN_FN(PowScalar) {
  Call c(env, info, "powScalar");
  float* x;
  int64_t n;
  double p;
  if (!c.expect_args(2) || !c.f32(0, "x", &x, &n) || !c.number(1, "p", &p)) return nullptr;
  return map_out(c, n, [&](float* y) { pow_scalar(x, y, n, p); });
}

DN_FN(Clamp) {
  Call c(env, info, "clamp");
  float* x;
  int64_t n;
  double lo, hi;
  if (!c.expect_args(3) || !c.f32(0, "x", &x, &n) || !c.number(1, "lo", &lo) || !c.number(2, "hi", &hi)) return nullptr;
  return map_out(c, n, [&](float* y) { clamp(x, y, n, lo, hi); });
}

DN_FN(Reduce) {
  Call c(env, info, "reduce");
  char op[16];
  float* x;
  int64_t n, outer, size, inner;
  if (!c.expect_args(5) || !c.str(0, "op", op, sizeof op) || !c.f32(1, "x", &x, &n) ||
      !c.integer(2, "outer", &outer) || !c.integer(3, "size", &size) || !c.integer(4, "inner", &inner))
    return nullptr;
  int code = std::strcmp(op, "sum") == 0 ? 0 : std::strcmp(op, "max") == 0 ? 1 : -1;
  if (code < 0) { c.fail("unknown op '%s' (sum or max)", op); return nullptr; }
  int64_t oi, total;
  if (!mul(outer, inner, &oi) || !mul(oi, size, &total)) { c.fail("shape is too large"); return nullptr; }
  if (total != n) {
    c.fail("x has %lld elements, outer·size·inner = %lld", (long long)n, (long long)total);
    return nullptr;
  }
  return map_out(c, oi, [&](float* o) { reduce(code, x, o, outer, size, inner); });
}

DN_FN(StridedCopy) {
  Call c(env, info, "stridedCopy");
  float *src, *dst;
  int64_t ns, ndst, so, doff, ss[kMaxDims], ds[kMaxDims], shape[kMaxDims];
  int nss, nds, nd;
  bool acc;
  if (!c.expect_args(8) || !c.f32(0, "src", &src, &ns) || !c.integer(1, "srcOffset", &so) ||
      !c.int_array(2, "srcStrides", ss, &nss, -kMaxSize, kMaxSize) || !c.int_array(3, "shape", shape, &nd, 0, kMaxSize) ||
      !c.f32(4, "dst", &dst, &ndst) || !c.integer(5, "dstOffset", &doff) ||
      !c.int_array(6, "dstStrides", ds, &nds, -kMaxSize, kMaxSize) || !c.boolean(7, "accumulate", &acc))
    return nullptr;
  if (nss != nd || nds != nd) { c.fail("srcStrides, dstStrides and shape must have the same length"); return nullptr; }
  int64_t total;
  if (!product(c, shape, nd, &total, "shape")) return nullptr;
  if (total == 0) return c.undefined();
  if (!strided_in_bounds(c, "src", ns, so, ss, shape, nd) || !strided_in_bounds(c, "dst", ndst, doff, ds, shape, nd))
    return nullptr;
  strided_copy(src, so, ss, shape, nd, dst, doff, ds, acc);
  return c.undefined();
}

// ---------------------------------------------------------------- matmul / conv

DN_FN(Matmul) {
  Call c(env, info, "matmul");
  float *a, *b;
  int64_t na, nb, batch, m, n, k, sa, sb;
  bool ta, tb;
  if (!c.expect_args(10) || !c.f32(0, "a", &a, &na) || !c.f32(1, "b", &b, &nb) || !c.integer(2, "batch", &batch) ||
      !c.integer(3, "m", &m, 0, double(kBlasMax)) || !c.integer(4, "n", &n, 0, double(kBlasMax)) ||
      !c.integer(5, "k", &k, 0, double(kBlasMax)) || !c.boolean(6, "transA", &ta) || !c.boolean(7, "transB", &tb) ||
      !c.integer(8, "aBatchStride", &sa) || !c.integer(9, "bBatchStride", &sb))
    return nullptr;
  int64_t mk, kn, mn, total;
  if (!mul(m, k, &mk) || !mul(k, n, &kn) || !mul(m, n, &mn) || !mul(batch, mn, &total)) {
    c.fail("shape is too large");
    return nullptr;
  }
  if (batch > 0) {
    int64_t lastA, lastB;
    if (!mul(batch - 1, sa, &lastA) || !mul(batch - 1, sb, &lastB)) { c.fail("batch strides too large"); return nullptr; }
    if (mk > 0 && lastA + mk > na) {
      c.fail("a has %lld elements, needs (batch−1)·aBatchStride + m·k = %lld", (long long)na, (long long)(lastA + mk));
      return nullptr;
    }
    if (kn > 0 && lastB + kn > nb) {
      c.fail("b has %lld elements, needs (batch−1)·bBatchStride + k·n = %lld", (long long)nb, (long long)(lastB + kn));
      return nullptr;
    }
  }
  float* o;
  napi_value out = c.alloc(total, &o);
  if (!out) return nullptr;
  if (total > 0) {
    if (k == 0) std::memset(o, 0, size_t(total) * sizeof(float));
    else matmul(a, b, o, batch, m, n, k, ta, tb, sa, sb);
  }
  return out;
}

bool read_geom(Call& c, size_t i, ConvGeom* g) {
  if (c.failed) return false;
  if (c.type_of(i) != napi_object) return c.fail("argument %zu (geometry) must be an object", i);
  const double big = double(kBlasMax);
  if (!c.prop_int(i, "n", &g->n, 0, big) || !c.prop_int(i, "c", &g->c, 0, big) || !c.prop_int(i, "h", &g->h, 0, big) ||
      !c.prop_int(i, "w", &g->w, 0, big) || !c.prop_int(i, "o", &g->o, 0, big) || !c.prop_int(i, "kh", &g->kh, 1, 4096) ||
      !c.prop_int(i, "kw", &g->kw, 1, 4096) || !c.prop_int(i, "sh", &g->sh, 1, 4096) ||
      !c.prop_int(i, "sw", &g->sw, 1, 4096) || !c.prop_int(i, "ph", &g->ph, 0, 4096) ||
      !c.prop_int(i, "pw", &g->pw, 0, 4096) || !c.prop_int(i, "oh", &g->oh, 0, big) || !c.prop_int(i, "ow", &g->ow, 0, big))
    return false;
  // the output size must be the one the input and padding give (anything else would read outside x)
  const int64_t eh = g->h + 2 * g->ph - g->kh, ew = g->w + 2 * g->pw - g->kw;
  const int64_t oh = eh < 0 ? 0 : eh / g->sh + 1, ow = ew < 0 ? 0 : ew / g->sw + 1;
  if (g->oh != oh || g->ow != ow)
    return c.fail("geometry: oh×ow = %lld×%lld, but h=%lld w=%lld kh=%lld kw=%lld stride %lld,%lld pad %lld,%lld give %lld×%lld",
                  (long long)g->oh, (long long)g->ow, (long long)g->h, (long long)g->w, (long long)g->kh,
                  (long long)g->kw, (long long)g->sh, (long long)g->sw, (long long)g->ph, (long long)g->pw,
                  (long long)oh, (long long)ow);
  int64_t t;
  if (!mul(g->n, g->c, &t) || !mul(t, g->h, &t) || !mul(t, g->w, &t) || !mul(g->n, g->o, &t) || !mul(t, g->oh, &t) ||
      !mul(t, g->ow, &t) || !mul(g->o, g->c, &t) || !mul(t, g->kh, &t) || !mul(t, g->kw, &t) ||
      !mul(g->c * g->kh * g->kw, g->oh * g->ow, &t) || t > kBlasMax * 8)
    return c.fail("geometry is too large");
  if (g->c * g->kh * g->kw > kBlasMax || g->oh * g->ow > kBlasMax) return c.fail("geometry is too large");
  return true;
}

bool expect_len(Call& c, const char* name, int64_t have, int64_t want) {
  if (c.failed) return false;
  if (have != want)
    return c.fail("%s has %lld elements, the geometry needs %lld", name, (long long)have, (long long)want);
  return true;
}

DN_FN(Conv2d) {
  Call c(env, info, "conv2d");
  float *x, *w, *bias;
  int64_t nx, nw, nbias;
  ConvGeom g;
  if (!c.expect_args(4) || !c.f32(0, "x", &x, &nx) || !c.f32(1, "w", &w, &nw) || !c.f32(2, "bias", &bias, &nbias, true) ||
      !read_geom(c, 3, &g))
    return nullptr;
  if (!expect_len(c, "x", nx, g.n * g.c * g.h * g.w) || !expect_len(c, "w", nw, g.o * g.c * g.kh * g.kw) ||
      (bias && !expect_len(c, "bias", nbias, g.o)))
    return nullptr;
  float* y;
  napi_value out = c.alloc(g.n * g.o * g.oh * g.ow, &y);
  if (!out) return nullptr;
  if (!conv2d(x, w, bias, g, y)) { c.fail("out of memory for scratch buffers"); return nullptr; }
  return out;
}

DN_FN(Conv2dBackwardInput) {
  Call c(env, info, "conv2dBackwardInput");
  float *dy, *w;
  int64_t ndy, nw;
  ConvGeom g;
  if (!c.expect_args(3) || !c.f32(0, "dy", &dy, &ndy) || !c.f32(1, "w", &w, &nw) || !read_geom(c, 2, &g)) return nullptr;
  if (!expect_len(c, "dy", ndy, g.n * g.o * g.oh * g.ow) || !expect_len(c, "w", nw, g.o * g.c * g.kh * g.kw))
    return nullptr;
  float* dx;
  napi_value out = c.alloc(g.n * g.c * g.h * g.w, &dx);
  if (!out) return nullptr;
  if (!conv2d_backward_input(dy, w, g, dx)) { c.fail("out of memory for scratch buffers"); return nullptr; }
  return out;
}

DN_FN(Conv2dBackwardWeight) {
  Call c(env, info, "conv2dBackwardWeight");
  float *x, *dy;
  int64_t nx, ndy;
  ConvGeom g;
  if (!c.expect_args(3) || !c.f32(0, "x", &x, &nx) || !c.f32(1, "dy", &dy, &ndy) || !read_geom(c, 2, &g)) return nullptr;
  if (!expect_len(c, "x", nx, g.n * g.c * g.h * g.w) || !expect_len(c, "dy", ndy, g.n * g.o * g.oh * g.ow))
    return nullptr;
  float* dw;
  napi_value out = c.alloc(g.o * g.c * g.kh * g.kw, &dw);
  if (!out) return nullptr;
  if (!conv2d_backward_weight(x, dy, g, dw)) { c.fail("out of memory for scratch buffers"); return nullptr; }
  return out;
}

/** A group norm's sizes (x [n, c, hw] in `groups` groups), checked: *total = n·c·hw, *units = n·groups. */
bool group_sizes(Call& c, int64_t n, int64_t ch, int64_t hw, int64_t groups, int64_t* total, int64_t* units) {
  if (!mul(n, ch, total) || !mul(*total, hw, total) || !mul(n, groups, units)) return c.fail("shape is too large");
  if (ch % groups) return c.fail("c = %lld is not a multiple of groups = %lld", (long long)ch, (long long)groups);
  return true;
}

/** A group norm's gamma / beta (each nullable): ch elements. */
bool channel_params(Call& c, const float* gamma, int64_t ng, const float* beta, int64_t nb, int64_t ch) {
  if (gamma && ng != ch) return c.fail("gamma has %lld elements, c = %lld", (long long)ng, (long long)ch);
  if (beta && nb != ch) return c.fail("beta has %lld elements, c = %lld", (long long)nb, (long long)ch);
  return true;
}

/** Arguments i … i + 5 of the *Normed convolutions: gamma, beta (nullable), mean, rstd, groups, silu, for an input
 *  of g.n images of g.c channels. */
bool read_norm_pre(Call& c, size_t i, const ConvGeom& g, NormPre* p) {
  float *gamma, *beta, *mean, *rstd;
  int64_t ng, nb, nm, nr, groups, t, units;
  bool silu;
  if (!c.f32(i, "gamma", &gamma, &ng, true) || !c.f32(i + 1, "beta", &beta, &nb, true) ||
      !c.f32(i + 2, "mean", &mean, &nm) || !c.f32(i + 3, "rstd", &rstd, &nr) ||
      !c.integer(i + 4, "groups", &groups, 1) || !c.boolean(i + 5, "silu", &silu) ||
      !group_sizes(c, g.n, g.c, g.h * g.w, groups, &t, &units) || !channel_params(c, gamma, ng, beta, nb, g.c))
    return false;
  if (nm != units || nr != units) return c.fail("mean and rstd must have n·groups = %lld elements", (long long)units);
  *p = NormPre{mean, rstd, gamma, beta, groups, silu};
  return true;
}

DN_FN(Conv2dNormed) {
  Call c(env, info, "conv2dNormed");
  float *x, *w, *bias, *ibias, *resid;
  int64_t nx, nw, nbias, nib, nres;
  ConvGeom g;
  NormPre pre;
  if (!c.expect_args(12) || !c.f32(0, "x", &x, &nx) || !c.f32(7, "w", &w, &nw) ||
      !c.f32(8, "bias", &bias, &nbias, true) || !c.f32(9, "imageBias", &ibias, &nib, true) ||
      !c.f32(10, "residual", &resid, &nres, true) || !read_geom(c, 11, &g) || !read_norm_pre(c, 1, g, &pre))
    return nullptr;
  if (!expect_len(c, "x", nx, g.n * g.c * g.h * g.w) || !expect_len(c, "w", nw, g.o * g.c * g.kh * g.kw) ||
      (bias && !expect_len(c, "bias", nbias, g.o)) || (ibias && !expect_len(c, "imageBias", nib, g.n * g.o)) ||
      (resid && !expect_len(c, "residual", nres, g.n * g.o * g.oh * g.ow)))
    return nullptr;
  float* y;
  napi_value out = c.alloc(g.n * g.o * g.oh * g.ow, &y);
  if (!out) return nullptr;
  const ConvEpilogue epi{ibias, resid};
  if (!conv2d(x, w, bias, g, y, &pre, &epi)) { c.fail("out of memory for scratch buffers"); return nullptr; }
  return out;
}

DN_FN(Conv2dBackwardWeightNormed) {
  Call c(env, info, "conv2dBackwardWeightNormed");
  float *x, *dy;
  int64_t nx, ndy;
  ConvGeom g;
  NormPre pre;
  if (!c.expect_args(9) || !c.f32(0, "x", &x, &nx) || !c.f32(7, "dy", &dy, &ndy) || !read_geom(c, 8, &g) ||
      !read_norm_pre(c, 1, g, &pre))
    return nullptr;
  if (!expect_len(c, "x", nx, g.n * g.c * g.h * g.w) || !expect_len(c, "dy", ndy, g.n * g.o * g.oh * g.ow))
    return nullptr;
  float* dw;
  napi_value out = c.alloc(g.o * g.c * g.kh * g.kw, &dw);
  if (!out) return nullptr;
  if (!conv2d_backward_weight(x, dy, g, dw, &pre)) { c.fail("out of memory for scratch buffers"); return nullptr; }
  return out;
}

// ---------------------------------------------------------------- spatial

bool planes_hw(Call& c, size_t i, int64_t* planes, int64_t* h, int64_t* w, int64_t* total) {
  if (!c.integer(i, "planes", planes) || !c.integer(i + 1, "h", h) || !c.integer(i + 2, "w", w)) return false;
  int64_t t;
  if (!mul(*planes, *h, &t) || !mul(t, *w, &t) || !mul(t, 4, total)) return c.fail("shape is too large");
  *total = t;
  return true;
}

DN_FN(UpsampleNearest2x) {
  Call c(env, info, "upsampleNearest2x");
  float* x;
  int64_t n, planes, h, w, total;
  if (!c.expect_args(4) || !c.f32(0, "x", &x, &n) || !planes_hw(c, 1, &planes, &h, &w, &total)) return nullptr;
  if (n != total) { c.fail("x has %lld elements, planes·h·w = %lld", (long long)n, (long long)total); return nullptr; }
  return map_out(c, 4 * total, [&](float* y) { upsample_nearest2x(x, y, planes, h, w); });
}

DN_FN(AvgPool2x2) {
  Call c(env, info, "avgPool2x2");
  float* x;
  int64_t n, planes, h, w, total;
  if (!c.expect_args(4) || !c.f32(0, "x", &x, &n) || !planes_hw(c, 1, &planes, &h, &w, &total)) return nullptr;
  if (n != total) { c.fail("x has %lld elements, planes·h·w = %lld", (long long)n, (long long)total); return nullptr; }
  if (h % 2 || w % 2) { c.fail("h and w must be even, got %lld×%lld", (long long)h, (long long)w); return nullptr; }
  return map_out(c, total / 4, [&](float* y) { avg_pool2x2(x, y, planes, h, w); });
}

// ---------------------------------------------------------------- norms

napi_value make_result(Call& c, const char* k1, napi_value v1, const char* k2, napi_value v2, const char* k3,
                       napi_value v3) {
  napi_value o;
  if (napi_create_object(c.env, &o) != napi_ok) { c.fail("could not create the result"); return nullptr; }
  napi_set_named_property(c.env, o, k1, v1);
  napi_set_named_property(c.env, o, k2, v2);
  if (k3) napi_set_named_property(c.env, o, k3, v3);
  return o;
}

DN_FN(GroupNorm) {
  Call c(env, info, "groupNorm");
  float *x, *gamma, *beta;
  int64_t nx, ng, nb, n, ch, hw, groups;
  double eps;
  bool silu;
  if (!c.expect_args(9) || !c.f32(0, "x", &x, &nx) || !c.f32(1, "gamma", &gamma, &ng, true) ||
      !c.f32(2, "beta", &beta, &nb, true) || !c.integer(3, "n", &n) || !c.integer(4, "c", &ch) ||
      !c.integer(5, "hw", &hw) || !c.integer(6, "groups", &groups, 1) || !c.number(7, "eps", &eps) ||
      !c.boolean(8, "silu", &silu))
    return nullptr;
  int64_t t, ngr;
  if (!group_sizes(c, n, ch, hw, groups, &t, &ngr)) return nullptr;
  if (nx != t) { c.fail("x has %lld elements, n·c·hw = %lld", (long long)nx, (long long)t); return nullptr; }
  if (!channel_params(c, gamma, ng, beta, nb, ch)) return nullptr;
  float *y, *mean, *rstd;
  napi_value vy = c.alloc(t, &y);
  napi_value vm = vy ? c.alloc(ngr, &mean) : nullptr;
  napi_value vr = vm ? c.alloc(ngr, &rstd) : nullptr;
  if (!vr) return nullptr;
  group_norm(x, gamma, beta, n, ch, hw, groups, eps, silu, y, mean, rstd);
  return make_result(c, "y", vy, "mean", vm, "rstd", vr);
}

DN_FN(GroupNormStats) {
  Call c(env, info, "groupNormStats");
  float* x;
  int64_t nx, n, ch, hw, groups, t, ngr;
  double eps;
  if (!c.expect_args(6) || !c.f32(0, "x", &x, &nx) || !c.integer(1, "n", &n) || !c.integer(2, "c", &ch) ||
      !c.integer(3, "hw", &hw) || !c.integer(4, "groups", &groups, 1) || !c.number(5, "eps", &eps))
    return nullptr;
  if (!group_sizes(c, n, ch, hw, groups, &t, &ngr)) return nullptr;
  if (nx != t) { c.fail("x has %lld elements, n·c·hw = %lld", (long long)nx, (long long)t); return nullptr; }
  float *mean, *rstd;
  napi_value vm = c.alloc(ngr, &mean);
  napi_value vr = vm ? c.alloc(ngr, &rstd) : nullptr;
  if (!vr) return nullptr;
  group_norm_stats(x, n, ch, hw, groups, eps, mean, rstd);
  return make_result(c, "mean", vm, "rstd", vr, nullptr, nullptr);
}

DN_FN(GroupNormBackward) {
  Call c(env, info, "groupNormBackward");
  float *dy, *x, *gamma, *beta, *mean, *rstd;
  int64_t ndy, nx, ng, nb, nm, nr, n, ch, hw, groups;
  bool silu;
  if (!c.expect_args(11) || !c.f32(0, "dy", &dy, &ndy) || !c.f32(1, "x", &x, &nx) ||
      !c.f32(2, "gamma", &gamma, &ng, true) || !c.f32(3, "beta", &beta, &nb, true) || !c.f32(4, "mean", &mean, &nm) ||
      !c.f32(5, "rstd", &rstd, &nr) || !c.integer(6, "n", &n) || !c.integer(7, "c", &ch) || !c.integer(8, "hw", &hw) ||
      !c.integer(9, "groups", &groups, 1) || !c.boolean(10, "silu", &silu))
    return nullptr;
  int64_t t, ngr;
  if (!group_sizes(c, n, ch, hw, groups, &t, &ngr)) return nullptr;
  if (nx != t || ndy != t) { c.fail("x and dy must have n·c·hw = %lld elements", (long long)t); return nullptr; }
  if (!channel_params(c, gamma, ng, beta, nb, ch)) return nullptr;
  if (nm != ngr || nr != ngr) { c.fail("mean and rstd must have n·groups = %lld elements", (long long)ngr); return nullptr; }
  float *dx, *dg = nullptr, *db = nullptr;
  napi_value vdx = c.alloc(t, &dx);
  if (!vdx) return nullptr;
  napi_value vdg = gamma ? c.alloc(ch, &dg) : c.null();
  napi_value vdb = beta ? c.alloc(ch, &db) : c.null();
  if (c.failed) return nullptr;
  if (!group_norm_backward(dy, x, gamma, beta, mean, rstd, n, ch, hw, groups, silu, dx, dg, db)) {
    c.fail("out of memory for scratch buffers");
    return nullptr;
  }
  return make_result(c, "dx", vdx, "dgamma", vdg, "dbeta", vdb);
}

DN_FN(LayerNorm) {
  Call c(env, info, "layerNorm");
  float *x, *gamma, *beta;
  int64_t nx, ng, nb, rows, d;
  double eps;
  if (!c.expect_args(6) || !c.f32(0, "x", &x, &nx) || !c.f32(1, "gamma", &gamma, &ng, true) ||
      !c.f32(2, "beta", &beta, &nb, true) || !c.integer(3, "rows", &rows) || !c.integer(4, "d", &d) ||
      !c.number(5, "eps", &eps))
    return nullptr;
  int64_t t;
  if (!mul(rows, d, &t)) { c.fail("shape is too large"); return nullptr; }
  if (nx != t) { c.fail("x has %lld elements, rows·d = %lld", (long long)nx, (long long)t); return nullptr; }
  if (gamma && ng != d) { c.fail("gamma has %lld elements, d = %lld", (long long)ng, (long long)d); return nullptr; }
  if (beta && nb != d) { c.fail("beta has %lld elements, d = %lld", (long long)nb, (long long)d); return nullptr; }
  float *y, *mean, *rstd;
  napi_value vy = c.alloc(t, &y);
  napi_value vm = vy ? c.alloc(rows, &mean) : nullptr;
  napi_value vr = vm ? c.alloc(rows, &rstd) : nullptr;
  if (!vr) return nullptr;
  layer_norm(x, gamma, beta, rows, d, eps, y, mean, rstd);
  return make_result(c, "y", vy, "mean", vm, "rstd", vr);
}

DN_FN(LayerNormBackward) {
  Call c(env, info, "layerNormBackward");
  float *dy, *x, *gamma, *mean, *rstd;
  int64_t ndy, nx, ng, nm, nr, rows, d;
  bool hasBeta;
  if (!c.expect_args(8) || !c.f32(0, "dy", &dy, &ndy) || !c.f32(1, "x", &x, &nx) ||
      !c.f32(2, "gamma", &gamma, &ng, true) || !c.f32(3, "mean", &mean, &nm) || !c.f32(4, "rstd", &rstd, &nr) ||
      !c.integer(5, "rows", &rows) || !c.integer(6, "d", &d) || !c.boolean(7, "hasBeta", &hasBeta))
    return nullptr;
  int64_t t;
  if (!mul(rows, d, &t)) { c.fail("shape is too large"); return nullptr; }
  if (nx != t || ndy != t) { c.fail("x and dy must have rows·d = %lld elements", (long long)t); return nullptr; }
  if (gamma && ng != d) { c.fail("gamma has %lld elements, d = %lld", (long long)ng, (long long)d); return nullptr; }
  if (nm != rows || nr != rows) { c.fail("mean and rstd must have rows = %lld elements", (long long)rows); return nullptr; }
  float *dx, *dg = nullptr, *db = nullptr;
  napi_value vdx = c.alloc(t, &dx);
  if (!vdx) return nullptr;
  napi_value vdg = gamma ? c.alloc(d, &dg) : c.null();
  napi_value vdb = hasBeta ? c.alloc(d, &db) : c.null();
  if (c.failed) return nullptr;
  if (!layer_norm_backward(dy, x, gamma, mean, rstd, rows, d, dx, dg, db)) {
    c.fail("out of memory for scratch buffers");
    return nullptr;
  }
  return make_result(c, "dx", vdx, "dgamma", vdg, "dbeta", vdb);
}

using RowFn = void (*)(const float*, float*, int64_t, int64_t);
using RowBwdFn = void (*)(const float*, const float*, float*, int64_t, int64_t);

napi_value rows_fwd(napi_env env, napi_callback_info info, const char* name, RowFn fn) {
  Call c(env, info, name);
  float* x;
  int64_t nx, rows, d, t;
  if (!c.expect_args(3) || !c.f32(0, "x", &x, &nx) || !c.integer(1, "rows", &rows) || !c.integer(2, "d", &d)) return nullptr;
  if (!mul(rows, d, &t)) { c.fail("shape is too large"); return nullptr; }
  if (nx != t) { c.fail("x has %lld elements, rows·d = %lld", (long long)nx, (long long)t); return nullptr; }
  return map_out(c, t, [&](float* y) { fn(x, y, rows, d); });
}

napi_value rows_bwd(napi_env env, napi_callback_info info, const char* name, RowBwdFn fn) {
  Call c(env, info, name);
  float *y, *dy;
  int64_t ny, ndy, rows, d, t;
  if (!c.expect_args(4) || !c.f32(0, "y", &y, &ny) || !c.f32(1, "dy", &dy, &ndy) || !c.integer(2, "rows", &rows) ||
      !c.integer(3, "d", &d))
    return nullptr;
  if (!mul(rows, d, &t)) { c.fail("shape is too large"); return nullptr; }
  if (ny != t || ndy != t) { c.fail("y and dy must have rows·d = %lld elements", (long long)t); return nullptr; }
  return map_out(c, t, [&](float* dx) { fn(y, dy, dx, rows, d); });
}

DN_FN(Softmax) { return rows_fwd(env, info, "softmax", softmax); }
DN_FN(SoftmaxBackward) { return rows_bwd(env, info, "softmaxBackward", softmax_backward); }
DN_FN(LogSoftmax) { return rows_fwd(env, info, "logSoftmax", log_softmax); }
DN_FN(LogSoftmaxBackward) { return rows_bwd(env, info, "logSoftmaxBackward", log_softmax_backward); }

// ---------------------------------------------------------------- indexing, optimizer

DN_FN(GatherRows) {
  Call c(env, info, "gatherRows");
  float* table;
  int32_t* idx;
  int64_t nt, ni, d;
  if (!c.expect_args(3) || !c.f32(0, "table", &table, &nt) || !c.i32(1, "idx", &idx, &ni) || !c.integer(2, "d", &d))
    return nullptr;
  int64_t total;
  if (!mul(ni, d, &total)) { c.fail("shape is too large"); return nullptr; }
  if (d > 0) {
    if (nt % d) { c.fail("table has %lld elements, not a multiple of d = %lld", (long long)nt, (long long)d); return nullptr; }
    const int64_t rows = nt / d;
    for (int64_t i = 0; i < ni; i++)
      if (idx[i] < 0 || idx[i] >= rows) {
        c.fail("idx[%lld] = %d is out of range [0, %lld)", (long long)i, idx[i], (long long)rows);
        return nullptr;
      }
  }
  return map_out(c, total, [&](float* o) { if (total > 0) gather_rows(table, idx, ni, d, o); });
}

DN_FN(ScatterAddRows) {
  Call c(env, info, "scatterAddRows");
  float* dy;
  int32_t* idx;
  int64_t ndy, ni, rows, d;
  if (!c.expect_args(4) || !c.f32(0, "dy", &dy, &ndy) || !c.i32(1, "idx", &idx, &ni) || !c.integer(2, "rows", &rows) ||
      !c.integer(3, "d", &d))
    return nullptr;
  int64_t total, need;
  if (!mul(rows, d, &total) || !mul(ni, d, &need)) { c.fail("shape is too large"); return nullptr; }
  if (ndy != need) { c.fail("dy has %lld elements, idx.length·d = %lld", (long long)ndy, (long long)need); return nullptr; }
  if (d > 0)
    for (int64_t i = 0; i < ni; i++)
      if (idx[i] < 0 || idx[i] >= rows) {
        c.fail("idx[%lld] = %d is out of range [0, %lld)", (long long)i, idx[i], (long long)rows);
        return nullptr;
      }
  return map_out(c, total, [&](float* o) { if (total > 0) scatter_add_rows(dy, idx, ni, rows, d, o); });
}

DN_FN(AdamW) {
  Call c(env, info, "adamW");
  float *p, *g, *m, *v;
  int64_t np, ng, nm, nv;
  double lr, b1, b2, eps, wd, step;
  if (!c.expect_args(10) || !c.f32(0, "p", &p, &np) || !c.f32(1, "g", &g, &ng) || !c.f32(2, "m", &m, &nm) ||
      !c.f32(3, "v", &v, &nv) || !c.number(4, "lr", &lr) || !c.number(5, "beta1", &b1) || !c.number(6, "beta2", &b2) ||
      !c.number(7, "eps", &eps) || !c.number(8, "weightDecay", &wd) || !c.number(9, "step", &step))
    return nullptr;
  if (ng != np || nm != np || nv != np) { c.fail("p, g, m and v must have the same length"); return nullptr; }
  adamw(p, g, m, v, np, lr, b1, b2, eps, wd, step);
  return c.undefined();
}

// ---------------------------------------------------------------- storage

/** empty(n): n floats, uninitialized above 64 KiB (the caller overwrites them all), made like every kernel
 *  output, so free() can give them back (concatenations and slices are written into these). */
DN_FN(Empty) {
  Call c(env, info, "empty");
  int64_t n;
  if (!c.integer(0, "n", &n)) return nullptr;
  return map_out(c, n, [](float*) {});
}

/** full(n, value): n copies of value (as `empty`, an output free() can give back). */
DN_FN(Full) {
  Call c(env, info, "full");
  int64_t n;
  double v;
  if (!c.integer(0, "n", &n) || !c.number(1, "value", &v)) return nullptr;
  const float f = float(v);
  return map_out(c, n, [&](float* y) { std::fill(y, y + n, f); });
}

// ---------------------------------------------------------------- pool / info

DN_FN(Threads) {
  Call c(env, info, "threads");
  if (c.argc >= 1 && !c.is_nullish(0)) {
    int64_t n;
    if (!c.integer(0, "n", &n, 1, 256)) return nullptr;
    pool_set_threads(int(n));
  }
  napi_value r;
  napi_create_int32(env, pool_threads(), &r);
  return r;
}

DN_FN(ConvImpl) {
  Call c(env, info, "convImpl");
  if (c.argc >= 1 && !c.is_nullish(0)) {
    char mode[16];
    if (!c.str(0, "mode", mode, sizeof mode)) return nullptr;
    int tile = 0;  // Winograd's output tile: chosen per shape unless a mode names one
    if (std::strcmp(mode, "auto") == 0) { set_conv_im2col(false); direct_prefer_avx2(0); winograd_enabled(1); }
    else if (std::strcmp(mode, "direct") == 0) { set_conv_im2col(false); direct_prefer_avx2(0); winograd_enabled(0); }
    else if (std::strcmp(mode, "im2col") == 0) { set_conv_im2col(true); direct_prefer_avx2(0); winograd_enabled(1); }
    else if (std::strcmp(mode, "avx2") == 0) { set_conv_im2col(false); direct_prefer_avx2(1); winograd_enabled(1); }
    else if (std::strcmp(mode, "winograd2") == 0 || std::strcmp(mode, "winograd4") == 0) {
      set_conv_im2col(false); direct_prefer_avx2(0); winograd_enabled(1); tile = mode[8] - '0';
    }
    else { c.fail("mode must be 'auto', 'direct', 'im2col', 'avx2', 'winograd2' or 'winograd4', got '%s'", mode); return nullptr; }
    winograd_tile_setting(tile);
  }
  napi_value r;
  napi_create_string_utf8(env, conv_impl(), NAPI_AUTO_LENGTH, &r);
  return r;
}

DN_FN(IsaFn) {
  Call c(env, info, "isa");
  if (c.argc >= 1 && !c.is_nullish(0)) {
    char name[16];
    if (!c.str(0, "isa", name, sizeof name)) return nullptr;
    Isa cap;
    if (!parse_isa(name, &cap)) {
      c.fail("isa must be 'auto', 'avx512', 'avx2', 'sse2' or 'neon', got '%s'", name);
      return nullptr;
    }
    set_isa_cap(cap);
  }
  napi_value r;
  napi_create_string_utf8(env, isa_name(active_isa()), NAPI_AUTO_LENGTH, &r);
  return r;
}

/** free(array): gives a kernel output's storage back now instead of at the next garbage collection, by
 *  detaching its ArrayBuffer (V8 then drops the backing store at once; the array reads as empty afterwards,
 *  so a stale use fails a kernel's length check instead of reading freed memory). Returns whether it freed:
 *  only a Float32Array over the whole of a large output of this addon's kernels is (tagged by alloc); anything
 *  else — a caller's array, a view, a small output — is left to the collector. */
DN_FN(Free) {
  size_t argc = 1;
  napi_value argv[1];
  napi_value res;
  bool freed = false;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) == napi_ok && argc >= 1) {
    bool is_ta = false;
    napi_is_typedarray(env, argv[0], &is_ta);
    if (is_ta) {
      size_t length = 0, offset = 0, ab_bytes = 0;
      napi_typedarray_type type;
      napi_value ab = nullptr;
      void* data = nullptr;
      if (napi_get_typedarray_info(env, argv[0], &type, &length, &data, &ab, &offset) == napi_ok && offset == 0 &&
          napi_get_arraybuffer_info(env, ab, nullptr, &ab_bytes) == napi_ok && ab_bytes > 0) {
        bool detached = false, ours = false;
        if (type == napi_float32_array && length * sizeof(float) == ab_bytes &&
            napi_check_object_type_tag(env, ab, &kOutputTag, &ours) == napi_ok && ours &&
            napi_is_detached_arraybuffer(env, ab, &detached) == napi_ok && !detached) {
          freed = napi_detach_arraybuffer(env, ab) == napi_ok;
          if (!freed) {  // not detachable: clear the pending error, leave it to the collector
            napi_value e;
            bool pending = false;
            napi_is_exception_pending(env, &pending);
            if (pending) napi_get_and_clear_last_exception(env, &e);
          }
        }
      }
    }
  }
  napi_get_boolean(env, freed, &res);
  return res;
}

DN_FN(Info) {
  Call c(env, info, "info");
  napi_value o, s1, s2, s3, s4, n;
  napi_create_object(env, &o);
  napi_create_string_utf8(env, gemm_info(), NAPI_AUTO_LENGTH, &s1);
  napi_create_string_utf8(env, conv_impl(), NAPI_AUTO_LENGTH, &s2);
  napi_create_string_utf8(env, isa_name(active_isa()), NAPI_AUTO_LENGTH, &s3);
  napi_create_string_utf8(env, isa_name(cpu_isa()), NAPI_AUTO_LENGTH, &s4);
  napi_create_int32(env, pool_threads(), &n);
  napi_set_named_property(env, o, "gemm", s1);
  napi_set_named_property(env, o, "conv", s2);
  napi_set_named_property(env, o, "isa", s3);
  napi_set_named_property(env, o, "cpu", s4);
  napi_set_named_property(env, o, "threads", n);
  return o;
}

/** glibc malloc tuning (see native/README.md). Outputs are V8 array buffers, freed by the GC and then
 *  re-malloc'd for the next step's outputs of the same sizes. By default glibc serves large blocks with
 *  fresh mmaps, whose page faults can cost more than a memory-bound kernel itself; keep freed blocks in the
 *  heap for reuse instead. DIFFUSE_MALLOC_TUNING=0 leaves malloc alone; =1 only raises the mmap threshold
 *  to glibc's maximum (32 MiB); =2 (default) also serves larger blocks from the heap. */
void tune_malloc() {
#if defined(__GLIBC__)
  const char* s = std::getenv("DIFFUSE_MALLOC_TUNING");
  const std::string mode = s ? s : "2";
  if (mode == "0") return;
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);  // the largest glibc accepts
  mallopt(M_TRIM_THRESHOLD, 512 * 1024 * 1024);  // keep up to 512 MiB of free heap top
  mallopt(M_TOP_PAD, 16 * 1024 * 1024);
  if (mode != "1") mallopt(M_MMAP_MAX, 0);  // no mmap'd blocks at all (glibc still falls back to mmap if brk fails)
#endif
}

napi_value Init(napi_env env, napi_value exports) {
  tune_malloc();
  struct Entry { const char* name; napi_callback fn; };
  const Entry entries[] = {
      {"unary", Unary},
      {"activation", Activation},
      {"activationBackward", ActivationBackward},
      {"binary", Binary},
      {"where", Where},
      {"affine", Affine},
      {"powScalar", PowScalar},
      {"clamp", Clamp},
      {"reduce", Reduce},
      {"stridedCopy", StridedCopy},
      {"matmul", Matmul},
      {"conv2d", Conv2d},
      {"conv2dBackwardInput", Conv2dBackwardInput},
      {"conv2dBackwardWeight", Conv2dBackwardWeight},
      {"upsampleNearest2x", UpsampleNearest2x},
      {"avgPool2x2", AvgPool2x2},
      {"groupNorm", GroupNorm},
      {"groupNormBackward", GroupNormBackward},
      {"groupNormStats", GroupNormStats},
      {"conv2dNormed", Conv2dNormed},
      {"conv2dBackwardWeightNormed", Conv2dBackwardWeightNormed},
      {"layerNorm", LayerNorm},
      {"layerNormBackward", LayerNormBackward},
      {"softmax", Softmax},
      {"softmaxBackward", SoftmaxBackward},
      {"logSoftmax", LogSoftmax},
      {"logSoftmaxBackward", LogSoftmaxBackward},
      {"gatherRows", GatherRows},
      {"scatterAddRows", ScatterAddRows},
      {"adamW", AdamW},
      {"threads", Threads},
      {"info", Info},
      {"free", Free},
      {"empty", Empty},
      {"full", Full},
      {"isa", IsaFn},
      {"convImpl", ConvImpl},
  };
  for (const Entry& e : entries) {
    napi_value f;
    if (napi_create_function(env, e.name, NAPI_AUTO_LENGTH, e.fn, nullptr, &f) != napi_ok) return nullptr;
    if (napi_set_named_property(env, exports, e.name, f) != napi_ok) return nullptr;
  }
  if (!register_signal_functions(env, exports)) return nullptr;
  return exports;
}

}  // namespace
}  // namespace dn

NAPI_MODULE_INIT() { return dn::Init(env, exports); }
