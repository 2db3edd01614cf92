// UTF-8 as protobuf's string fields take it: no overlong forms, no
// surrogates, nothing past U+10FFFF. The one validator of the project
// (arguments and results, callback names, audit records, statuses).
#ifndef FFIBROKER_COMMON_UTF8_H_
#define FFIBROKER_COMMON_UTF8_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace ffibroker {

// The length (1 to 4) of the well-formed character `text` starts with; 0
// if it starts with none (or is empty).
size_t Utf8CharLength(absl::string_view text);

// True if `text` is well-formed UTF-8 throughout.
bool IsValidUtf8(absl::string_view text);

// `text` with control characters other than newline and tab, and bytes
// that are not UTF-8, written as \xNN; cut (at a character's start) after
// `most` bytes with a note "... (N more bytes)". For text quoted from a
// request into a status, a log line or an audit record.
std::string BoundedStatusText(absl::string_view text, size_t most);

}  // namespace ffibroker

#endif  // FFIBROKER_COMMON_UTF8_H_
