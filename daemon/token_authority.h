// TokenAuthority: issues, verifies and revokes capability tokens.
//
// Wraps a TokenSigner (format and MAC) with the state a token's validity
// depends on besides its MAC: who may use it (its audience), the clock
// (expiry), the revocation list and the call quotas. A token is verified on
// every use; revocation takes effect for the next use. Tokens are
// independent of the session that granted them and of the policy: a policy
// reload or RevokePermissions leaves them valid.
//
// Who may do what with a token:
//   - use it (open, exchange): a principal in its audience (TokenClaims.
//     audience, or only the granting principal when that is empty); anyone
//     else gets PERMISSION_DENIED that says nothing of what it grants;
//   - inspect it: its owner identity (TokenClaims.owner), or a principal its
//     audience names explicitly;
//   - revoke it: its owner identity; for anyone else the id is NOT_FOUND.
//
// Quota trees: a call through a token takes one call from its own quota
// and from the quota of every ancestor that has one (the claims carry the
// ancestors' quotas), so a whole exchange tree shares the root's quota.
// Revoking a token revokes every token exchanged from it, transitively.
//
// State: with a journal (UseJournal; used when the token secret is
// persistent) every issue, revocation and quota use is appended and fsync'd
// before the method returns, and replayed at start; without one it lives in
// memory only, which is right for a secret generated at start (its tokens
// die with the daemon).
//
// Keys: a TokenKeyring (token_keyring.h); new tokens are signed with its
// active key, tokens of any of its keys verify. SetKeyring replaces it (a
// rotation on SIGHUP): tokens of a key no longer in it stop verifying at
// once (TOKEN_KEY_UNKNOWN), and the journal is rewritten under the new
// active key.
//
// Thread-safe. Journal writes happen under the lock.
//
//   TokenAuthority tokens(std::move(keyring));
//   RETURN_IF_ERROR(tokens.UseJournal(std::move(journal), records));  // optional
//   ASSIGN_OR_RETURN(auto issued, tokens.Issue(claims, ttl));   // id, times filled
//   ASSIGN_OR_RETURN(v1::TokenClaims c, tokens.Verify(issued.token, caller));
//   RETURN_IF_ERROR(tokens.Revoke(c.token_id(), caller));
#ifndef FFIBROKER_DAEMON_TOKEN_AUTHORITY_H_
#define FFIBROKER_DAEMON_TOKEN_AUTHORITY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "daemon/identity.h"
#include "daemon/token_journal.h"
#include "daemon/token_keyring.h"
#include "daemon/token_signer.h"
#include "ffibroker/v1/broker.pb.h"

namespace ffibroker {

struct IssuedToken {
  std::string token;  // secret
  v1::TokenClaims claims;
};

// At most this many principals in a token's audience.
inline constexpr int kMaxTokenAudience = 32;

class TokenAuthority {
 public:
  TokenAuthority(TokenKeyring keyring, std::function<absl::Time()> now = absl::Now);
  // A keyring of the one key `secret` (TokenKeyring::Single).
  TokenAuthority(std::string secret, std::function<absl::Time()> now = absl::Now);

  // Replaces the keyring. With a journal whose key is not the new active
  // key, rewrites it under that key first; if that fails (UNAVAILABLE) the
  // old keyring stays.
  absl::Status SetKeyring(TokenKeyring keyring);
  // "ID (active), ID, ...": the key ids in use, for log lines.
  std::string DescribeKeys() const;

  // Replays `records` (from TokenJournal::Open), drops expired tokens,
  // rewrites the journal to that snapshot (under the active key) and journals every later change
  // in it. Call once, before serving. Errors from the rewrite.
  absl::Status UseJournal(std::unique_ptr<TokenJournal> journal,
                          const std::vector<daemon::v1::TokenJournalRecord>& records);

  // Assigns a fresh random id and the issue time, sets the expiry to now +
  // `ttl`, signs and journals. `claims` carries everything else (principal,
  // owner, audience, permission, quota, ancestors and their quotas).
  // UNAVAILABLE if the journal cannot record it (no token is issued);
  // INVALID_ARGUMENT if the token would be longer than kMaxTokenChars,
  // which Verify refuses (a scope of very many symbols, a long chain of
  // exchanges).
  absl::StatusOr<IssuedToken> Issue(v1::TokenClaims claims, absl::Duration ttl);

  // The claims of a valid token `caller` may use. UNAUTHENTICATED if
  // malformed, not ours or altered; PERMISSION_DENIED if the caller's
  // principal is not in its audience (checked before anything else about
  // it is revealed); then UNAUTHENTICATED if expired, PERMISSION_DENIED if
  // it or an ancestor is revoked.
  absl::StatusOr<v1::TokenClaims> Verify(absl::string_view token, const Caller& caller) const;

  // As Verify, but for InspectToken: the caller must be the token's owner
  // identity or a principal its audience names explicitly.
  absl::StatusOr<v1::TokenClaims> VerifyForInspect(absl::string_view token,
                                                   const Caller& caller) const;

  // Checks that the token behind `claims` (already verified once) is still
  // valid now and takes `calls` calls (a batch takes one per call) from its
  // quota and from every ancestor's, all or none.
  // PERMISSION_DENIED if revoked, UNAUTHENTICATED if expired,
  // RESOURCE_EXHAUSTED if a quota in the tree is used up (naming whose),
  // UNAVAILABLE if the journal cannot record the use (nothing is taken).
  absl::Status ConsumeCall(const v1::TokenClaims& claims, uint64_t calls = 1);
  // True if ConsumeCall(claims) appends to the journal (and fsyncs): the
  // token or an ancestor has a call quota and the daemon keeps a journal.
  bool ConsumeWritesJournal(const v1::TokenClaims& claims) const;

  // Whether the token behind `claims` (already verified once) is still
  // valid now, taking nothing from its quota: PERMISSION_DENIED if it or an
  // ancestor is revoked, UNAUTHENTICATED if expired.
  absl::Status StillValid(const v1::TokenClaims& claims) const;

  // Calls left: the least left under its own or an ancestor's quota (0
  // when the token has no quota).
  uint64_t CallsRemaining(const v1::TokenClaims& claims) const;

  // Revokes the token `id` if `caller`'s identity owns it (granted or
  // exchanged it). NOT_FOUND if this daemon knows no live token `id` owned by
  // that identity (whether or not someone else owns one); UNAVAILABLE if the
  // journal cannot record it. Revoking twice is OK.
  absl::Status Revoke(const std::string& id, const Caller& caller);

 private:
  struct Known {
    std::string principal;
    std::string owner;  // empty: issued before owners existed; the principal owns it
    absl::Time expires;
    bool revoked = false;
    uint64_t calls_used = 0;  // from its quota, by it and its descendants
  };
  // The MAC, then `may_see`, then CheckLive.
  absl::StatusOr<v1::TokenClaims> VerifyWith(
      absl::string_view token, const Caller& caller,
      bool (*may_see)(const v1::TokenClaims&, const Caller&)) const;
  // Still-valid-ness of verified claims (no MAC work).
  absl::Status CheckLive(const v1::TokenClaims& claims) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Appends to the journal, if there is one, and compacts it when it has
  // doubled. Call after changing known_ (a compaction writes known_), and
  // undo the change if it fails.
  absl::Status JournalLocked(const daemon::v1::TokenJournalRecord& record)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<daemon::v1::TokenJournalRecord> SnapshotLocked() const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void PruneLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::shared_ptr<const TokenSigner> signer() const ABSL_LOCKS_EXCLUDED(mu_);

  const std::function<absl::Time()> now_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const TokenSigner> signer_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Known> known_ ABSL_GUARDED_BY(mu_);  // by id
  std::unique_ptr<TokenJournal> journal_ ABSL_GUARDED_BY(mu_);
  uint64_t compacted_size_ ABSL_GUARDED_BY(mu_) = 0;  // journal size after the last rewrite
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_TOKEN_AUTHORITY_H_
