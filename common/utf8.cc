#include "common/utf8.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ffibroker {

size_t Utf8CharLength(absl::string_view text) {
  if (text.empty()) return 0;
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  size_t length = 0;
  // The second byte's range is narrower than 0x80..0xBF where overlong
  // forms, surrogates or values past U+10FFFF would start.
  unsigned char low = 0x80, high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  if (text.size() < length || byte(1) < low || byte(1) > high) return 0;
  for (size_t k = 2; k < length; ++k) {
    if (byte(k) < 0x80 || byte(k) > 0xBF) return 0;
  }
  return length;
}

bool IsValidUtf8(absl::string_view text) {
  while (!text.empty()) {
    const size_t length = Utf8CharLength(text);
    if (length == 0) return false;
    text.remove_prefix(length);
  }
  return true;
}

std::string BoundedStatusText(absl::string_view text, size_t most) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    size_t length = Utf8CharLength(text.substr(i));
    std::string piece;
    if (length == 0 || (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
      // A control character, or a byte that is not UTF-8 (which would make
      // the client's protobuf parser refuse a message carrying it).
      piece = absl::StrFormat("\\x%02x", c);
      length = 1;
    } else {
      piece = std::string(text.substr(i, length));  // whole characters only
    }
    if (out.size() + piece.size() > most) break;
    out += piece;
    i += length;
  }
  if (i < text.size()) absl::StrAppend(&out, "... (", text.size() - i, " more bytes)");
  return out;
}

}  // namespace ffibroker
