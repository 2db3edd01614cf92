/* A native test library that fails in the ways a flaky library does:
 * the broker must turn each into an error for that call only. */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

int32_t crash_segv(void) {
  volatile int32_t* p = (volatile int32_t*)(uintptr_t)16;
  return *p;
}

void crash_abort(void) { abort(); }

int32_t exit_midcall(void) { _exit(7); }

void hang(void) {
  /* A busy loop: allowed by every profile, unlike pause(). */
  for (volatile unsigned long i = 0;; ++i) {
  }
}

int32_t healthy(int32_t v) { return v * 2; }

/* Counts its calls in this worker: which ran, and in what order. */
static int32_t calls_counted;
int32_t count_call(void) { return ++calls_counted; }

/* Takes a while, then succeeds: for deadlines and graceful shutdown. */
int32_t sleep_ms(uint32_t ms) {
  usleep(ms * 1000u);
  return 1;
}

/* Reads a buffer: big requests pile up on the channel of a worker that is
 * busy (tests/streams: a full channel must not hold a daemon thread). */
uint64_t count_bytes(const uint8_t* buf, uint64_t n) {
  uint64_t sum = 0;
  for (uint64_t i = 0; i < n; ++i) sum += buf[i];
  return sum;
}
