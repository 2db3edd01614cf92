// SessionManager (session_manager.h): the session table — creating,
// finding, expiring and closing sessions, and the session's permission.
#include "daemon/session_manager.h"

#include <sys/random.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/error_reason.h"
#include "common/log.h"
#include "common/log_event.h"
#include "common/status_macros.h"

namespace ffibroker {
namespace {

absl::StatusOr<std::string> NewSessionId() {
  char bytes[16];
  if (::getrandom(bytes, sizeof bytes, 0) != sizeof bytes) {
    return absl::InternalError("getrandom failed");
  }
  return absl::BytesToHexString(absl::string_view(bytes, sizeof bytes));
}

}  // namespace

SessionManager::SessionManager(const PolicyHolder* policies, TokenAuthority* tokens,
                               AuditLog* audit, PinnedLibraries* pins,
                               WorkerLauncher* launcher, int start_threads, int start_share,
                               std::function<absl::Time()> now)
    : policies_(policies), tokens_(tokens), audit_(audit), pins_(pins),
      launcher_(launcher), now_(std::move(now)),
      starter_(std::make_unique<Executor>(start_threads, start_share)),
      restarter_(std::make_unique<Executor>(kRestarterThreads, /*per_principal=*/1)),
      prober_(std::make_unique<Executor>(1)),
      releaser_(std::make_unique<Executor>(1)), journal_(std::make_unique<Executor>(1)) {}

SessionManager::~SessionManager() {
  releaser_.reset();  // starts the releases of expired sessions still queued
  CloseAll(now_());   // and waits for them, with every other release
  journal_.reset();   // runs what is queued (the calls fail fast: stopped)
}

absl::Time SessionManager::ReleaseDeadline() const {
  return now_() + absl::Milliseconds(policies_->Get()->limits().max_release_millis());
}

absl::StatusOr<PrincipalQuota::Reservation> SessionManager::Reserve(const Caller& caller,
                                                                   Resource resource) {
  return quota_.Reserve(caller.limits_holder, resource,
                        LimitOf(resource, caller.limits, policies_->Get()->limits()));
}

absl::StatusOr<PrincipalQuota::Reservation> SessionManager::ReserveAnswer(const Caller& caller,
                                                                         size_t bytes) {
  const uint64_t kib = (uint64_t{bytes} + 1023) / 1024;
  if (kib == 0) return PrincipalQuota::Reservation();
  absl::StatusOr<PrincipalQuota::Reservation> held =
      quota_.Reserve(caller.limits_holder, Resource::kAnswerKib,
                     LimitOf(Resource::kAnswerKib, caller.limits, policies_->Get()->limits()),
                     static_cast<uint32_t>(std::min<uint64_t>(kib, UINT32_MAX)));
  if (!held.ok()) {
    return WithNewMessage(
        held.status(),
        absl::StrCat("the operation ran, but its answer of ", kib, " KiB is not sent: ",
                     held.status().message(), " (read the answers already sent first)"));
  }
  return held;
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

void SessionManager::MarkClosed(Session& session) {
  for (auto& [handle, h] : session.libraries) *h.open = false;
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

void SessionManager::CloseSession(const v1::CloseSessionRequest& request, const Caller& caller,
                                  Reply<v1::CloseSessionResponse> done) {
  std::shared_ptr<Session> session;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(request.session_id());
    if (it != sessions_.end() && it->second->principal == caller.principal) {
      session = std::move(it->second);
      sessions_.erase(it);
      MarkClosed(*session);
    }
  }
  if (session == nullptr) {  // answered outside the lock
    return done(WithReason(
        absl::NotFoundError("unknown session (closed, expired, or never created)"),
        "SESSION_NOT_FOUND"));
  }
  ReleaseInstances(session->serial, 0, LibrariesOf(*session),
                   "was released when its session closed", ReleaseDeadline(),
                   [session, principal = caller.principal, done = std::move(done)]() mutable {
                     v1::CloseSessionResponse response;
                     response.set_libraries_released(StopAll(*session));
                     LOG_EVENT(LogLevel::kInfo,
                               LogFields().Event("close_session").Principal(principal).Session(
                                   session->serial),
                               "session s%d closed (%d libraries released)", session->serial,
                               response.libraries_released());
                     session.reset();  // its workers and reservations go before the answer
                     done(std::move(response));
                   });
}

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

int SessionManager::ExpireIdleSessions() {
  std::vector<std::unique_ptr<Session>> expired;
  {
    absl::MutexLock lock(&mu_);
    absl::Time now = now_();
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      // An operation still running is use: idle time starts after it.
      if (it->second->running->load() > 0) it->second->last_used = now;
      if (now - it->second->last_used > it->second->idle_timeout) {
        MarkClosed(*it->second);
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
                       "was released when its session expired", deadline, [session] {
                         uint32_t n = StopAll(*session);
                         LOG_INFO("session s%d released (%d libraries)", session->serial, n);
                       });
    });
  }
  return static_cast<int>(expired.size());
}

void SessionManager::CloseAll(absl::Time release_deadline) {
  std::map<std::string, std::unique_ptr<Session>> all;
  {
    absl::MutexLock lock(&mu_);
    all.swap(sessions_);
    for (auto& [id, session] : all) MarkClosed(*session);
  }
  for (auto& [id, owned] : all) {
    std::shared_ptr<Session> session(std::move(owned));
    ReleaseInstances(session->serial, 0, LibrariesOf(*session),
                     "was released when the daemon shut down", release_deadline,
                     [session] { StopAll(*session); });
  }
  // These, and the releases of sessions closed or expired just before.
  AwaitReleases();
}

}  // namespace ffibroker
