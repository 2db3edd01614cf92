// SessionManager (session_manager.h): opening and closing libraries — what
// a session may open (its permission or a token), checked before any worker
// starts, and the limits on what it holds.
#include <algorithm>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/limits.h"
#include "common/error_reason.h"
#include "common/log.h"
#include "common/log_event.h"
#include "common/resolved_names.h"
#include "common/signature.h"
#include "common/status_macros.h"
#include "common/type_table.h"
#include "common/value_codec.h"
#include "daemon/exception_status.h"
#include "daemon/metrics.h"
#include "daemon/permission.h"
#include "daemon/session_manager.h"

namespace ffibroker {
namespace {


absl::Status ValidateSymbols(
    const google::protobuf::RepeatedPtrField<v1::SymbolDeclaration>& symbols,
    const google::protobuf::RepeatedPtrField<v1::StaticDeclaration>& statics,
    const ClassTable& classes) {
  if (symbols.empty() && statics.empty()) {
    return absl::InvalidArgumentError("symbols: declare at least one symbol to resolve");
  }
  if (symbols.size() > kMaxSymbolsPerOpen) {
    return absl::InvalidArgumentError(absl::StrCat(
        "symbols: ", symbols.size(), " declared, at most ", kMaxSymbolsPerOpen));
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
    absl::StatusOr<ResolvedSignature> sig = ResolveSignature(s.signature(), classes);
    if (!sig.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("symbol '", s.name(), "': ", sig.status().message()));
    }
  }
  if (statics.size() > kMaxStaticsPerOpen) {
    return absl::InvalidArgumentError(absl::StrCat(
        "statics: ", statics.size(), " declared, at most ", kMaxStaticsPerOpen));
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

// Runs `work`; an exception becomes a status and a log line instead of
// ending the daemon (a start allocates, and runs off any RPC's guard).
template <typename Work>
absl::Status Guarded(const Work& work) {
  try {
    work();
    return absl::OkStatus();
  } catch (...) {
    return ExceptionStatus("opening the library");
  }
}

// The tighter of the daemon's limit and the permission's (0 = none).
uint32_t Tighter(uint32_t daemon, uint32_t permission) {
  return permission != 0 && permission < daemon ? permission : daemon;
}

}  // namespace

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

absl::StatusOr<std::unique_ptr<SessionManager::OpenPlan>> SessionManager::PlanOpen(
    const v1::OpenLibraryRequest& request, const Caller& caller, absl::Time deadline) {
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
  auto plan = std::make_unique<OpenPlan>();
  uint64_t& serial = plan->serial;
  v1::Permission& permission = plan->permission;
  // One per worker of the pool, held by the library once it is open.
  std::vector<PrincipalQuota::Reservation>& workers = plan->workers;
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
    ASSIGN_OR_RETURN(std::vector<NameToResolve> names,
                     Library::NamesToResolve(path, request.symbols(), request.statics(),
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
    const size_t opening = static_cast<size_t>(session->opening->load());
    if (session->libraries.size() + opening >= max_libraries) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "this session already has ", session->libraries.size(), " libraries open",
          opening == 0 ? "" : absl::StrCat(" and ", opening, " being opened"),
          ", the limit is ", max_libraries));
    }
    plan->opening = OpeningSlot(session->opening);
    // Limits.max_workers and the principal's max_workers: one per worker
    // of the pool.
    for (uint32_t i = 0; i < pool_size; ++i) {
      ASSIGN_OR_RETURN(PrincipalQuota::Reservation one, Reserve(caller, Resource::kWorkers));
      workers.push_back(std::move(one));
    }
  }
  WorkerSpec& spec = plan->spec;
  spec.launcher = launcher_;
  spec.profile = permission.confinement_profile();
  spec.required_layers = policy->required_layers();
  spec.owner = absl::StrCat("session ", SessionField(serial));
  spec.pool_size = static_cast<int>(pool_size);
  spec.starter = restarter_.get();
  spec.share = caller.limits_holder;
  // Every open is bounded (a constructor may never return): the client's
  // deadline, capped by the policy's; so is every restart.
  spec.max_start = absl::Milliseconds(limits.max_open_millis());
  plan->deadline = deadline;  // the cap applies once the start begins (StartOpen)
  const v1::PermissionLibrary* entry = ffibroker::FindLibrary(permission, path);
  spec.allow_dependency_symbols = entry != nullptr && entry->allow_dependency_symbols();
  if (entry != nullptr) plan->sha256 = entry->sha256();
  plan->max_call = absl::Milliseconds(
      Tighter(limits.max_call_millis(), permission.limits().max_call_millis()));
  plan->request = request;
  plan->caller = caller;
  plan->path = std::move(path);
  plan->classes = std::move(classes);
  plan->token = std::move(token);
  return plan;
}

void SessionManager::OpenLibrary(const v1::OpenLibraryRequest& request, const Caller& caller,
                                 absl::Time deadline, Reply<v1::OpenLibraryResponse> done,
                                 std::function<bool()> cancelled) {
  absl::StatusOr<std::unique_ptr<OpenPlan>> plan = PlanOpen(request, caller, deadline);
  if (!plan.ok()) return done(plan.status());
  (*plan)->cancelled = std::move(cancelled);
  // The task is dropped unrun if the principal has too many waiting: the
  // answer must not go with it.
  auto answer = std::make_shared<Reply<v1::OpenLibraryResponse>>(std::move(done));
  const std::string share = caller.limits_holder;
  auto task = [this, plan = *std::move(plan), answer]() mutable {
    absl::Status thrown = Guarded([&] {
      StartOpen(std::move(plan), [answer](absl::StatusOr<v1::OpenLibraryResponse> response) {
        (*answer)(std::move(response));
      });
    });
    // The answer runs once: DispatchAsync drops a second one.
    if (!thrown.ok()) (*answer)(thrown);
  };
  if (!starter_->Submit(share, std::move(task))) {
    (*answer)(absl::ResourceExhaustedError(absl::StrCat(
        "OpenLibrary: principal '", share, "' already has ", Executor::kMaxWaitingPerPrincipal,
        " worker starts waiting for its share of the daemon's start threads "
        "(--threads-per-principal ", starter_->per_principal(), ")")));
  }
}

void SessionManager::StartOpen(std::unique_ptr<OpenPlan> plan,
                               Reply<v1::OpenLibraryResponse> done) {
  // What reaches the client is decided, and the plan (its reservations)
  // and any library it started are gone, before the answer finishes the
  // RPC: once the last RPC is finished the daemon may be torn down.
  auto finish = [this](std::unique_ptr<OpenPlan> plan,
                       absl::StatusOr<std::shared_ptr<Library>> opened,
                       Reply<v1::OpenLibraryResponse>& done) {
    absl::StatusOr<v1::OpenLibraryResponse> response = absl::UnknownError("");
    absl::Status thrown = Guarded([&] { response = FinishOpen(*plan, std::move(opened)); });
    if (!thrown.ok()) response = thrown;
    plan.reset();
    done(std::move(response));
  };
  // A principal's starts share its threads of the pool: this one may have
  // waited for earlier ones, within the client's deadline. The policy's
  // cap on the open itself runs from here.
  const absl::Time now = now_();
  if (now >= plan->deadline) {
    return finish(std::move(plan),
                  absl::DeadlineExceededError(absl::StrCat(
                      "the deadline passed while the open waited for this principal's earlier "
                      "worker starts (--threads-per-principal ", starter_->per_principal(), ")")),
                  done);
  }
  // Nobody waits for an open the client gave up while it was queued: its
  // worker is not started (a client cannot queue starts and leave).
  if (plan->cancelled != nullptr && plan->cancelled()) {
    return finish(std::move(plan),
                  absl::CancelledError("the client cancelled the open before its worker started"),
                  done);
  }
  const absl::Duration max_open = plan->spec.max_start;
  plan->capped = now + max_open < plan->deadline;
  plan->deadline = std::min(plan->deadline, now + max_open);
  std::string path = plan->path;
  if (!plan->sha256.empty()) {
    absl::StatusOr<std::string> copy = pins_->Materialize(plan->path, plan->sha256);
    if (!copy.ok()) return finish(std::move(plan), copy.status(), done);
    path = *std::move(copy);
  }
  OpenPlan* raw = plan.get();
  Library::Open(std::move(path), raw->request.symbols(), raw->request.statics(), raw->classes,
                raw->spec, raw->deadline,
                [finish, plan = std::move(plan), done = std::move(done)](
                    absl::StatusOr<std::shared_ptr<Library>> opened) mutable {
                  finish(std::move(plan), std::move(opened), done);
                });
}

absl::StatusOr<v1::OpenLibraryResponse> SessionManager::FinishOpen(
    OpenPlan& plan, absl::StatusOr<std::shared_ptr<Library>> opened) {
  const v1::OpenLibraryRequest& request = plan.request;
  const Caller& caller = plan.caller;
  const std::string& path = plan.path;
  const uint64_t serial = plan.serial;
  const bool capped = plan.capped;
  const absl::Duration max_open = plan.spec.max_start;
  const WorkerSpec& spec = plan.spec;
  std::optional<v1::TokenClaims>& token = plan.token;
  std::vector<PrincipalQuota::Reservation>& workers = plan.workers;
  if (!opened.ok() && capped && absl::IsDeadlineExceeded(opened.status())) {
    opened = absl::DeadlineExceededError(absl::StrCat(
        opened.status().message(), " (opening may take at most ",
        absl::FormatDuration(max_open), ": limits.max_open_millis)"));
  }
  absl::MutexLock lock(&mu_);
  plan.opening.Release();  // the library is open now, or never will be
  if (!opened.ok()) {
    LOG_EVENT(LogLevel::kInfo,
              LogFields().Event("open_library_failed").Principal(caller.principal)
                  .Session(serial).Library(path),
              "session s%d could not open %s: %s", serial, path, StatusText(opened.status()));
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
  // Complete before it is inserted: nothing may find a handle without its
  // library.
  Handle h;
  h.library = HoldWorkers(*std::move(opened), std::move(workers));
  h.token = std::move(token);
  h.max_call = plan.max_call;
  h.audit_calls = audit_->log_calls();
  (*session)->libraries.emplace(handle, std::move(h));
  return response;
}

void SessionManager::CloseLibrary(const v1::CloseLibraryRequest& request, const Caller& caller,
                                  Reply<v1::CloseLibraryResponse> done) {
  std::shared_ptr<Library> lib;
  uint64_t serial = 0;
  absl::Status found;
  {
    absl::MutexLock lock(&mu_);
    absl::StatusOr<Session*> session = FindLocked(request.session_id(), caller);
    found = session.status();
    if (found.ok()) {
      auto it = (*session)->libraries.find(request.library_handle());
      if (it == (*session)->libraries.end()) {
        found = WithReason(absl::NotFoundError(absl::StrCat(
            "library handle ", request.library_handle(), " is not open in this session")),
            "LIBRARY_NOT_OPEN");
      } else {
        lib = std::move(it->second.library);
        *it->second.open = false;
        (*session)->libraries.erase(it);
        serial = (*session)->serial;
      }
    }
  }
  if (!found.ok()) return done(found);  // answered outside the lock
  ReleaseInstances(serial, request.library_handle(), {{request.library_handle(), lib}},
                   "was released when its library was closed", ReleaseDeadline(),
                   [lib, done = std::move(done)]() mutable {
                     lib->Stop();
                     lib.reset();
                     done(v1::CloseLibraryResponse());
                   });
}

}  // namespace ffibroker
