// TokenSigner: the wire format and MAC of capability tokens.
//
// A token is the ASCII string
//
//   "ffbt2." key_id "." base64url-without-padding( claims || mac )
//
// where `key_id` names the keyring key that signed it (token_keyring.h),
// `claims` is a serialized v1::TokenClaims (its key_id field set to the
// same id) and `mac` is the 32-byte HMAC-SHA256 (OpenSSL) under that key of
// "ffibroker-token-v2\0" || key_id || "\0" || claims. Verification looks
// the key up by id, recomputes the MAC and compares it in constant time
// (CRYPTO_memcmp) before the claims are parsed; a non-canonical base64
// encoding is rejected, so no two strings carry the same token.
//
// Tokens of the earlier format "ffbt1." base64url(claims || mac), with the
// MAC over "ffibroker-token-v1\0" || claims and no key id, were signed by a
// single-key daemon before key ids existed; they are still accepted when a
// key of the keyring verifies them (every key is tried), so an upgrade, or
// moving that secret into a keyring, leaves them valid. They are never
// issued any more.
//
// Neither a token nor a secret is ever put in a message; key ids are.
//
// Thread-safe (immutable after construction).
//
//   TokenSigner signer(std::move(keyring));
//   std::string token = signer.Sign(claims);
//   ASSIGN_OR_RETURN(v1::TokenClaims back, signer.Verify(token));
#ifndef FFIBROKER_DAEMON_TOKEN_SIGNER_H_
#define FFIBROKER_DAEMON_TOKEN_SIGNER_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/token_keyring.h"
#include "ffibroker/v1/broker.pb.h"

namespace ffibroker {

inline constexpr size_t kTokenMacBytes = 32;
// Longest token string accepted (claims of a wide permission fit easily).
inline constexpr size_t kMaxTokenChars = 16384;
inline constexpr char kTokenPrefix[] = "ffbt2.";
inline constexpr char kLegacyTokenPrefix[] = "ffbt1.";

// Reads the secret from `path` (empty: generates kTokenSecretBytes random
// bytes). FAILED_PRECONDITION if the file is not a regular file owned by
// the daemon's user with no group/other permission bits, or holds fewer than
// kTokenSecretBytes bytes (or more than 64 KiB); NOT_FOUND if it cannot be
// read.
absl::StatusOr<std::string> LoadOrGenerateTokenSecret(const std::string& path);

class TokenSigner {
 public:
  explicit TokenSigner(TokenKeyring keyring);
  // A signer of the one key `secret` (TokenKeyring::Single); at least
  // kTokenSecretBytes bytes.
  explicit TokenSigner(std::string secret);

  // The token for `claims`, signed with the active key; its key_id claim is
  // set to that key's id.
  std::string Sign(const v1::TokenClaims& claims) const;

  // The claims of a token a key of the keyring signed. UNAUTHENTICATED
  // ("token is malformed" / "token was not issued by this daemon or was
  // altered") for anything else, with the reason TOKEN_KEY_UNKNOWN (and
  // metadata key_id) when the token names a key id the keyring does not
  // hold (a retired key). Does not look at expiry or revocation
  // (TokenAuthority).
  absl::StatusOr<v1::TokenClaims> Verify(absl::string_view token) const;

  const TokenKeyring& keyring() const { return keyring_; }

 private:
  const TokenKeyring keyring_;
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_TOKEN_SIGNER_H_
