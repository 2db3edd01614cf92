// TokenService: the token RPCs (GrantToken, RevokeToken, InspectToken,
// ExchangeToken) and Whoami.
//
// Business logic behind the gRPC handlers, like SessionManager (whose
// sessions it reads through SessionManager::View). A granted token snapshots
// the session's permission at this moment, optionally narrowed, for the
// caller's principal or an explicit audience, owned by the caller's
// identity; an exchanged token is a narrowing of its parent (permission,
// audience, quota, lifetime), lists the parent among its ancestors
// (revoking an ancestor revokes it) and shares their quotas (see
// TokenAuthority). Every grant, exchange,
// revocation and refusal goes to the audit log with the token id (never the
// token).
//
// Thread-safe; borrows everything.
//
//   TokenService tokens(&sessions, &policies, &authority, &audit);
//   ASSIGN_OR_RETURN(v1::GrantTokenResponse r, tokens.Grant(request, caller));
#ifndef FFIBROKER_DAEMON_TOKEN_SERVICE_H_
#define FFIBROKER_DAEMON_TOKEN_SERVICE_H_

#include "absl/status/statusor.h"
#include "daemon/audit_log.h"
#include "daemon/identity.h"
#include "daemon/policy_holder.h"
#include "daemon/session_manager.h"
#include "daemon/token_authority.h"
#include "ffibroker/v1/broker.pb.h"

namespace ffibroker {

class TokenService {
 public:
  TokenService(SessionManager* sessions, const PolicyHolder* policies,
               TokenAuthority* authority, AuditLog* audit)
      : sessions_(sessions), policies_(policies), authority_(authority), audit_(audit) {}

  // PERMISSION_DENIED if the session's permission is revoked, lacks
  // GRANT_TOKEN, or does not cover the narrowing asked for (naming it);
  // INVALID_ARGUMENT for an audience naming an unknown principal.
  absl::StatusOr<v1::GrantTokenResponse> Grant(const v1::GrantTokenRequest& request,
                                               const Caller& caller);
  // See TokenAuthority::Revoke (only the owner identity; NOT_FOUND otherwise).
  absl::StatusOr<v1::RevokeTokenResponse> Revoke(const v1::RevokeTokenRequest& request,
                                                 const Caller& caller);
  // The claims of a valid token; errors as TokenAuthority::VerifyForInspect.
  absl::StatusOr<v1::InspectTokenResponse> Inspect(const v1::InspectTokenRequest& request,
                                                   const Caller& caller);
  // A narrower token; PERMISSION_DENIED if the caller's principal may not
  // use the token, the request would widen it (permission, audience, quota,
  // lifetime) or the token lacks GRANT_TOKEN.
  absl::StatusOr<v1::ExchangeTokenResponse> Exchange(
      const v1::ExchangeTokenRequest& request, const Caller& caller);
  absl::StatusOr<v1::WhoamiResponse> Whoami(const v1::WhoamiRequest& request,
                                            const Caller& caller);

 private:
  SessionManager* const sessions_;
  const PolicyHolder* const policies_;
  TokenAuthority* const authority_;
  AuditLog* const audit_;
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_TOKEN_SERVICE_H_
