// SessionManager (session_manager.h): authorizing one client operation on
// an open library or an instance (Authorize, AuthorizeInstance), and the
// calls-in-flight limit.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/error_reason.h"
#include "common/status_macros.h"
#include "daemon/permission.h"
#include "daemon/session_manager.h"

namespace ffibroker {

absl::StatusOr<SessionManager::CallbackGrant> SessionManager::AuthorizeCallback(
    const std::string& id, const Caller& caller, const v1::RegisterCallback& request) {
  CallbackGrant grant;
  std::optional<v1::Permission> permission;
  {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(Session * session, FindLocked(id, caller));
    absl::StatusOr<ResolvedSignature> resolved =
        ResolveSignatureAs(request.signature(), session->classes, TypeUse::kCallbackParam,
                           TypeUse::kCallbackResult);
    if (!resolved.ok()) return WithMessagePrefix(resolved.status(), "the callback's signature: ");
    grant.signature = *std::move(resolved);
    permission = session->permission;
  }
  if (!request.token().empty()) {
    absl::StatusOr<v1::TokenClaims> claims = tokens_->Verify(request.token(), caller);
    if (!claims.ok()) return WithMessagePrefix(claims.status(), "token: ");
    if (!AllowsOperation(claims->permission(), v1::CALLBACKS)) {
      return WithReason(absl::PermissionDeniedError(
                            "the token does not allow callbacks (operation CALLBACKS)"),
                        "OPERATION_NOT_ALLOWED", {{"operation", "CALLBACKS"}});
    }
    grant.allowed = [tokens = tokens_, claims = *std::move(claims)] {
      return WithMessagePrefix(tokens->StillValid(claims), "the token it was created under: ");
    };
    return grant;
  }
  // The session's permission now, and every time the callback is passed.
  auto session_allows = [this, id, caller]() -> absl::Status {
    std::optional<v1::Permission> now;
    {
      absl::MutexLock lock(&mu_);
      ASSIGN_OR_RETURN(Session * session, FindLocked(id, caller));
      now = session->permission;
    }
    if (!now.has_value()) {
      return WithReason(absl::PermissionDeniedError(
                            "this session's permission has been revoked; create callbacks under "
                            "a token that allows CALLBACKS"),
                        "PERMISSION_REVOKED");
    }
    if (!AllowsOperation(*now, v1::CALLBACKS)) {
      return WithReason(absl::PermissionDeniedError(
                            "this session's permission does not allow callbacks (operation "
                            "CALLBACKS)"),
                        "OPERATION_NOT_ALLOWED", {{"operation", "CALLBACKS"}});
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(session_allows());
  grant.allowed = std::move(session_allows);
  return grant;
}

uint32_t SessionManager::CallsInFlightLimit(const Caller& caller) const {
  QuotaLimit limit = LimitOf(Resource::kCallsInFlight, caller.limits, policies_->Get()->limits());
  return std::max<uint32_t>(1, limit.principal);
}

absl::Status SessionManager::ChargeToken(const Caller& caller, uint64_t serial,
                                         uint64_t handle, const v1::TokenClaims& token,
                                         uint64_t calls, absl::string_view operation,
                                         absl::string_view detail) {
  // The single token check (revocation, expiry, quota) for every use.
  absl::Status live = tokens_->ConsumeCall(token, calls);
  if (live.ok()) return live;
  audit_->Record("deny_call", {{"principal", caller.principal},
                               {"session", SessionField(serial)},
                               {"token_id", token.token_id()},
                               {"operation", std::string(operation)},
                               {"symbol", std::string(detail)},
                               {"reason", std::string(live.message())}});
  return WithMessagePrefix(live,
                           absl::StrCat("library handle ", handle, " was opened with a token: "));
}

absl::StatusOr<SessionManager::Authorized> SessionManager::Authorize(
    const std::string& id, const Caller& caller, uint64_t handle,
    absl::string_view operation, absl::string_view detail, absl::Time deadline,
    NewHandle new_handle, const v1::CallBatchRequest* batch, TokenCharge charge) {
  Authorized out;
  // A slot in the caller's calls in flight, held for the whole operation.
  ASSIGN_OR_RETURN(out.in_flight, Reserve(caller, Resource::kCallsInFlight));
  std::optional<v1::TokenClaims> token;
  absl::Duration max_call;
  {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(Session * session, FindLocked(id, caller));
    auto it = session->libraries.find(handle);
    if (it == session->libraries.end()) {
      return WithReason(absl::NotFoundError(
          absl::StrCat("library handle ", handle, " is not open in this session")), "LIBRARY_NOT_OPEN");
    }
    out.library = it->second.library;
    token = it->second.token;
    max_call = it->second.max_call;
    out.audit_calls = it->second.audit_calls;
    out.open = it->second.open;
    out.serial = session->serial;
    std::shared_ptr<std::atomic<int>> running = session->running;
    running->fetch_add(1);
    out.running = std::shared_ptr<void>(nullptr, [running](void*) { running->fetch_sub(1); });
  }
  // Room for an instance handle the operation makes, taken before the
  // token's quota is, so a refusal costs the token nothing.
  if (new_handle == NewHandle::kYes ||
      (new_handle == NewHandle::kIfResultIsInstance && batch == nullptr &&
       out.library->ReturnsInstance(std::string(detail)))) {
    ASSIGN_OR_RETURN(out.instance, Reserve(caller, Resource::kInstances));
  }
  if (new_handle == NewHandle::kIfResultIsInstance && batch != nullptr) {
    for (const v1::BatchCall& call : batch->calls()) {
      if (!out.library->ReturnsInstance(call.symbol())) continue;
      ASSIGN_OR_RETURN(PrincipalQuota::Reservation one, Reserve(caller, Resource::kInstances));
      out.batch_instances.push_back(std::move(one));
    }
  }
  if (token.has_value()) {
    out.token_id = token->token_id();
    // An empty batch takes none, but the token must still be live.
    const uint64_t calls = batch != nullptr ? batch->calls_size() : 1;
    if (calls > 0 && charge == TokenCharge::kDeferIfJournaled &&
        tokens_->ConsumeWritesJournal(*token)) {
      out.deferred_token = *std::move(token);
      out.deferred_calls = calls;
    } else {
      RETURN_IF_ERROR(
          ChargeToken(caller, out.serial, handle, *token, calls, operation, detail));
    }
  }
  out.deadline = std::min(deadline, now_() + max_call);
  return out;
}

absl::StatusOr<std::pair<InstanceTable::Record, SessionManager::Authorized>>
SessionManager::AuthorizeInstance(const std::string& id, const Caller& caller,
                                  uint64_t handle, absl::string_view operation,
                                  absl::Time deadline) {
  InstanceTable::Record record;
  {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(Session * session, FindLocked(id, caller));
    ASSIGN_OR_RETURN(record, instances_.Find(handle, session->serial));
  }
  absl::StatusOr<Authorized> op =
      Authorize(id, caller, record.library, operation, record.klass->name, deadline,
                NewHandle::kNo, nullptr, TokenCharge::kDeferIfJournaled);
  if (absl::IsNotFound(op.status())) {  // cannot happen: closing releases
    return absl::FailedPreconditionError(
        absl::StrCat("instance handle ", handle, "'s library was closed"));
  }
  if (!op.ok()) return op.status();
  return std::make_pair(std::move(record), *std::move(op));
}

}  // namespace ffibroker
