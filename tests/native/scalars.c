/* A native test library exercising every scalar type the broker marshals.
 * Loaded only through ffibrokerd in the integration tests. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#define IDENTITY(T, name) T id_##name(T v) { return v; }
IDENTITY(bool, bool)
IDENTITY(int8_t, i8)
IDENTITY(uint8_t, u8)
IDENTITY(int16_t, i16)
IDENTITY(uint16_t, u16)
IDENTITY(int32_t, i32)
IDENTITY(uint32_t, u32)
IDENTITY(int64_t, i64)
IDENTITY(uint64_t, u64)
IDENTITY(ssize_t, isize)
IDENTITY(size_t, usize)
IDENTITY(float, f32)
IDENTITY(double, f64)

/* Arithmetic that proves the value reached native code intact. */
int8_t neg_i8(int8_t v) { return (int8_t)-v; }
uint64_t u64_minus_one(uint64_t v) { return v - 1; }
int64_t i64_plus_one(int64_t v) { return v + 1; }
bool not_bool(bool v) { return !v; }
float half_f32(float v) { return v / 2.0f; }
double f64_next_up(double v) { return nextafter(v, INFINITY); }
bool f64_is_negative_zero(double v) { return v == 0.0 && signbit(v); }
bool f64_is_nan(double v) { return isnan(v); }

/* Results the client cannot produce itself. */
double make_neg_zero(void) { return -0.0; }
double make_nan(void) { return NAN; }
double make_inf(void) { return INFINITY; }
double make_denormal(void) { return 4.9406564584124654e-324; }
float make_f32_denormal(void) { return 1.40129846e-45f; }
uint64_t make_u64_max(void) { return UINT64_MAX; }
int64_t make_i64_min(void) { return INT64_MIN; }

/* Mixed arguments: integer and float registers, sign extension, 7 args. */
double mix(int8_t a, uint16_t b, int32_t c, uint64_t d, float e, double f, bool g) {
  return (double)a + (double)b + (double)c + (double)d + (double)e + f + (g ? 1000.0 : 0.0);
}

/* More arguments than registers: the rest go on the stack. */
int64_t sum10(int64_t a, int64_t b, int64_t c, int64_t d, int64_t e, int64_t f,
              int64_t g, int64_t h, int64_t i, int64_t j) {
  return a + b + c + d + e + f + g + h + i + j;
}

/* State survives between calls served by the same worker. */
static int32_t counter;
int32_t counter_next(void) { return ++counter; }
void counter_reset(void) { counter = 0; }

/* A "bool" function that returns a trap representation: declared to the
 * broker as `bool bad_bool()`, it leaves 7 in the result register. */
uint8_t bad_bool(void) { return 7; }
