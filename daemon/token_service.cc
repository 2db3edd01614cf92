#include "daemon/token_service.h"

#include "daemon/metrics.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log_event.h"
#include "common/signature.h"
#include "common/status_macros.h"
#include "common/token_id.h"
#include "daemon/permission.h"

namespace ffibroker {
namespace {

// Resolves the requested libraries (names or paths) to canonical paths and
// checks the symbol names.
absl::StatusOr<std::vector<LibraryNarrowing>> Resolve(
    const Policy& policy,
    const google::protobuf::RepeatedPtrField<v1::GrantTokenLibrary>& libraries) {
  std::vector<LibraryNarrowing> out;
  for (int i = 0; i < libraries.size(); ++i) {
    const v1::GrantTokenLibrary& lib = libraries[i];
    absl::StatusOr<std::string> path = policy.ResolveLibrary(lib.library());
    if (!path.ok()) {
      return absl::Status(path.status().code(),
                          absl::StrCat("libraries[", i, "]: ", path.status().message()));
    }
    LibraryNarrowing n{*path, lib.library(), {}};
    for (int j = 0; j < lib.symbols_size(); ++j) {
      if (!IsIdentifier(lib.symbols(j))) {
        return absl::InvalidArgumentError(absl::StrCat(
            "libraries[", i, "].symbols[", j, "]: '", lib.symbols(j),
            "' is not a C identifier"));
      }
      n.symbols.push_back(lib.symbols(j));
    }
    out.push_back(std::move(n));
  }
  return out;
}

absl::StatusOr<std::vector<v1::PermissionOperation>> Operations(
    const google::protobuf::RepeatedField<int>& ops) {
  std::vector<v1::PermissionOperation> out;
  for (int i = 0; i < ops.size(); ++i) {
    if (!v1::PermissionOperation_IsValid(ops[i]) ||
        ops[i] == v1::PERMISSION_OPERATION_UNSPECIFIED) {
      return absl::InvalidArgumentError(
          absl::StrCat("operations[", i, "]: ", ops[i], " is not an operation"));
    }
    out.push_back(static_cast<v1::PermissionOperation>(ops[i]));
  }
  return out;
}

// The audience asked for: principals of the policy, unique, at most
// kMaxTokenAudience; with `within` (an exchange), each must be in it.
absl::StatusOr<std::vector<std::string>> Audience(
    const Policy& policy, const google::protobuf::RepeatedPtrField<std::string>& requested,
    const std::vector<std::string>* within) {
  if (requested.size() > kMaxTokenAudience) {
    return absl::InvalidArgumentError(absl::StrCat(
        "audience: ", requested.size(), " principals, at most ", kMaxTokenAudience));
  }
  std::vector<std::string> out;
  for (int i = 0; i < requested.size(); ++i) {
    const std::string& name = requested[i];
    if (std::find(out.begin(), out.end(), name) != out.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("audience[", i, "]: '", name, "' is listed twice"));
    }
    if (within != nullptr) {
      if (std::find(within->begin(), within->end(), name) == within->end()) {
        return absl::PermissionDeniedError(absl::StrCat(
            "audience[", i, "]: '", name,
            "' is not in the token's audience (an exchange can only narrow it)"));
      }
    } else if (!policy.HasPrincipal(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("audience[", i, "]: '", name, "' is not a principal of the policy"));
    }
    out.push_back(name);
  }
  return out;
}

// Who may use a token: its audience, or its principal when that is empty.
std::vector<std::string> EffectiveAudience(const v1::TokenClaims& claims) {
  if (claims.audience().empty()) return {claims.principal()};
  return {claims.audience().begin(), claims.audience().end()};
}

}  // namespace

absl::StatusOr<v1::GrantTokenResponse> TokenService::Grant(
    const v1::GrantTokenRequest& request, const Caller& caller) {
  ASSIGN_OR_RETURN(SessionManager::SessionView session,
                   sessions_->View(request.session_id(), caller));
  std::shared_ptr<const Policy> policy = policies_->Get();
  auto deny = [&](absl::Status status) {
    metrics::Token(metrics::TokenEvent::kDeny);
    LOG_EVENT(LogLevel::kInfo,
              LogFields().Event("token_denied").Principal(caller.principal)
                  .Identity(caller.identity).Session(session.serial),
              "session s%d: GrantToken refused: %s", session.serial, status.message());
    audit_->Record("deny_grant_token", {{"principal", caller.principal},
                                        {"session", SessionField(session.serial)},
                                        {"reason", std::string(status.message())}});
    return status;
  };
  if (!session.permission.has_value()) {
    return deny(absl::PermissionDeniedError(
        "this session's permission has been revoked; it cannot grant tokens"));
  }
  if (!AllowsOperation(*session.permission, v1::GRANT_TOKEN)) {
    return deny(absl::PermissionDeniedError(
        "the session's permission does not allow granting tokens"));
  }
  const v1::Limits& limits = policy->limits();
  if (request.ttl_seconds() > limits.max_token_ttl_seconds()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ttl_seconds: ", request.ttl_seconds(), " exceeds the policy's maximum of ",
        limits.max_token_ttl_seconds()));
  }
  ASSIGN_OR_RETURN(std::vector<LibraryNarrowing> libraries,
                   Resolve(*policy, request.libraries()));
  ASSIGN_OR_RETURN(std::vector<v1::PermissionOperation> ops,
                   Operations(request.operations()));
  absl::StatusOr<v1::Permission> narrowed = Narrow(*session.permission, libraries, ops);
  if (!narrowed.ok()) return deny(narrowed.status());
  ASSIGN_OR_RETURN(std::vector<std::string> audience,
                   Audience(*policy, request.audience(), nullptr));

  v1::TokenClaims claims;
  claims.set_principal(caller.principal);
  claims.set_owner(caller.identity);
  for (std::string& name : audience) claims.add_audience(std::move(name));
  claims.set_session_serial(session.serial);
  *claims.mutable_permission() = *std::move(narrowed);
  claims.set_call_quota(request.call_quota());
  uint32_t ttl = request.ttl_seconds() != 0 ? request.ttl_seconds()
                                            : limits.default_token_ttl_seconds();
  ASSIGN_OR_RETURN(IssuedToken issued, authority_->Issue(claims, absl::Seconds(ttl)));
  metrics::Token(metrics::TokenEvent::kGrant);
  audit_->Record("grant_token", {{"principal", caller.principal},
                                 {"session", SessionField(session.serial)},
                                 {"token_id", issued.claims.token_id()},
                                 {"expires_unix_seconds",
                                  absl::StrCat(issued.claims.expires_unix_seconds())},
                                 {"owner", issued.claims.owner()},
                                 {"audience", absl::StrJoin(issued.claims.audience(), ",")}});
  v1::GrantTokenResponse response;
  response.set_token(std::move(issued.token));
  *response.mutable_claims() = std::move(issued.claims);
  return response;
}

absl::StatusOr<v1::RevokeTokenResponse> TokenService::Revoke(
    const v1::RevokeTokenRequest& request, const Caller& caller) {
  ASSIGN_OR_RETURN(SessionManager::SessionView session,
                   sessions_->View(request.session_id(), caller));
  if (request.token_id().empty()) {
    return absl::InvalidArgumentError("token_id: empty");
  }
  if (!IsTokenId(request.token_id())) {
    // Never looked up, echoed or audited: it may be a token.
    metrics::Token(metrics::TokenEvent::kDeny);
    audit_->Record("deny_revoke_token", {{"principal", caller.principal},
                                         {"session", SessionField(session.serial)},
                                         {"identity", caller.identity},
                                         {"reason", "not a token id"}});
    return absl::InvalidArgumentError(kNotATokenIdMessage);
  }
  absl::Status status = authority_->Revoke(request.token_id(), caller);
  metrics::Token(status.ok() ? metrics::TokenEvent::kRevoke : metrics::TokenEvent::kDeny);
  audit_->Record(status.ok() ? "revoke_token" : "deny_revoke_token",
                 {{"principal", caller.principal},
                  {"session", SessionField(session.serial)},
                  {"token_id", request.token_id()},
                  {"identity", caller.identity},
                  {"reason", std::string(status.message())}});
  RETURN_IF_ERROR(status);
  return v1::RevokeTokenResponse();
}

absl::StatusOr<v1::InspectTokenResponse> TokenService::Inspect(
    const v1::InspectTokenRequest& request, const Caller& caller) {
  RETURN_IF_ERROR(sessions_->View(request.session_id(), caller).status());
  absl::StatusOr<v1::TokenClaims> claims = authority_->VerifyForInspect(request.token(), caller);
  if (!claims.ok()) {
    return absl::Status(claims.status().code(),
                        absl::StrCat("token: ", claims.status().message()));
  }
  v1::InspectTokenResponse response;
  response.set_calls_remaining(authority_->CallsRemaining(*claims));
  *response.mutable_claims() = *std::move(claims);
  return response;
}

absl::StatusOr<v1::ExchangeTokenResponse> TokenService::Exchange(
    const v1::ExchangeTokenRequest& request, const Caller& caller) {
  ASSIGN_OR_RETURN(SessionManager::SessionView session,
                   sessions_->View(request.session_id(), caller));
  absl::StatusOr<v1::TokenClaims> parent = authority_->Verify(request.token(), caller);
  auto deny = [&](absl::Status status) {
    metrics::Token(metrics::TokenEvent::kDeny);
    LOG_EVENT(LogLevel::kInfo,
              LogFields().Event("token_denied").Principal(caller.principal)
                  .Identity(caller.identity).Session(session.serial),
              "session s%d: ExchangeToken refused: %s", session.serial, status.message());
    audit_->Record("deny_exchange_token",
                   {{"principal", caller.principal},
                    {"session", SessionField(session.serial)},
                    {"token_id", parent.ok() ? parent->token_id() : ""},
                    {"reason", std::string(status.message())}});
    return status;
  };
  if (!parent.ok()) {
    return deny(absl::Status(parent.status().code(),
                             absl::StrCat("token: ", parent.status().message())));
  }
  if (!AllowsOperation(parent->permission(), v1::GRANT_TOKEN)) {
    return deny(absl::PermissionDeniedError("the token does not allow exchanging it"));
  }
  std::shared_ptr<const Policy> policy = policies_->Get();
  ASSIGN_OR_RETURN(std::vector<LibraryNarrowing> libraries,
                   Resolve(*policy, request.libraries()));
  ASSIGN_OR_RETURN(std::vector<v1::PermissionOperation> ops,
                   Operations(request.operations()));
  absl::StatusOr<v1::Permission> narrowed = Narrow(parent->permission(), libraries, ops);
  if (!narrowed.ok()) return deny(narrowed.status());
  if (!IsSubset(*narrowed, parent->permission())) {  // belt and braces
    return deny(absl::PermissionDeniedError("the exchange would widen the token"));
  }
  if (parent->call_quota() != 0 && request.call_quota() > parent->call_quota()) {
    return deny(absl::PermissionDeniedError(absl::StrCat(
        "call_quota: must be 0 (the token's) or 1..", parent->call_quota(),
        " (the token's quota)")));
  }
  absl::Duration left = absl::FromUnixSeconds(parent->expires_unix_seconds()) - absl::Now();
  absl::Duration ttl = request.ttl_seconds() == 0 ? left : absl::Seconds(request.ttl_seconds());
  if (ttl > left) {
    return deny(absl::PermissionDeniedError(absl::StrCat(
        "ttl_seconds: ", request.ttl_seconds(), " outlives the token (",
        absl::ToInt64Seconds(left), "s left)")));
  }
  const std::vector<std::string> parent_audience = EffectiveAudience(*parent);
  absl::StatusOr<std::vector<std::string>> audience =
      Audience(*policy, request.audience(), &parent_audience);
  if (!audience.ok()) return deny(audience.status());
  if (audience->empty()) *audience = parent_audience;
  v1::TokenClaims claims;
  claims.set_principal(caller.principal);
  claims.set_owner(caller.identity);  // the exchanger may revoke it
  for (std::string& name : *audience) claims.add_audience(std::move(name));
  claims.set_session_serial(session.serial);
  *claims.mutable_permission() = *std::move(narrowed);
  claims.set_call_quota(request.call_quota() != 0 ? request.call_quota() : parent->call_quota());
  // The whole tree shares each ancestor's quota (TokenAuthority::ConsumeCall).
  *claims.mutable_ancestor_ids() = parent->ancestor_ids();
  claims.add_ancestor_ids(parent->token_id());
  *claims.mutable_ancestor_call_quotas() = parent->ancestor_call_quotas();
  claims.add_ancestor_call_quotas(parent->call_quota());
  ASSIGN_OR_RETURN(IssuedToken issued, authority_->Issue(claims, ttl));
  metrics::Token(metrics::TokenEvent::kExchange);
  audit_->Record("exchange_token", {{"principal", caller.principal},
                                    {"session", SessionField(session.serial)},
                                    {"parent_token_id", parent->token_id()},
                                    {"token_id", issued.claims.token_id()},
                                    {"owner", issued.claims.owner()},
                                    {"audience", absl::StrJoin(issued.claims.audience(), ",")}});
  v1::ExchangeTokenResponse response;
  response.set_token(std::move(issued.token));
  *response.mutable_claims() = std::move(issued.claims);
  return response;
}

absl::StatusOr<v1::WhoamiResponse> TokenService::Whoami(const v1::WhoamiRequest& request,
                                                        const Caller& caller) {
  v1::WhoamiResponse response;
  response.set_principal(caller.principal);
  response.set_authenticated_by(caller.authenticated_by);
  if (!request.session_id().empty()) {
    ASSIGN_OR_RETURN(SessionManager::SessionView session,
                     sessions_->View(request.session_id(), caller));
    if (session.permission.has_value()) {
      *response.mutable_session_permission() = *session.permission;
    } else {
      response.set_session_permission_revoked(true);
    }
  }
  return response;
}

}  // namespace ffibroker
