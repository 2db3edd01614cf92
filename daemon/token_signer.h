// TokenSigner: the wire format and MAC of capability tokens.
//
// A token is the ASCII string
//
//   "ffbt1." base64url-without-padding( claims || mac )
//
// where `claims` is a serialized v1::TokenClaims and `mac` is the 32-byte
// HMAC-SHA256 (OpenSSL) under the daemon's secret of
// "ffibroker-token-v1\0" || claims. Verification recomputes the MAC and
// compares it in constant time (CRYPTO_memcmp) before the claims are parsed;
// a non-canonical base64 encoding is rejected, so no two strings carry the
// same token. Neither the token nor the secret is ever put in a message.
//
// Thread-safe (immutable after construction).
//
//   ASSIGN_OR_RETURN(std::string secret, LoadOrGenerateTokenSecret(path));
//   TokenSigner signer(secret);
//   std::string token = signer.Sign(claims);
//   ASSIGN_OR_RETURN(v1::TokenClaims back, signer.Verify(token));
#ifndef FFIBROKER_DAEMON_TOKEN_SIGNER_H_
#define FFIBROKER_DAEMON_TOKEN_SIGNER_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ffibroker/v1/broker.pb.h"

namespace ffibroker {

inline constexpr size_t kTokenSecretBytes = 32;
inline constexpr size_t kTokenMacBytes = 32;
// Longest token string accepted (claims of a wide permission fit easily).
inline constexpr size_t kMaxTokenChars = 16384;
inline constexpr char kTokenPrefix[] = "ffbt1.";

// Reads the secret from `path` (empty: generates kTokenSecretBytes random
// bytes). FAILED_PRECONDITION if the file is not a regular file owned by
// the daemon's user with no group/other permission bits, or holds fewer than
// kTokenSecretBytes bytes; NOT_FOUND if it cannot be read.
absl::StatusOr<std::string> LoadOrGenerateTokenSecret(const std::string& path);

class TokenSigner {
 public:
  // `secret` must hold at least kTokenSecretBytes bytes.
  explicit TokenSigner(std::string secret);

  // The token for `claims`.
  std::string Sign(const v1::TokenClaims& claims) const;

  // The claims of a token this daemon signed. UNAUTHENTICATED ("token is
  // malformed" / "token was not issued by this daemon or was altered") for
  // anything else. Does not look at expiry or revocation (TokenAuthority).
  absl::StatusOr<v1::TokenClaims> Verify(absl::string_view token) const;

 private:
  std::string Mac(absl::string_view claims) const;
  const std::string secret_;
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_TOKEN_SIGNER_H_
