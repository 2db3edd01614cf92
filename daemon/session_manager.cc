#include "daemon/session_manager.h"

#include <sys/random.h>

#include <algorithm>
#include <set>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/signature.h"
#include "common/status_macros.h"

namespace ffibroker {
namespace {

constexpr int kMaxSymbols = 256;

absl::StatusOr<std::string> NewSessionId() {
  char bytes[16];
  if (::getrandom(bytes, sizeof bytes, 0) != sizeof bytes) {
    return absl::InternalError("getrandom failed");
  }
  return absl::BytesToHexString(absl::string_view(bytes, sizeof bytes));
}

absl::Status ValidateSymbols(
    const google::protobuf::RepeatedPtrField<v1::SymbolDeclaration>& symbols) {
  if (symbols.empty()) {
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
    absl::Status status = ValidateSignature(s.signature());
    if (!status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("symbol '", s.name(), "': ", status.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

SessionManager::SessionManager(const Policy* policy, WorkerLauncher* launcher,
                               std::function<absl::Time()> now)
    : policy_(policy), launcher_(launcher), now_(std::move(now)) {}

SessionManager::~SessionManager() { CloseAll(); }

absl::StatusOr<SessionManager::Session*> SessionManager::FindLocked(
    const std::string& id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) {
    return absl::NotFoundError("unknown session (closed, expired, or never created)");
  }
  it->second->last_used = now_();
  return it->second.get();
}

uint32_t SessionManager::StopAll(Session& session) {
  for (auto& [handle, lib] : session.libraries) lib->Stop();
  return static_cast<uint32_t>(session.libraries.size());
}

absl::StatusOr<v1::CreateSessionResponse> SessionManager::CreateSession(
    const v1::CreateSessionRequest& request) {
  const v1::Limits& limits = policy_->limits();
  uint32_t seconds = request.idle_timeout_seconds();
  if (seconds == 0) seconds = limits.default_session_idle_seconds();
  if (seconds > limits.max_session_idle_seconds()) seconds = limits.max_session_idle_seconds();
  ASSIGN_OR_RETURN(std::string id, NewSessionId());

  absl::MutexLock lock(&mu_);
  if (sessions_.size() >= limits.max_sessions()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "too many sessions: the daemon allows ", limits.max_sessions()));
  }
  auto session = std::make_unique<Session>();
  session->serial = next_serial_++;
  session->idle_timeout = absl::Seconds(seconds);
  session->last_used = now_();
  LOG_INFO("session s%d created (idle timeout %ds)", session->serial, seconds);
  sessions_[id] = std::move(session);
  v1::CreateSessionResponse response;
  response.set_session_id(id);
  response.set_idle_timeout_seconds(seconds);
  return response;
}

absl::StatusOr<v1::CloseSessionResponse> SessionManager::CloseSession(
    const v1::CloseSessionRequest& request) {
  std::unique_ptr<Session> session;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(request.session_id());
    if (it == sessions_.end()) {
      return absl::NotFoundError("unknown session (closed, expired, or never created)");
    }
    session = std::move(it->second);
    sessions_.erase(it);
    workers_ -= static_cast<uint32_t>(session->libraries.size());
  }
  v1::CloseSessionResponse response;
  response.set_libraries_released(StopAll(*session));
  LOG_INFO("session s%d closed (%d libraries released)", session->serial,
           response.libraries_released());
  return response;
}

absl::StatusOr<v1::OpenLibraryResponse> SessionManager::OpenLibrary(
    const v1::OpenLibraryRequest& request, absl::Time deadline) {
  RETURN_IF_ERROR(ValidateSymbols(request.symbols()));
  ASSIGN_OR_RETURN(std::string path, policy_->ResolveLibrary(request.library()));
  const v1::Limits& limits = policy_->limits();
  uint64_t serial;
  {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(Session * session, FindLocked(request.session_id()));
    if (session->libraries.size() >= limits.max_libraries_per_session()) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "this session already has ", session->libraries.size(),
          " libraries open, the limit is ", limits.max_libraries_per_session()));
    }
    if (workers_ >= limits.max_workers()) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the daemon already runs ", workers_, " workers, the limit is ",
          limits.max_workers()));
    }
    ++workers_;  // reserved while we open outside the lock
    serial = session->serial;
  }
  absl::StatusOr<std::unique_ptr<Library>> opened =
      Library::Open(path, request.symbols(), launcher_, policy_->ProfileFor(path), deadline);

  absl::MutexLock lock(&mu_);
  if (!opened.ok()) {
    --workers_;
    LOG_INFO("session s%d could not open %s: %s", serial, path,
             opened.status().ToString());
    return opened.status();
  }
  absl::StatusOr<Session*> session = FindLocked(request.session_id());
  if (!session.ok()) {  // closed while we were opening
    --workers_;
    (*opened)->Stop();
    return session.status();
  }
  uint64_t handle = (*session)->next_handle++;
  v1::OpenLibraryResponse response;
  response.set_library_handle(handle);
  response.set_resolved_path(path);
  response.set_worker_pid((*opened)->worker_pid());
  *response.mutable_layers() = (*opened)->layers();
  LOG_INFO("session s%d opened %s as library %d (worker pid %d)", serial, path,
           handle, response.worker_pid());
  (*session)->libraries[handle] = std::move(*opened);
  return response;
}

absl::StatusOr<v1::CloseLibraryResponse> SessionManager::CloseLibrary(
    const v1::CloseLibraryRequest& request) {
  std::shared_ptr<Library> lib;
  {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(Session * session, FindLocked(request.session_id()));
    auto it = session->libraries.find(request.library_handle());
    if (it == session->libraries.end()) {
      return absl::NotFoundError(absl::StrCat(
          "library handle ", request.library_handle(), " is not open in this session"));
    }
    lib = std::move(it->second);
    session->libraries.erase(it);
    --workers_;
  }
  lib->Stop();
  return v1::CloseLibraryResponse();
}

absl::StatusOr<v1::CallResponse> SessionManager::Call(
    const v1::CallRequest& request, absl::Time deadline) {
  std::shared_ptr<Library> lib;
  uint64_t serial;
  {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(Session * session, FindLocked(request.session_id()));
    auto it = session->libraries.find(request.library_handle());
    if (it == session->libraries.end()) {
      return absl::NotFoundError(absl::StrCat(
          "library handle ", request.library_handle(), " is not open in this session"));
    }
    lib = it->second;
    serial = session->serial;
  }
  absl::Time cap = now_() + absl::Milliseconds(policy_->limits().max_call_millis());
  absl::StatusOr<v1::CallResponse> response =
      lib->Call(request, std::min(deadline, cap));
  if (!response.ok() && (absl::IsUnavailable(response.status()) ||
                         absl::IsPermissionDenied(response.status()) ||
                         absl::IsResourceExhausted(response.status()) ||
                         absl::IsDeadlineExceeded(response.status()) ||
                         absl::IsDataLoss(response.status()))) {
    LOG_WARNING("session s%d: %s", serial, response.status().ToString());
  }
  return response;
}

absl::StatusOr<v1::GetStatusResponse> SessionManager::GetStatus(absl::Time deadline) {
  v1::GetStatusResponse response;
  response.set_default_profile(policy_->default_profile());
  for (const Profile* profile : launcher_->profiles().All()) {
    v1::ProfileStatus* p = response.add_profiles();
    p->set_name(profile->name());
    p->set_description(profile->description());
    p->set_syscalls(static_cast<uint32_t>(profile->syscall_count()));
  }
  for (v1::Layer layer : policy_->required_layers()) response.add_required_layers(layer);
  {
    absl::MutexLock lock(&mu_);
    response.set_workers(workers_);
  }
  // A probe loads nothing; it shows what any worker gets right now.
  absl::Time cap = now_() + absl::Seconds(10);
  absl::StatusOr<std::unique_ptr<WorkerProcess>> probe = launcher_->Launch(
      worker::v1::Open(), policy_->default_profile(), std::min(deadline, cap),
      response.mutable_probe());
  if (!probe.ok()) {
    return absl::Status(probe.status().code(),
                        absl::StrCat("probe worker: ", probe.status().message()));
  }
  return response;
}

int SessionManager::ExpireIdleSessions() {
  std::vector<std::unique_ptr<Session>> expired;
  {
    absl::MutexLock lock(&mu_);
    absl::Time now = now_();
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if (now - it->second->last_used > it->second->idle_timeout) {
        workers_ -= static_cast<uint32_t>(it->second->libraries.size());
        expired.push_back(std::move(it->second));
        it = sessions_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& session : expired) {
    uint32_t n = StopAll(*session);
    LOG_INFO("session s%d expired after %s idle (%d libraries released)",
             session->serial, absl::FormatDuration(session->idle_timeout), n);
  }
  return static_cast<int>(expired.size());
}

void SessionManager::CloseAll() {
  std::map<std::string, std::unique_ptr<Session>> all;
  {
    absl::MutexLock lock(&mu_);
    all.swap(sessions_);
    for (auto& [id, session] : all) {
      workers_ -= static_cast<uint32_t>(session->libraries.size());
    }
  }
  for (auto& [id, session] : all) StopAll(*session);
}

}  // namespace ffibroker
