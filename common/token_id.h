// What a token id looks like: 32 lowercase hex digits (16 random bytes,
// TokenClaims.token_id). Checked before an id is looked up, logged or
// echoed, so that a token pasted where its id belongs (a secret) is
// refused without being written anywhere.
#ifndef FFIBROKER_COMMON_TOKEN_ID_H_
#define FFIBROKER_COMMON_TOKEN_ID_H_

#include <cstddef>

#include "absl/strings/string_view.h"

namespace ffibroker {

inline constexpr size_t kTokenIdLength = 32;

inline bool IsTokenId(absl::string_view id) {
  if (id.size() != kTokenIdLength) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// Why `id` is refused (it is not quoted: it may be a token).
inline constexpr char kNotATokenIdMessage[] =
    "token_id: not a token id (32 lowercase hex digits, as GrantToken's claims.token_id and "
    "InspectToken show); it is not repeated here in case it is a token, which is a secret";

}  // namespace ffibroker

#endif  // FFIBROKER_COMMON_TOKEN_ID_H_
