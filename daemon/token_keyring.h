// TokenKeyring: the keys that sign and verify capability tokens.
//
// One key is active: it signs every new token. The others verify only, so
// tokens signed before a rotation stay valid until their key is removed
// (retired). Each key has an id that new tokens carry in the clear
// (token_signer.h), so a daemon finds the key a token needs without trying
// them all, and says precisely which key it lacks.
//
// The keyring file (policy token_keyring_file), one key per line:
//
//   # comments and blank lines are ignored
//   KEY_ID  ROLE  SECRET
//   2026-12 active 5d41402abc4b2a76b9719d911017c592...
//   2026-06 verify 7d793037a0760186574b0282f2f435e7...
//
//   KEY_ID  1..32 characters of [A-Za-z0-9_-]; unique in the file
//   ROLE    "active" (exactly one line) or "verify"
//   SECRET  the key in hex, at least 2 * kTokenSecretBytes digits (32
//           bytes); no two keys may share a secret
//
// The file must be a regular file owned by the daemon's user with no
// group/other permission bits (like token_secret_file), at most
// kMaxKeyringBytes, with at most kMaxKeyringKeys keys. Errors name the file,
// the line and the problem, and key ids when valid — never a secret, nor any
// text a secret may be in.
//
// The single-key configurations are keyrings of one key: a
// token_secret_file, or a secret generated at start. Their key's id is
// derived from the secret (DerivedKeyId: "secret-" and 12 hex digits of an
// HMAC of it, so it says nothing of the secret), so the same secret file
// keeps the same id and can be moved into a keyring under that id.
//
// Immutable; thread-safe.
//
//   ASSIGN_OR_RETURN(TokenKeyring ring, LoadTokenKeyring("/etc/ffibroker/token.keyring"));
//   const TokenKey& signing = ring.active();
//   const TokenKey* key = ring.Find("2026-06");   // nullptr: not in the ring
#ifndef FFIBROKER_DAEMON_TOKEN_KEYRING_H_
#define FFIBROKER_DAEMON_TOKEN_KEYRING_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ffibroker {

inline constexpr size_t kTokenSecretBytes = 32;
inline constexpr size_t kMaxKeyIdChars = 32;
inline constexpr size_t kMaxKeyringKeys = 64;
inline constexpr size_t kMaxKeyringBytes = 64 * 1024;

struct TokenKey {
  std::string id;
  std::string secret;  // raw bytes; never logged
};

// True if `id` is a well-formed key id (1..kMaxKeyIdChars of [A-Za-z0-9_-]).
bool ValidKeyId(absl::string_view id);

// The key id of a single secret: "secret-" and 12 hex digits of
// HMAC-SHA256(secret, "ffibroker-token-key-id").
std::string DerivedKeyId(absl::string_view secret);

class TokenKeyring {
 public:
  // A ring of the one key `secret` (at least kTokenSecretBytes bytes), with
  // its DerivedKeyId.
  static TokenKeyring Single(std::string secret);

  // The key that signs new tokens.
  const TokenKey& active() const { return keys_[0]; }
  // Every key, the active one first, then in file order.
  const std::vector<TokenKey>& keys() const { return keys_; }
  // The key `id`, or nullptr if the ring has none by that id.
  const TokenKey* Find(absl::string_view id) const;
  // "2026-12 (active), 2026-06": the ids, for log lines (no secrets).
  std::string Describe() const;

 private:
  friend absl::StatusOr<TokenKeyring> ParseTokenKeyring(absl::string_view text,
                                                        absl::string_view path);
  explicit TokenKeyring(std::vector<TokenKey> keys) : keys_(std::move(keys)) {}
  std::vector<TokenKey> keys_;  // never empty; [0] is active
};

// Parses a keyring file's text; `path` only names it in errors.
// INVALID_ARGUMENT naming `path`, the line and the problem.
absl::StatusOr<TokenKeyring> ParseTokenKeyring(absl::string_view text, absl::string_view path);

// Reads and parses the keyring file at `path`. NOT_FOUND if it cannot be
// opened; FAILED_PRECONDITION if it is not a private regular file of the
// daemon's user (as for token_secret_file) or is larger than
// kMaxKeyringBytes; else as ParseTokenKeyring.
absl::StatusOr<TokenKeyring> LoadTokenKeyring(const std::string& path);

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_TOKEN_KEYRING_H_
