// Callbacks (issue 12): functions that take function pointers and call them
// the ways real C libraries do. Loaded only through the broker; the
// callbacks they call run in the client (through the worker's closures).
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  double x;
  double y;
} Point;

// --- qsort-style: `void cb_sort4(inout u8[len] base, usize len,
//     fn(in u8[4] a, in u8[4] b) -> i32 cmp)` sorts len / 4 elements of 4
//     bytes with the C library's qsort.
typedef int32_t (*Cmp4)(const uint8_t* a, const uint8_t* b);
void cb_sort4(uint8_t* base, size_t len, Cmp4 cmp) {
  qsort(base, len / 4, 4, (int (*)(const void*, const void*))cmp);
}

// --- plain: `i32 cb_apply(fn(i32 x) -> i32 f, i32 x)`.
typedef int32_t (*IntFn)(int32_t);
int32_t cb_apply(IntFn f, int32_t x) { return f(x); }

// `f64 cb_apply_f64(fn(f64 x, i32 k) -> f64 f, f64 x)`: floating-point
// arguments take libffi's SSE closure entry.
typedef double (*DoubleFn)(double, int32_t);
double cb_apply_f64(DoubleFn f, double x) { return f(x, 3) + 0.5; }

// `i32 cb_maybe(fn(i32 x)? -> i32 f, i32 x)`: -1 for NULL.
int32_t cb_maybe(IntFn f, int32_t x) { return f == NULL ? -1 : f(x); }

// `i32 cb_repeat(fn(i32 i) -> i32 f, i32 n)`: calls f(0..n-1) in a loop and
// sums the results.
int32_t cb_repeat(IntFn f, int32_t n) {
  int32_t sum = 0;
  for (int32_t i = 0; i < n; ++i) sum += f(i);
  return sum;
}

// `i32 cb_twice(fn(i32 x) -> i32 f, fn(i32 x) -> i32 g, i32 x)`: g(f(x)).
int32_t cb_twice(IntFn f, IntFn g, int32_t x) { return g(f(x)); }

// --- arguments of every kind a callback takes:
// `f64 cb_kinds(fn(Point* p, Point q, cstr? s, in u8[n] data, usize n, u8 tag) -> f64 f)`
// calls f(&{1.5, -2}, {3, 4}, "hello", "bytes", 5, 7) and returns its result.
typedef double (*KindsFn)(Point*, Point, const char*, const uint8_t*, size_t, uint8_t);
double cb_kinds(KindsFn f) {
  Point p = {1.5, -2.0};
  Point q = {3.0, 4.0};
  return f(&p, q, "hello", (const uint8_t*)"bytes", 5, 7);
}
// Passes NULL for the pointer, the string and the buffer (length 0).
double cb_kinds_null(KindsFn f) {
  Point q = {0, 0};
  return f(NULL, q, NULL, NULL, 0, 0);
}
// Tells a buffer length far past what it has (the worker must not read it).
double cb_kinds_lying(KindsFn f) {
  Point q = {0, 0};
  static const uint8_t data[4] = {1, 2, 3, 4};
  return f(NULL, q, "x", data, (size_t)1 << 40, 0);
}
// `Point cb_make_point(fn(f64 x) -> Point f)`: a class by value as the result.
typedef Point (*PointFn)(double);
Point cb_make_point(PointFn f) { return f(2.0); }

// --- a library that keeps the pointer: `void cb_store(fn(i32 x) -> i32 f)`,
// then `i32 cb_call_stored(i32 x)` in a later call.
static IntFn stored;
void cb_store(IntFn f) { stored = f; }
int32_t cb_call_stored(int32_t x) { return stored(x); }

// --- threads: `i32 cb_on_threads(fn(i32 x) -> i32 f, i32 n)` starts n
// library threads (at most 16), each calls f(its index), and returns the
// sum of their results (the `threads` profile).
struct Job {
  IntFn f;
  int32_t index;
  int32_t result;
};
static void* RunJob(void* arg) {
  struct Job* job = (struct Job*)arg;
  job->result = job->f(job->index);
  return NULL;
}
int32_t cb_on_threads(IntFn f, int32_t n) {
  struct Job jobs[16];
  pthread_t threads[16];
  if (n < 0 || n > 16) return -1;
  for (int32_t i = 0; i < n; ++i) {
    jobs[i].f = f;
    jobs[i].index = i;
    if (pthread_create(&threads[i], NULL, RunJob, &jobs[i]) != 0) return -2;
  }
  int32_t sum = 0;
  for (int32_t i = 0; i < n; ++i) {
    pthread_join(threads[i], NULL);
    sum += jobs[i].result;
  }
  return sum;
}

// --- recursion through nested calls: `i32 cb_recurse(fn(i32 depth) -> i32 f,
// i32 depth)` returns f(depth) + 1; the client's handler may call
// cb_recurse again (nested) with depth - 1.
int32_t cb_recurse(IntFn f, int32_t depth) { return f(depth) + 1; }

// --- a library thread that calls back between calls (an event source):
// `void cb_ticker(fn(i32 x) -> i32 f, i32 n)` starts a detached thread that
// calls f(0..n-1) and returns at once; `i32 cb_ticker_sum()` is the sum of
// the results so far (the `threads` profile, a persistent callback).
static IntFn ticker_fn;
static int32_t ticker_n;
static int32_t ticker_sum;
static pthread_mutex_t ticker_mu = PTHREAD_MUTEX_INITIALIZER;
static void* Tick(void* unused) {
  (void)unused;
  for (int32_t i = 0; i < ticker_n; ++i) {
    int32_t r = ticker_fn(i);
    pthread_mutex_lock(&ticker_mu);
    ticker_sum += r;
    pthread_mutex_unlock(&ticker_mu);
  }
  return NULL;
}
void cb_ticker(IntFn f, int32_t n) {
  pthread_t thread;
  ticker_fn = f;
  ticker_n = n;
  if (pthread_create(&thread, NULL, Tick, NULL) == 0) pthread_detach(thread);
}
int32_t cb_ticker_sum(void) {
  pthread_mutex_lock(&ticker_mu);
  int32_t sum = ticker_sum;
  pthread_mutex_unlock(&ticker_mu);
  return sum;
}

// --- `i32 cb_errno_kept(fn(i32 x) -> i32 f)`: errno survives the callback.
#include <errno.h>
int32_t cb_errno_kept(IntFn f) {
  errno = 1234;
  f(1);
  return errno;
}

// --- `void cb_heapsort4(inout u8[len] base, usize len,
//     fn(in u8[4] a, in u8[4] b) -> i32 cmp)`: as cb_sort4, but an in-place
//     heap sort. glibc's qsort asks the kernel for the machine's memory size
//     (sysinfo) before sorting more than 1 KiB, which the strict profile
//     forbids; this sorts any length under strict (the callbacks benchmark).
static void Swap4(uint8_t* a, uint8_t* b) {
  uint8_t t[4];
  memcpy(t, a, 4);
  memcpy(a, b, 4);
  memcpy(b, t, 4);
}
static void SiftDown(uint8_t* base, size_t root, size_t n, Cmp4 cmp) {
  while (2 * root + 1 < n) {
    size_t child = 2 * root + 1;
    if (child + 1 < n && cmp(base + 4 * child, base + 4 * (child + 1)) < 0) ++child;
    if (cmp(base + 4 * root, base + 4 * child) >= 0) return;
    Swap4(base + 4 * root, base + 4 * child);
    root = child;
  }
}
void cb_heapsort4(uint8_t* base, size_t len, Cmp4 cmp) {
  size_t n = len / 4;
  for (size_t i = n / 2; i-- > 0;) SiftDown(base, i, n, cmp);
  for (size_t end = n; end-- > 1;) {
    Swap4(base, base + 4 * end);
    SiftDown(base, 0, end, cmp);
  }
}
