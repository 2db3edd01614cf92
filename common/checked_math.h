// Checked arithmetic for sizes, offsets, counts and lengths.
//
// Every size or offset computed from client- or worker-supplied numbers
// goes through these helpers: they report overflow instead of wrapping, so
// a layout or a range can never silently come out small.
//
//   uint64_t bytes;
//   if (!CheckedMul(element_size, length, &bytes)) return TooLarge(...);
//   if (!RangeWithin(offset, size, buffer.size())) return OutOfBounds(...);
#ifndef FFIBROKER_COMMON_CHECKED_MATH_H_
#define FFIBROKER_COMMON_CHECKED_MATH_H_

#include <cstdint>
#include <type_traits>

namespace ffibroker {

// `*out = a + b`; false (and *out unspecified) on overflow of T.
template <typename T>
[[nodiscard]] bool CheckedAdd(T a, T b, T* out) {
  static_assert(std::is_unsigned_v<T>, "sizes are unsigned");
  return !__builtin_add_overflow(a, b, out);
}

// `*out = a * b`; false (and *out unspecified) on overflow of T.
template <typename T>
[[nodiscard]] bool CheckedMul(T a, T b, T* out) {
  static_assert(std::is_unsigned_v<T>, "sizes are unsigned");
  return !__builtin_mul_overflow(a, b, out);
}

// `*out = a` rounded up to a multiple of `align` (> 0); false on overflow.
template <typename T>
[[nodiscard]] bool CheckedAlignUp(T a, T align, T* out) {
  static_assert(std::is_unsigned_v<T>, "sizes are unsigned");
  if (align == 0) return false;
  T rest = a % align;
  if (rest == 0) {
    *out = a;
    return true;
  }
  return CheckedAdd<T>(a, align - rest, out);
}

// True if the bytes [offset, offset + size) lie within [0, total), without
// computing offset + size (which could wrap).
[[nodiscard]] inline bool RangeWithin(uint64_t offset, uint64_t size, uint64_t total) {
  return offset <= total && size <= total - offset;
}

}  // namespace ffibroker

#endif  // FFIBROKER_COMMON_CHECKED_MATH_H_
