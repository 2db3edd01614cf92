// TokenAuthority: issues, verifies and revokes capability tokens.
//
// Wraps a TokenSigner (format and MAC) with the state a token's validity
// depends on besides its MAC: the clock (expiry), the revocation list and the
// call quotas. A token is verified on every use; revocation takes effect for
// the next use. Tokens are independent of the session that granted them and
// of the policy: a policy reload or RevokePermissions leaves them valid.
//
// State is in memory: with a persistent secret (Policy.token_secret_file) a
// restart forgets revocations and quota use — see README "Tokens".
//
// Thread-safe.
//
//   TokenAuthority tokens(std::move(secret));
//   ASSIGN_OR_RETURN(auto issued, tokens.Issue(claims));   // id, times filled
//   ASSIGN_OR_RETURN(v1::TokenClaims c, tokens.Verify(issued.token));
//   RETURN_IF_ERROR(tokens.Revoke(c.token_id(), principal));
#ifndef FFIBROKER_DAEMON_TOKEN_AUTHORITY_H_
#define FFIBROKER_DAEMON_TOKEN_AUTHORITY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "daemon/token_signer.h"
#include "ffibroker/v1/broker.pb.h"

namespace ffibroker {

struct IssuedToken {
  std::string token;  // secret
  v1::TokenClaims claims;
};

class TokenAuthority {
 public:
  TokenAuthority(std::string secret, std::function<absl::Time()> now = absl::Now);

  // Assigns a fresh random id and the issue time, sets the expiry to now +
  // `ttl`, signs. `claims` carries everything else (principal, permission,
  // quota, ancestors).
  absl::StatusOr<IssuedToken> Issue(v1::TokenClaims claims, absl::Duration ttl);

  // The claims of a valid token. UNAUTHENTICATED if malformed, not ours or
  // altered, or expired; PERMISSION_DENIED if it or an ancestor is revoked.
  absl::StatusOr<v1::TokenClaims> Verify(absl::string_view token) const;

  // Checks that the token behind `claims` (already verified once) is still
  // valid now and takes one call from its quota. PERMISSION_DENIED if
  // revoked, UNAUTHENTICATED if expired, RESOURCE_EXHAUSTED if the quota is
  // used up.
  absl::Status ConsumeCall(const v1::TokenClaims& claims);

  // Calls left (0 when the token has no quota).
  uint64_t CallsRemaining(const v1::TokenClaims& claims) const;

  // Revokes the token `id` if `principal` issued it. NOT_FOUND if this
  // daemon issued no such token (or it expired); PERMISSION_DENIED if
  // another principal issued it. Revoking twice is OK.
  absl::Status Revoke(const std::string& id, const std::string& principal);

 private:
  struct Known {
    std::string principal;
    absl::Time expires;
    bool revoked = false;
  };
  // Still-valid-ness of verified claims (no MAC work).
  absl::Status CheckLive(const v1::TokenClaims& claims) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void PruneLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const TokenSigner signer_;
  const std::function<absl::Time()> now_;
  mutable absl::Mutex mu_;
  std::map<std::string, Known> known_ ABSL_GUARDED_BY(mu_);       // by id
  std::map<std::string, uint64_t> calls_used_ ABSL_GUARDED_BY(mu_);  // by id
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_TOKEN_AUTHORITY_H_
