#include "daemon/session_manager.h"

#include "daemon/metrics.h"

#include <sys/random.h>

#include <algorithm>
#include <set>
#include <vector>

#include "absl/strings/escaping.h"
#include "common/error_reason.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/resolved_names.h"
#include "common/signature.h"
#include "common/status_macros.h"
#include "daemon/permission.h"
#include "common/log_event.h"

namespace ffibroker {
namespace {

constexpr int kMaxSymbols = 256;
constexpr int kMaxStatics = 64;

absl::StatusOr<std::string> NewSessionId() {
  char bytes[16];
  if (::getrandom(bytes, sizeof bytes, 0) != sizeof bytes) {
    return absl::InternalError("getrandom failed");
  }
  return absl::BytesToHexString(absl::string_view(bytes, sizeof bytes));
}

absl::Status ValidateSymbols(
    const google::protobuf::RepeatedPtrField<v1::SymbolDeclaration>& symbols,
    const google::protobuf::RepeatedPtrField<v1::StaticDeclaration>& statics,
    const ClassTable& classes) {
  if (symbols.empty() && statics.empty()) {
    return absl::InvalidArgumentError("symbols: declare at least one symbol to resolve");
  }
  if (symbols.size() > kMaxSymbols) {
    return absl::InvalidArgumentError(absl::StrCat(
        "symbols: ", symbols.size(), " declared, at most ", kMaxSymbols));
  }
  std::set<std::string> seen;
  for (int i = 0; i < symbols.size(); ++i) {
    const v1::SymbolDeclaration& s = symbols[i];
    if (!IsIdentifier(s.name())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "symbols[", i, "]: name '", s.name(), "' is not a C identifier"));
    }
    if (!seen.insert(s.name()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("symbols[", i, "]: '", s.name(), "' is declared twice"));
    }
    absl::Status status = ResolveSignature(s.signature(), classes).status();
    if (!status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("symbol '", s.name(), "': ", status.message()));
    }
  }
  if (statics.size() > kMaxStatics) {
    return absl::InvalidArgumentError(absl::StrCat(
        "statics: ", statics.size(), " declared, at most ", kMaxStatics));
  }
  for (int i = 0; i < statics.size(); ++i) {
    const v1::StaticDeclaration& s = statics[i];
    if (!IsIdentifier(s.name())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "statics[", i, "]: name '", s.name(), "' is not a C identifier"));
    }
    if (!seen.insert(s.name()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("statics[", i, "]: '", s.name(), "' is declared twice"));
    }
    absl::Status status = classes.Resolve(s.type(), TypeUse::kStatic).status();
    if (!status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("static '", s.name(), "': ", status.message()));
    }
  }
  return absl::OkStatus();
}

// The tighter of the daemon's limit and the permission's (0 = none).
uint32_t Tighter(uint32_t daemon, uint32_t permission) {
  return permission != 0 && permission < daemon ? permission : daemon;
}

}  // namespace

SessionManager::SessionManager(const PolicyHolder* policies, TokenAuthority* tokens,
                               AuditLog* audit, PinnedLibraries* pins,
                               WorkerLauncher* launcher,
                               std::function<absl::Time()> now)
    : policies_(policies), tokens_(tokens), audit_(audit), pins_(pins),
      launcher_(launcher), now_(std::move(now)), starter_(std::make_unique<Executor>(2)),
      releaser_(std::make_unique<Executor>(1)) {}

SessionManager::~SessionManager() {
  CloseAll(now_());
  releaser_.reset();  // runs what is queued (its workers are stopped: fast)
}

absl::Time SessionManager::ReleaseDeadline() const {
  return now_() + absl::Milliseconds(policies_->Get()->limits().max_release_millis());
}

absl::StatusOr<PrincipalQuota::Reservation> SessionManager::Reserve(const Caller& caller,
                                                                   Resource resource) {
  return quota_.Reserve(caller.limits_holder, resource,
                        LimitOf(resource, caller.limits, policies_->Get()->limits()));
}

uint32_t SessionManager::CallsInFlightLimit(const Caller& caller) const {
  QuotaLimit limit = LimitOf(Resource::kCallsInFlight, caller.limits, policies_->Get()->limits());
  return std::max<uint32_t>(1, limit.principal);
}

std::shared_ptr<Library> SessionManager::HoldWorkers(
    std::shared_ptr<Library> library, std::vector<PrincipalQuota::Reservation> workers) {
  struct Held {
    std::vector<PrincipalQuota::Reservation> workers;  // destroyed last: after the library
    std::shared_ptr<Library> library;
  };
  auto held = std::make_shared<Held>(Held{std::move(workers), std::move(library)});
  Library* raw = held->library.get();
  return std::shared_ptr<Library>(std::move(held), raw);
}

absl::StatusOr<SessionManager::Session*> SessionManager::FindLocked(
    const std::string& id, const Caller& caller) {
  auto it = sessions_.find(id);
  // Another principal's session is as unknown to the caller as a wrong id.
  if (it == sessions_.end() || it->second->principal != caller.principal) {
    return WithReason(absl::NotFoundError("unknown session (closed, expired, or never created)"), "SESSION_NOT_FOUND");
  }
  it->second->last_used = now_();
  return it->second.get();
}

std::map<uint64_t, std::shared_ptr<Library>> SessionManager::LibrariesOf(
    const Session& session) {
  std::map<uint64_t, std::shared_ptr<Library>> libraries;
  for (const auto& [handle, h] : session.libraries) libraries[handle] = h.library;
  return libraries;
}

uint32_t SessionManager::StopAll(Session& session) {
  for (auto& [handle, lib] : session.libraries) lib.library->Stop();
  return static_cast<uint32_t>(session.libraries.size());
}

absl::StatusOr<v1::CreateSessionResponse> SessionManager::CreateSession(
    const v1::CreateSessionRequest& request, const Caller& caller) {
  std::shared_ptr<const Policy> policy = policies_->Get();
  const v1::Limits& limits = policy->limits();
  uint32_t seconds = request.idle_timeout_seconds();
  if (seconds == 0) seconds = limits.default_session_idle_seconds();
  if (seconds > limits.max_session_idle_seconds()) seconds = limits.max_session_idle_seconds();
  ASSIGN_OR_RETURN(std::string id, NewSessionId());
  // Limits.max_sessions and the principal's max_sessions.
  ASSIGN_OR_RETURN(PrincipalQuota::Reservation quota, Reserve(caller, Resource::kSessions));

  absl::MutexLock lock(&mu_);
  auto session = std::make_unique<Session>();
  session->quota = std::move(quota);
  session->serial = next_serial_++;
  session->idle_timeout = absl::Seconds(seconds);
  session->last_used = now_();
  session->principal = caller.principal;
  session->permission = caller.permission;
  LOG_INFO("session s%d created for %s (idle timeout %ds)", session->serial,
           caller.principal, seconds);
  audit_->Record("create_session", {{"principal", caller.principal},
                                    {"authenticated_by", caller.authenticated_by},
                                    {"session", SessionField(session->serial)}});
  sessions_[id] = std::move(session);
  v1::CreateSessionResponse response;
  response.set_session_id(id);
  response.set_idle_timeout_seconds(seconds);
  response.set_principal(caller.principal);
  *response.mutable_permission() = caller.permission;
  return response;
}

absl::StatusOr<v1::CloseSessionResponse> SessionManager::CloseSession(
    const v1::CloseSessionRequest& request, const Caller& caller) {
  std::unique_ptr<Session> session;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(request.session_id());
    if (it == sessions_.end() || it->second->principal != caller.principal) {
      return WithReason(absl::NotFoundError("unknown session (closed, expired, or never created)"), "SESSION_NOT_FOUND");
    }
    session = std::move(it->second);
    sessions_.erase(it);
  }
  v1::CloseSessionResponse response;
  ReleaseInstances(session->serial, 0, LibrariesOf(*session), "was released when its session closed",
                   ReleaseDeadline());
  response.set_libraries_released(StopAll(*session));
  LOG_EVENT(LogLevel::kInfo,
            LogFields().Event("close_session").Principal(caller.principal).Session(session->serial),
            "session s%d closed (%d libraries released)", session->serial,
            response.libraries_released());
  return response;
}

absl::StatusOr<v1::OpenLibraryResponse> SessionManager::OpenLibrary(
    const v1::OpenLibraryRequest& request, const Caller& caller,
    absl::Time deadline) {
  std::shared_ptr<const Policy> policy = policies_->Get();
  ASSIGN_OR_RETURN(std::string path, policy->ResolveLibrary(request.library()));
  const v1::Limits& limits = policy->limits();
  ClassTable classes;  // a snapshot: later registrations do not affect this library
  // The token (verified on every use) or the session's permission decides.
  std::optional<v1::TokenClaims> token;
  if (!request.token().empty()) {
    absl::StatusOr<v1::TokenClaims> claims = tokens_->Verify(request.token(), caller);
    if (!claims.ok()) {
      metrics::Token(metrics::TokenEvent::kDeny);
      LOG_EVENT(LogLevel::kInfo,
                LogFields().Event("token_denied").Principal(caller.principal)
                    .Identity(caller.identity).Library(path),
                "%s (%s) could not open %s with a token: %s", caller.principal,
                caller.identity, path, claims.status().message());
      audit_->Record("deny_open_library", {{"principal", caller.principal},
                                           {"library", path},
                                           {"reason", std::string(claims.status().message())}});
      return WithMessagePrefix(claims.status(), "token: ");
    }
    token = *std::move(claims);
  }
  uint64_t serial;
  v1::Permission permission;
  // One per worker of the pool, held by the library once it is open.
  std::vector<PrincipalQuota::Reservation> workers;
  const uint32_t pool_size = std::max<uint32_t>(1, request.pool_size());
  if (pool_size > limits.max_pool_size()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "pool_size ", request.pool_size(), " is larger than the policy allows (limits.max_pool_size ",
        limits.max_pool_size(), ")"));
  }
  {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(Session * session, FindLocked(request.session_id(), caller));
    serial = session->serial;
    classes = session->classes;
    RETURN_IF_ERROR(ValidateSymbols(request.symbols(), request.statics(), classes));
    // Every name the worker will resolve, and whether a static is writable.
    ASSIGN_OR_RETURN(
        std::vector<NameToResolve> names,
        NamesToResolve(Library::WorkerOpen(path, request.symbols(), request.statics(),
                                           classes, WorkerSpec()),
                       classes));
    bool writes_statics = std::any_of(request.statics().begin(), request.statics().end(),
                                      [](const v1::StaticDeclaration& s) { return s.mutable_(); });
    absl::Status allowed;
    if (token.has_value()) {
      permission = token->permission();
      allowed = AuthorizeOpen(permission, "the token", path, names, writes_statics);
    } else if (!session->permission.has_value()) {
      allowed = WithReason(absl::PermissionDeniedError(
          "this session's permission has been revoked; open libraries with a token"), "PERMISSION_REVOKED");
    } else {
      permission = *session->permission;
      allowed = AuthorizeOpen(permission, "the session's permission", path, names,
                              writes_statics);
    }
    if (!allowed.ok()) {
      audit_->Record("deny_open_library",
                     {{"principal", caller.principal}, {"session", SessionField(serial)},
                      {"token_id", token ? token->token_id() : ""}, {"library", path},
                      {"reason", std::string(allowed.message())}});
      return allowed;
    }
    uint32_t max_libraries = Tighter(limits.max_libraries_per_session(),
                                     permission.limits().max_libraries_per_session());
    if (session->libraries.size() >= max_libraries) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "this session already has ", session->libraries.size(),
          " libraries open, the limit is ", max_libraries));
    }
    // Limits.max_workers and the principal's max_workers: one per worker
    // of the pool.
    for (uint32_t i = 0; i < pool_size; ++i) {
      ASSIGN_OR_RETURN(PrincipalQuota::Reservation one, Reserve(caller, Resource::kWorkers));
      workers.push_back(std::move(one));
    }
  }
  WorkerSpec spec;
  spec.launcher = launcher_;
  spec.profile = permission.confinement_profile();
  spec.required_layers = policy->required_layers();
  spec.owner = absl::StrCat("session ", SessionField(serial));
  spec.pool_size = static_cast<int>(pool_size);
  spec.starter = starter_.get();
  spec.max_start = absl::Milliseconds(limits.max_open_millis());
  // Every open is bounded (a constructor may never return): the client's
  // deadline, capped by the policy's.
  const absl::Duration max_open = absl::Milliseconds(limits.max_open_millis());
  const bool capped = now_() + max_open < deadline;
  deadline = std::min(deadline, now_() + max_open);
  absl::StatusOr<std::shared_ptr<Library>> opened;
  const v1::PermissionLibrary* entry = ffibroker::FindLibrary(permission, path);
  spec.allow_dependency_symbols = entry != nullptr && entry->allow_dependency_symbols();
  if (entry != nullptr && !entry->sha256().empty()) {
    absl::StatusOr<std::string> copy = pins_->Materialize(path, entry->sha256());
    if (copy.ok()) {
      opened = Library::Open(*copy, request.symbols(), request.statics(), classes, spec,
                             deadline);
    } else {
      opened = copy.status();
    }
  } else {
    opened = Library::Open(path, request.symbols(), request.statics(), classes, spec,
                           deadline);
  }

  if (!opened.ok() && capped && absl::IsDeadlineExceeded(opened.status())) {
    opened = absl::DeadlineExceededError(absl::StrCat(
        opened.status().message(), " (opening may take at most ",
        absl::FormatDuration(max_open), ": limits.max_open_millis)"));
  }
  absl::MutexLock lock(&mu_);
  if (!opened.ok()) {
    LOG_EVENT(LogLevel::kInfo,
              LogFields().Event("open_library_failed").Principal(caller.principal)
                  .Session(serial).Library(path),
              "session s%d could not open %s: %s", serial, path, opened.status().ToString());
    return opened.status();
  }
  absl::StatusOr<Session*> session = FindLocked(request.session_id(), caller);
  if (!session.ok()) {  // closed while we were opening
    (*opened)->Stop();
    return session.status();
  }
  uint64_t handle = (*session)->next_handle++;
  v1::OpenLibraryResponse response;
  response.set_library_handle(handle);
  response.set_resolved_path(path);
  for (pid_t pid : (*opened)->worker_pids()) response.add_worker_pids(pid);
  response.set_worker_pid(response.worker_pids(0));
  if (token.has_value()) response.set_token_id(token->token_id());
  for (const std::string& name : (*opened)->missing()) response.add_missing_symbols(name);
  *response.mutable_layers() = (*opened)->layers();
  LOG_EVENT(LogLevel::kInfo,
            LogFields().Event("open_library").Principal(caller.principal).Session(serial)
                .Library(path).WorkerPid(response.worker_pid()),
            "session s%d opened %s as library %d (worker pid %d)", serial, path, handle,
            response.worker_pid());
  audit_->Record("open_library",
                 {{"principal", caller.principal}, {"session", SessionField(serial)},
                  {"token_id", response.token_id()}, {"library", path},
                  {"handle", absl::StrCat(handle)},
                  {"confinement_profile", spec.profile}});
  Handle& h = (*session)->libraries[handle];
  h.library = HoldWorkers(*std::move(opened), std::move(workers));
  h.token = std::move(token);
  h.max_call = absl::Milliseconds(
      Tighter(limits.max_call_millis(), permission.limits().max_call_millis()));
  h.audit_calls = audit_->log_calls();
  return response;
}

absl::StatusOr<v1::CloseLibraryResponse> SessionManager::CloseLibrary(
    const v1::CloseLibraryRequest& request, const Caller& caller) {
  std::shared_ptr<Library> lib;
  uint64_t serial;
  {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(Session * session, FindLocked(request.session_id(), caller));
    auto it = session->libraries.find(request.library_handle());
    if (it == session->libraries.end()) {
      return WithReason(absl::NotFoundError(absl::StrCat(
          "library handle ", request.library_handle(), " is not open in this session")), "LIBRARY_NOT_OPEN");
    }
    lib = std::move(it->second.library);
    session->libraries.erase(it);
    serial = session->serial;
  }
  ReleaseInstances(serial, request.library_handle(), {{request.library_handle(), lib}},
                   "was released when its library was closed", ReleaseDeadline());
  lib->Stop();
  return v1::CloseLibraryResponse();
}

absl::StatusOr<SessionManager::Authorized> SessionManager::Authorize(
    const std::string& id, const Caller& caller, uint64_t handle,
    absl::string_view operation, absl::string_view detail, absl::Time deadline,
    NewHandle new_handle, const v1::CallBatchRequest* batch) {
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
    out.serial = session->serial;
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
    // The single token check (revocation, expiry, quota) for every use.
    absl::Status live =
        tokens_->ConsumeCall(*token, batch != nullptr ? std::max(1, batch->calls_size()) : 1);
    if (!live.ok()) {
      audit_->Record("deny_call", {{"principal", caller.principal},
                                   {"session", SessionField(out.serial)},
                                   {"token_id", out.token_id},
                                   {"operation", std::string(operation)},
                                   {"symbol", std::string(detail)},
                                   {"reason", std::string(live.message())}});
      return WithMessagePrefix(live, absl::StrCat("library handle ", handle, " was opened with a token: "));
    }
  }
  out.deadline = std::min(deadline, now_() + max_call);
  return out;
}


absl::StatusOr<v1::GetStatusResponse> SessionManager::GetStatus(const Caller& caller,
                                                                absl::Time deadline) {
  std::shared_ptr<const Policy> policy = policies_->Get();
  v1::GetStatusResponse response;
  response.set_default_profile(kDefaultConfinementProfile);
  for (const Profile* profile : launcher_->profiles().All()) {
    v1::ProfileStatus* p = response.add_profiles();
    p->set_name(profile->name());
    p->set_description(profile->description());
    p->set_syscalls(static_cast<uint32_t>(profile->syscall_count()));
  }
  for (v1::Layer layer : policy->required_layers()) response.add_required_layers(layer);
  for (const auto& [principal, profile] : policy->PrincipalProfiles()) {
    v1::PrincipalProfile* p = response.add_principal_profiles();
    p->set_principal(principal);
    p->set_profile(profile);
  }
  response.set_caller_principal(caller.principal);
  response.set_workers(quota_.Total(Resource::kWorkers));
  // A probe loads nothing; it shows what any worker gets right now. One at
  // a time, so status requests cannot be used to multiply processes.
  absl::MutexLock probe_lock(&probe_mu_);
  absl::Time cap = now_() + absl::Seconds(10);
  absl::StatusOr<std::unique_ptr<WorkerProcess>> probe =
      launcher_->Launch(worker::v1::Open(), kDefaultConfinementProfile, /*required=*/{},
                        std::min(deadline, cap), response.mutable_probe());
  if (!probe.ok()) {
    return absl::Status(probe.status().code(),
                        absl::StrCat("probe worker: ", probe.status().message()));
  }
  LOG_INFO("%s read the daemon status", caller.principal);
  return response;
}

int SessionManager::ExpireIdleSessions() {
  std::vector<std::unique_ptr<Session>> expired;
  {
    absl::MutexLock lock(&mu_);
    absl::Time now = now_();
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if (now - it->second->last_used > it->second->idle_timeout) {
        expired.push_back(std::move(it->second));
        it = sessions_.erase(it);
      } else {
        ++it;
      }
    }
  }
  // Destructors are library code and may be slow: they run on the
  // releaser, so the caller (the signal thread) is never held up.
  for (auto& owned : expired) {
    std::shared_ptr<Session> session(std::move(owned));
    LOG_INFO("session s%d expired after %s idle", session->serial,
             absl::FormatDuration(session->idle_timeout));
    absl::Time deadline = ReleaseDeadline();
    releaser_->Submit([this, session, deadline] {
      ReleaseInstances(session->serial, 0, LibrariesOf(*session),
                       "was released when its session expired", deadline);
      uint32_t n = StopAll(*session);
      LOG_INFO("session s%d released (%d libraries)", session->serial, n);
    });
  }
  return static_cast<int>(expired.size());
}

void SessionManager::CloseAll(absl::Time release_deadline) {
  std::map<std::string, std::unique_ptr<Session>> all;
  {
    absl::MutexLock lock(&mu_);
    all.swap(sessions_);
  }
  for (auto& [id, session] : all) {
    ReleaseInstances(session->serial, 0, LibrariesOf(*session),
                     "was released when the daemon shut down", release_deadline);
    StopAll(*session);
  }
}

}  // namespace ffibroker

namespace ffibroker {

absl::StatusOr<v1::RevokePermissionsResponse> SessionManager::RevokePermissions(
    const v1::RevokePermissionsRequest& request, const Caller& caller) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Session * session, FindLocked(request.session_id(), caller));
  if (session->permission.has_value()) {
    session->permission.reset();
    LOG_INFO("session s%d revoked its permission", session->serial);
    audit_->Record("revoke_permissions", {{"principal", caller.principal},
                                          {"session", SessionField(session->serial)}});
  }
  return v1::RevokePermissionsResponse();
}

absl::StatusOr<SessionManager::SessionView> SessionManager::View(
    const std::string& session_id, const Caller& caller) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Session * session, FindLocked(session_id, caller));
  return SessionView{session->serial, session->principal, session->permission};
}

}  // namespace ffibroker
