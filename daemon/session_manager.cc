#include "daemon/session_manager.h"

#include <sys/random.h>

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

}  // namespace

SessionManager::SessionManager(const Policy* policy, WorkerOptions worker_options,
                               std::function<absl::Time()> now)
    : policy_(policy), worker_options_(std::move(worker_options)), now_(std::move(now)) {}

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
  ReleaseInstances(session->serial, 0, session->libraries, "was released when its session closed");
  response.set_libraries_released(StopAll(*session));
  LOG_INFO("session s%d closed (%d libraries released)", session->serial,
           response.libraries_released());
  return response;
}

absl::StatusOr<v1::OpenLibraryResponse> SessionManager::OpenLibrary(
    const v1::OpenLibraryRequest& request, absl::Time deadline) {
  ASSIGN_OR_RETURN(std::string path, policy_->ResolveLibrary(request.library()));
  ClassTable classes;  // a snapshot: later registrations do not affect this library
  const v1::Limits& limits = policy_->limits();
  uint64_t serial;
  {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(Session * session, FindLocked(request.session_id()));
    classes = session->classes;
    RETURN_IF_ERROR(ValidateSymbols(request.symbols(), request.statics(), classes));
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
      Library::Open(path, request.symbols(), request.statics(), classes, worker_options_,
                    deadline);

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
  for (const std::string& name : (*opened)->missing()) response.add_missing_symbols(name);
  LOG_INFO("session s%d opened %s as library %d (worker pid %d)", serial, path,
           handle, response.worker_pid());
  (*session)->libraries[handle] = std::move(*opened);
  return response;
}

absl::StatusOr<v1::CloseLibraryResponse> SessionManager::CloseLibrary(
    const v1::CloseLibraryRequest& request) {
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
    lib = std::move(it->second);
    session->libraries.erase(it);
    serial = session->serial;
    --workers_;
  }
  ReleaseInstances(serial, request.library_handle(), {{request.library_handle(), lib}},
                   "was released when its library was closed");
  lib->Stop();
  return v1::CloseLibraryResponse();
}

absl::StatusOr<v1::CallResponse> SessionManager::Call(
    const v1::CallRequest& request, absl::Time deadline) {
  uint64_t serial;
  ASSIGN_OR_RETURN(std::shared_ptr<Library> lib,
                   FindLibrary(request.session_id(), request.library_handle(), &serial));
  absl::StatusOr<v1::CallResponse> response =
      lib->Call(request, CapDeadline(deadline),
                ContextFor(serial, request.library_handle()));
  if (!response.ok() && (absl::IsUnavailable(response.status()) ||
                         absl::IsDeadlineExceeded(response.status()) ||
                         absl::IsDataLoss(response.status()))) {
    LOG_WARNING("session s%d: %s", serial, response.status().ToString());
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
    ReleaseInstances(session->serial, 0, session->libraries,
                     "was released when its session expired");
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
  for (auto& [id, session] : all) {
    ReleaseInstances(session->serial, 0, session->libraries,
                     "was released when the daemon shut down");
    StopAll(*session);
  }
}

}  // namespace ffibroker
