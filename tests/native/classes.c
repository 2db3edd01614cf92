// Native test library for classes, handles, buffers, strings, statics and
// an iroha_ffi-style opaque type. Loaded only through the broker.
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct { double x; double y; } Point;
typedef struct { Point min; Point max; uint8_t tags[4]; int32_t kind; bool visible; } Rect;
typedef struct { bool flag; int32_t kind; } Flagged;

int32_t points_freed = 0;          // static: destructor calls
int32_t counter_static = 5;        // static: mutable
const double pi_static = 3.25;     // static: read-only
Point origin_static = {0.0, 0.0};  // static of a class type
unsigned char bad_bool_static = 7; // static read as bool: invalid
int64_t counters_dropped = 0;

Point make_point(double x, double y) { Point p = {x, y}; return p; }
double point_norm2(Point p) { return p.x * p.x + p.y * p.y; }
Point* point_new(double x, double y) {
  Point* p = malloc(sizeof *p);
  p->x = x;
  p->y = y;
  return p;
}
void point_free(Point* p) { ++points_freed; free(p); }
/* point_new after 300 ms: an instance result that arrives while its
 * library is being closed (tests/security/limits_test.cc). */
Point* point_new_slowly(double x, double y) {
  struct timespec t = {0, 300 * 1000 * 1000};
  nanosleep(&t, NULL);
  return point_new(x, y);
}
void point_scale(Point* p, double k) { p->x *= k; p->y *= k; }
double point_sum(const Point* p) { return p ? p->x + p->y : -1.0; }
Point* maybe_point(int32_t make) { return make ? point_new(1, 2) : NULL; }
Point* origin_borrowed(void) { return &origin_static; }

Rect make_rect(Point a, Point b, int32_t kind) {
  Rect r;
  memset(&r, 0, sizeof r);
  r.min = a;
  r.max = b;
  for (int i = 0; i < 4; ++i) r.tags[i] = (uint8_t)(i + 1);
  r.kind = kind;
  r.visible = true;
  return r;
}
double rect_area(Rect r) { return (r.max.x - r.min.x) * (r.max.y - r.min.y) + r.tags[3]; }

// Trap representations written by the library.
Flagged bad_flag(void) { Flagged f; memset(&f, 0, sizeof f); f.flag = 1; memset(&f.flag, 7, 1); return f; }
Flagged bad_kind(void) { Flagged f = {true, 9}; return f; }
Flagged* flagged_new(void) { Flagged* f = calloc(1, sizeof *f); return f; }
void flagged_free(Flagged* f) { free(f); }
void flagged_corrupt(Flagged* f) { memset(&f->flag, 7, 1); }

// Strings.
uint64_t str_len(const char* s) { return s ? strlen(s) : 999; }
const char* greet(void) { return "h\xc3\xa9llo"; }
const char* bad_utf8(void) { return "\xff\xfe"; }
const char* null_string(void) { return NULL; }

// Buffers.
void fill(uint8_t* buf, uint64_t n, uint8_t v) { memset(buf, v, n); }
uint32_t sum_bytes(const uint8_t* buf, uint64_t n) {
  uint32_t s = 0;
  for (uint64_t i = 0; i < n; ++i) s += buf[i];
  return s;
}
void reverse4(uint8_t* buf) {
  for (int i = 0; i < 2; ++i) { uint8_t t = buf[i]; buf[i] = buf[3 - i]; buf[3 - i] = t; }
}

// errno.
int32_t fail_with(int32_t e) { errno = e; return -1; }

// iroha_ffi-style opaque type with FfiReturn.
typedef struct Counter { int64_t value; } Counter;
int32_t Counter__new(int64_t start, Counter** out) {
  if (out == NULL) return -1;
  if (start < 0) return -6;  // ConversionFailed
  Counter* c = malloc(sizeof *c);
  c->value = start;
  *out = c;
  return 0;
}
int32_t Counter__value(const Counter* self, int64_t* out) {
  if (self == NULL || out == NULL) return -1;
  *out = self->value;
  return 0;
}
int32_t Counter__set_value(Counter* self, int64_t v) {
  if (self == NULL) return -1;
  self->value = v;
  return 0;
}
int32_t Counter__increment(Counter* self) {
  if (self == NULL) return -1;
  if (self->value == INT64_MAX) return -2;  // ExecutionFail
  ++self->value;
  return 0;
}
// A method of a trait (iroha_ffi: `Type__Trait__method`), for bindgen.
int32_t Counter__Doubled__twice(const Counter* self, int64_t* out) {
  if (self == NULL || out == NULL) return -1;
  *out = self->value * 2;
  return 0;
}
int32_t Counter__drop(Counter* self) {
  ++counters_dropped;
  free(self);
  return 0;
}

// Kills the worker (to test that its instances become stale).
void crash_now(void) { volatile int* p = NULL; *p = 1; }

// Names a policy denies (tests/security/authorization_test.cc): an exported
// variable and a function that takes a pointer, so it can be named as a
// class destructor.
int32_t admin_counter = 7;
int32_t admin_resets = 0;
void admin_reset(void* p) { (void)p; ++admin_resets; admin_counter = 0; }

// A destructor that takes a while (the permission's max_call_millis must
// bound it like any call).
void point_free_slowly(Point* p) {
  struct timespec t = {3, 0};
  nanosleep(&t, NULL);
  point_free(p);
}

// A class whose destructor is slow (issue 9, finding 8): releasing many
// instances must not hold up the daemon's signal thread or SIGTERM.
typedef struct { int64_t id; } Slow;
Slow* slow_new(int64_t id) {
  Slow* s = malloc(sizeof *s);
  s->id = id;
  return s;
}
void slow_free(Slow* s) {
  struct timespec delay = {0, 500 * 1000 * 1000};
  nanosleep(&delay, NULL);
  free(s);
}

// Size limits (tests/security/size_limits_test.cc): xors every byte of an
// inout buffer with `v` and returns how many bytes it saw.
uint64_t xor_bytes(uint8_t* buf, uint64_t n, uint8_t v) {
  for (uint64_t i = 0; i < n; ++i) buf[i] ^= v;
  return n;
}
