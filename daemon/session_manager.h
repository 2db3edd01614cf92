// SessionManager: the daemon's sessions and the libraries they opened.
//
// The business logic behind the gRPC service: every public RPC maps to one
// method here, which takes the request proto and returns a Status or the
// response proto. Everything a session opened is stopped when the session is
// closed, expires (idle timeout) or the daemon shuts down.
//
// Authorization: every method takes the authenticated Caller. A session
// belongs to the principal that created it (other principals get NOT_FOUND,
// as for an unknown id) and holds a snapshot of that principal's permission
// taken at creation; RevokePermissions drops it for good. Opening a library
// needs that permission or a valid token (request.token); calling a library
// already open needs nothing but its handle, which is bound to its session.
// A handle opened with a token is also bound to the token: every operation
// on it (calls, instance and static operations; see Authorize) re-checks
// revocation and expiry and takes one call from its quota, and every one
// runs under the max_call_millis of the permission that opened it.
//
// Limits: what each principal holds at once (sessions, workers, calls in
// flight, instances, classes) is counted by PrincipalQuota reservations,
// held by what they count; see principal_quota.h.
//
// Thread-safety: all methods are thread-safe. Library calls run outside the
// manager's lock, so sessions never wait on each other's calls.
//
// One concept per file: session_manager.cc the session table (create,
// find, expire, close, revoke); session_open.cc opening and closing
// libraries (what a session may open); session_authorize.cc the
// authorization of every operation on an open library or instance;
// session_calls.cc calls and batches; session_instances.cc classes,
// instances and statics; session_status.cc GetStatus. The worker protocol
// is not spoken here: Library (library.h) turns instance and static
// operations into worker messages.
//
//   SessionManager sessions(&policies, &tokens, &audit, &pins, worker_options);
//   ASSIGN_OR_RETURN(v1::CreateSessionResponse s, sessions.CreateSession({}, caller));
#ifndef FFIBROKER_DAEMON_SESSION_MANAGER_H_
#define FFIBROKER_DAEMON_SESSION_MANAGER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include <optional>

#include "daemon/audit_log.h"
#include "daemon/executor.h"
#include "daemon/identity.h"
#include "common/type_table.h"
#include "daemon/instance_table.h"
#include "daemon/library.h"
#include "daemon/pinned_library.h"
#include "daemon/policy_holder.h"
#include "daemon/principal_quota.h"
#include "daemon/token_authority.h"
#include "daemon/worker_launcher.h"
#include "ffibroker/v1/broker.pb.h"

namespace ffibroker {

class SessionManager {
 public:
  // Everything passed is borrowed and must outlive the manager. Worker
  // starts (opens, restarts, status probes) run on `start_threads`
  // threads, at most `start_share` of them for one principal at a time
  // (--threads and --threads-per-principal). `now` is the clock (a seam
  // for tests).
  SessionManager(const PolicyHolder* policies, TokenAuthority* tokens,
                 AuditLog* audit, PinnedLibraries* pins, WorkerLauncher* launcher,
                 int start_threads, int start_share,
                 std::function<absl::Time()> now = absl::Now);
  ~SessionManager();  // stops every library

  absl::StatusOr<v1::CreateSessionResponse> CreateSession(
      const v1::CreateSessionRequest& request, const Caller& caller);
  // Closing a session or a library releases its instances (their
  // destructors, all sent at once, bounded together by
  // limits.max_release_millis) without waiting for them: `done` runs once
  // the last destructor answered, on the watcher's thread, or at once.
  template <typename Response>
  using Reply = absl::AnyInvocable<void(absl::StatusOr<Response>)>;
  void CloseSession(const v1::CloseSessionRequest& request, const Caller& caller,
                    Reply<v1::CloseSessionResponse> done);
  // PERMISSION_DENIED if neither the session's permission nor the token
  // allows the library and every name the worker will resolve
  // (NamesToResolve: functions, statics, destructors of owned results), or
  // a static is declared mut without WRITE_STATICS (AuthorizeOpen);
  // UNAUTHENTICATED / PERMISSION_DENIED for a bad, expired or revoked token.
  //
  // Asynchronous: the checks run on the caller's thread; the workers start
  // on the starter (within the principal's share of its threads; the
  // policy's max_open_millis runs from the start), so no RPC thread
  // waits for a start. `done` runs once, on the starter's thread, the
  // worker watcher's, or the caller's for an error found first.
  // `cancelled` (if set) tells whether the client has gone: an open it
  // gave up while queued is answered CANCELLED and starts no worker.
  void OpenLibrary(const v1::OpenLibraryRequest& request, const Caller& caller,
                   absl::Time deadline, Reply<v1::OpenLibraryResponse> done,
                   std::function<bool()> cancelled = nullptr);
  void CloseLibrary(const v1::CloseLibraryRequest& request, const Caller& caller,
                    Reply<v1::CloseLibraryResponse> done);
  // `deadline` is the client's; the permission's max_call_millis caps it.
  // Asynchronous: `done` runs once, with the response or the error, on the
  // worker watcher's thread (or on the caller's for an error found before
  // anything was sent). `request` need only live until Call returns.
  // `callbacks`: for a call on a CallStream, the stream's callbacks (and,
  // for a call sent by a callback's handler, where it runs).
  void Call(const v1::CallRequest& request, const Caller& caller, absl::Time deadline,
            Library::CallDone done, CallbackContext callbacks = {});
  // Registering a callback on a stream of session `id` (docs/callbacks.md):
  // its signature resolved against the session's classes, and the check
  // that what creates it still allows CALLBACKS, run again every time the
  // callback is passed. With request.token: the token (verified now) must
  // allow CALLBACKS, and `allowed` then fails once it is revoked or
  // expired; without: the session's permission must allow it, and
  // `allowed` fails once it is revoked. NOT_FOUND for an unknown session,
  // INVALID_ARGUMENT for a bad signature, PERMISSION_DENIED /
  // UNAUTHENTICATED as for tokens.
  struct CallbackGrant {
    ResolvedSignature signature;
    std::function<absl::Status()> allowed;
  };
  absl::StatusOr<CallbackGrant> AuthorizeCallback(const std::string& id, const Caller& caller,
                                                  const v1::RegisterCallback& request);
  // Runs a batch (Library::CallBatch) after one authorization: a token's
  // quota is charged one call per call of the batch (all or none), and at
  // most limits.max_batch_calls calls are accepted (RESOURCE_EXHAUSTED).
  void CallBatch(const v1::CallBatchRequest& request, const Caller& caller, absl::Time deadline,
                 Library::BatchDone done);
  // How many calls `caller` may have in flight at once (its
  // max_calls_in_flight): a CallStream reads no further request while it
  // has that many running, so pipelining waits instead of failing.
  uint32_t CallsInFlightLimit(const Caller& caller) const;
  // Drops the session's permission (irreversible; idempotent).
  absl::StatusOr<v1::RevokePermissionsResponse> RevokePermissions(
      const v1::RevokePermissionsRequest& request, const Caller& caller);

  // What the token service needs to know about a session.
  struct SessionView {
    uint64_t serial;
    std::string principal;
    std::optional<v1::Permission> permission;  // nullopt once revoked
  };
  // NOT_FOUND for an unknown session or one of another principal.
  absl::StatusOr<SessionView> View(const std::string& session_id, const Caller& caller);

  // Classes and instances (session_instances.cc; see
  // docs/classes.md). Instances live in a library's worker; their handles
  // are checked against the InstanceTable before anything reaches it.
  absl::StatusOr<v1::RegisterClassResponse> RegisterClass(
      const v1::RegisterClassRequest& request, const Caller& caller);
  // The names of the session's registered classes (what declarations given
  // as text may name); NOT_FOUND as View.
  absl::StatusOr<std::set<std::string>> ClassNames(const std::string& session_id,
                                                   const Caller& caller);
  // Instance and static operations never wait for a worker: each is
  // authorized and validated on the caller's thread (the token's charge on
  // the journal thread when it writes the journal, as for calls) and sent;
  // `done` runs once, on the worker watcher's thread (or on the thread that
  // found an error before anything was sent, or a restart thread's after
  // a worker start). `request` need only live until the method returns.
  void NewInstance(const v1::NewInstanceRequest& request, const Caller& caller,
                   absl::Time deadline, Reply<v1::NewInstanceResponse> done);
  void ReadFields(const v1::ReadFieldsRequest& request, const Caller& caller,
                  absl::Time deadline, Reply<v1::ReadFieldsResponse> done);
  void WriteFields(const v1::WriteFieldsRequest& request, const Caller& caller,
                   absl::Time deadline, Reply<v1::WriteFieldsResponse> done);
  void FreeInstance(const v1::FreeInstanceRequest& request, const Caller& caller,
                    absl::Time deadline, Reply<v1::FreeInstanceResponse> done);
  void ReadStatic(const v1::ReadStaticRequest& request, const Caller& caller,
                  absl::Time deadline, Reply<v1::ReadStaticResponse> done);
  void WriteStatic(const v1::WriteStaticRequest& request, const Caller& caller,
                   absl::Time deadline, Reply<v1::WriteStaticResponse> done);

  // The profiles, required layers, worker count, and the layers of a probe
  // worker started now under the default profile.
  // Asynchronous: the probe worker starts on a thread of its own, bounded
  // by kStatusProbeTimeout from its start; a request that comes while a
  // probe runs waits for it (at most kMaxStatusWaiting,
  // kMaxStatusWaitingPerPrincipal of one limits holder), so one probe runs
  // at a time. `done` runs once, on the probe's thread or the caller's.
  void GetStatus(const Caller& caller, Reply<v1::GetStatusResponse> done);
  static constexpr size_t kMaxStatusWaiting = 64;
  static constexpr size_t kMaxStatusWaitingPerPrincipal = 4;
  static constexpr absl::Duration kStatusProbeTimeout = absl::Seconds(10);

  // Ends sessions idle past their timeout; returns how many ended. Their
  // release (destructors, then stopping the workers) runs on the manager's
  // releaser thread, never on the caller's (the daemon's signal thread),
  // bounded as a whole by limits.max_release_millis.
  int ExpireIdleSessions();
  // What every principal holds now (sessions, workers, ...), for metrics.
  const PrincipalQuota& quota() const { return quota_; }
  // An answer of `bytes` (serialized) for the principal `caller` (its
  // limits_holder), held until the client has read it: its share of the
  // principal's max_unread_answers_mib. RESOURCE_EXHAUSTED saying that the
  // operation ran but its answer is not sent, if it does not fit.
  absl::StatusOr<PrincipalQuota::Reservation> ReserveAnswer(const Caller& caller, size_t bytes);
  // One open CallStream of `caller`'s principal, held by the stream until
  // it ends: RESOURCE_EXHAUSTED naming max_streams if it has them all.
  absl::StatusOr<PrincipalQuota::Reservation> ReserveStream(const Caller& caller) {
    return Reserve(caller, Resource::kStreams);
  }
  // Ends every session (stops every worker). Destructors of instances left
  // behind run until `release_deadline` at the latest (all together); then
  // the workers are killed. New requests still work.
  void CloseAll(absl::Time release_deadline);

 private:
  struct Handle {
    // shared: a call in flight keeps its library alive after CloseLibrary.
    std::shared_ptr<Library> library;
    std::optional<v1::TokenClaims> token;  // set if a token opened it
    absl::Duration max_call;                // from the permission that opened it
    bool audit_calls = false;
    // False once the library (or its session) is closed: an instance
    // result that arrives later is not kept (see AddInstance). Read and
    // written under mu_ only.
    std::shared_ptr<bool> open = std::make_shared<bool>(true);
  };
  struct Session {
    uint64_t serial;  // shown in logs instead of the secret id
    std::string principal;
    std::optional<v1::Permission> permission;  // nullopt once revoked
    absl::Duration idle_timeout;
    absl::Time last_used;
    uint64_t next_handle = 1;
    std::map<uint64_t, Handle> libraries;
    ClassTable classes;  // registered classes, append-only
    // Opens that passed their checks and are not open (or failed) yet:
    // they count in max_libraries_per_session.
    std::shared_ptr<std::atomic<int>> opening = std::make_shared<std::atomic<int>>(0);
    // Operations on its libraries running now (Authorized::running holds
    // one): a session is not idle while one runs, however long it takes.
    std::shared_ptr<std::atomic<int>> running = std::make_shared<std::atomic<int>>(0);
    PrincipalQuota::Reservation quota;  // this session, in its creator's limits
    std::vector<PrincipalQuota::Reservation> class_quota;  // one per class
  };

  // One client operation on a library handle, authorized.
  struct Authorized {
    std::shared_ptr<Library> library;
    uint64_t serial = 0;   // the session's
    absl::Time deadline;   // the client's, capped by the handle's max_call
    std::string token_id;  // of the token that opened the handle, or empty
    bool audit_calls = false;
    // One of the caller's calls in flight, held while the operation runs.
    PrincipalQuota::Reservation in_flight;
    // The instance handle the operation may make (see NewHandle).
    PrincipalQuota::Reservation instance;
    // For a batch: one per call whose result is an instance handle.
    std::vector<PrincipalQuota::Reservation> batch_instances;
    // Set when Authorize left the token's charge to ChargeToken (see
    // TokenCharge::kDeferIfJournaled): the token and the calls to take.
    std::optional<v1::TokenClaims> deferred_token;
    uint64_t deferred_calls = 0;
    std::shared_ptr<bool> open;  // the handle's (Handle::open)
    // Counts in its session's Session::running while the operation runs.
    std::shared_ptr<void> running;
  };
  // When Authorize takes a call from the quota of the token that opened
  // the library. kDeferIfJournaled: not if that writes the token journal
  // (an fsync); the caller then runs ChargeToken off the gRPC thread.
  enum class TokenCharge { kNow, kDeferIfJournaled };
  // The one authorization step of every client operation on an open
  // library (Call, NewInstance, ReadFields, WriteFields, FreeInstance,
  // ReadStatic, WriteStatic): finds library `handle` of session `id` owned
  // by `caller` (NOT_FOUND otherwise); if a token opened it, re-checks the
  // token now and takes one call from its quota (TokenAuthority::
  // ConsumeCall: PERMISSION_DENIED revoked, UNAUTHENTICATED expired,
  // RESOURCE_EXHAUSTED quota used up; audited as deny_call naming
  // `operation` and `detail`); and caps `deadline` by the max_call_millis
  // of the permission that opened the handle. Daemon-initiated releases
  // (session or library close, expiry) do not go through here.
  // `new_handle` says whether the operation makes an instance handle
  // (NewInstance; a Call whose declared result for symbol `detail` is an
  // instance): its slot in the caller's instance limit is reserved first
  // (Authorized::instance), before the token's quota is touched.
  // For a `batch`, every call of it counts: one call of the token's quota
  // each, and one instance slot for each whose result is an instance.
  enum class NewHandle { kNo, kYes, kIfResultIsInstance };
  absl::StatusOr<Authorized> Authorize(const std::string& id, const Caller& caller,
                                       uint64_t handle, absl::string_view operation,
                                       absl::string_view detail, absl::Time deadline,
                                       NewHandle new_handle = NewHandle::kNo,
                                       const v1::CallBatchRequest* batch = nullptr,
                                       TokenCharge charge = TokenCharge::kNow);
  // The token check of Authorize: re-checks `token` (revocation, expiry)
  // and takes `calls` from its quota; a refusal is audited as deny_call
  // and names library `handle`.
  absl::Status ChargeToken(const Caller& caller, uint64_t serial, uint64_t handle,
                           const v1::TokenClaims& token, uint64_t calls,
                           absl::string_view operation, absl::string_view detail);
  // Takes op's deferred token charge on journal_, so that no gRPC thread
  // waits for the journal's fsync, then runs `next` there with its outcome.
  void ChargeThen(std::shared_ptr<Authorized> op, const Caller& caller, uint64_t handle,
                  std::string operation, std::string detail,
                  absl::AnyInvocable<void(absl::Status)> next);
  // The audit record of one call (when the permission audits calls).
  void AuditCall(const Caller& caller, const Authorized& op, const std::string& symbol);
  // Call and CallBatch once authorized and charged: audit, send, finish.
  void StartCall(const v1::CallRequest& request, const Caller& caller,
                 std::shared_ptr<Authorized> op, Library::CallDone done,
                 CallbackContext callbacks);
  void StartBatch(const v1::CallBatchRequest& request, const Caller& caller,
                  std::shared_ptr<Authorized> op, Library::BatchDone done);
  // Runs `next` once `op`'s token charge is taken: at once, or on journal_
  // when Authorize deferred it (TokenCharge::kDeferIfJournaled). A failed
  // authorization or charge goes to `next` as its status.
  void WhenCharged(absl::StatusOr<Authorized> op, const Caller& caller, uint64_t handle,
                   std::string operation, std::string detail,
                   absl::AnyInvocable<void(absl::StatusOr<std::shared_ptr<Authorized>>)> next);
  // Authorize an operation on library `handle` (a journaled token charge
  // deferred), then WhenCharged: `next` gets the held authorization.
  void WithLibrary(const std::string& id, const Caller& caller, uint64_t handle,
                   std::string operation, std::string detail, absl::Time deadline,
                   NewHandle new_handle,
                   absl::AnyInvocable<void(absl::StatusOr<std::shared_ptr<Authorized>>)> next);
  // The record of instance `handle` owned by session `id` (NOT_FOUND, one
  // message, for any handle the session does not own), and the
  // authorization of its library (Authorize; a journaled token charge is
  // left to WhenCharged).
  absl::StatusOr<std::pair<InstanceTable::Record, Authorized>> AuthorizeInstance(
      const std::string& id, const Caller& caller, uint64_t handle,
      absl::string_view operation, absl::Time deadline);
  // An instance operation, authorized and charged: the instance's record
  // and the authorization, held until the worker answers.
  struct HeldInstance {
    InstanceTable::Record record;
    std::shared_ptr<Authorized> authorized;
  };
  // AuthorizeInstance, then WhenCharged: `next` gets the held operation.
  void WithInstance(const std::string& id, const Caller& caller, uint64_t handle,
                    absl::string_view operation, absl::Time deadline,
                    absl::AnyInvocable<void(absl::StatusOr<std::shared_ptr<HeldInstance>>)> next);
  // Drops instance `handle` from the table if `status` says its worker is
  // gone (FAILED_PRECONDITION: stale).
  void ForgetIfStale(const HeldInstance& op, uint64_t handle, const absl::Status& status);
  // What NewInstance creates: the instance bytes of class `request.class_name()`
  // (set in `*klass`) with the request's fields, all validated.
  absl::StatusOr<std::string> NewInstanceBytes(const v1::NewInstanceRequest& request,
                                               const Caller& caller, const Library& lib,
                                               TypeRef* klass);
  // The `wanted` fields (all if empty) of instance `handle`'s bytes `data`;
  // a value the library left invalid is DATA_LOSS.
  static absl::StatusOr<v1::ReadFieldsResponse> FieldsOf(const TypeDesc& klass, uint64_t handle,
                                                         const std::string& data,
                                                         const std::set<std::string>& wanted);
  // The spans WriteFields writes for `fields`, every one validated first.
  static absl::StatusOr<std::vector<Library::Span>> FieldSpans(const TypeDesc& klass,
                                                               const v1::StructValue& fields);
  // How calls of library `library` in session `serial` use the instances.
  // The handles the call makes take the `reserved` slots (reserved before
  // the call), one each.
  InstanceHooks ContextFor(uint64_t serial, uint64_t library, std::shared_ptr<bool> open,
                           std::vector<PrincipalQuota::Reservation> reserved = {});
  // Adds an instance made by the library (a result, or NewInstance) to the
  // table, holding `slot`; returns its handle. If library handle `open`
  // was closed meanwhile, the close has released its instances already:
  // the handle is released at once (its uses say so) and holds no slot.
  uint64_t AddInstance(InstanceTable::Record record, PrincipalQuota::Reservation slot,
                       const std::shared_ptr<bool>& open);
  // Marks every library of `session` closed (Handle::open).
  static void MarkClosed(Session& session);
  // Invalidates the instances of a session (library == 0) or one of its
  // libraries (in `libraries`) and sends the destructors of owned library
  // results, all at once, without waiting. `deadline` bounds the whole
  // release: past it the remaining destructors of a library are skipped
  // and its worker is killed. `then` runs once every destructor answered
  // (on the watcher's thread, or the caller's if none was sent).
  void ReleaseInstances(uint64_t serial, uint64_t library,
                        std::map<uint64_t, std::shared_ptr<Library>> libraries,
                        const std::string& reason, absl::Time deadline,
                        absl::AnyInvocable<void()> then);
  // Waits until every release ReleaseInstances started has finished.
  void AwaitReleases();
  // The deadline of a session release starting now.
  absl::Time ReleaseDeadline() const;
  // The libraries of `session` by handle.
  static std::map<uint64_t, std::shared_ptr<Library>> LibrariesOf(const Session& session);
  // One unit of `resource` in the limits of `caller` (and the daemon's).
  absl::StatusOr<PrincipalQuota::Reservation> Reserve(const Caller& caller, Resource resource);
  // `library` as the session holds it: with `workers` (its reservations
  // in the workers limit, one per worker of its pool), released after the
  // library, and so its workers, is destroyed.
  static std::shared_ptr<Library> HoldWorkers(std::shared_ptr<Library> library,
                                              std::vector<PrincipalQuota::Reservation> workers);

  // One of a session's opens in progress (Session::opening), released
  // once (or when it is destroyed).
  class OpeningSlot {
   public:
    OpeningSlot() = default;
    explicit OpeningSlot(std::shared_ptr<std::atomic<int>> count) : count_(std::move(count)) {
      ++*count_;
    }
    OpeningSlot(OpeningSlot&& other) noexcept : count_(std::move(other.count_)) {}
    OpeningSlot& operator=(OpeningSlot&& other) noexcept {
      Release();
      count_ = std::move(other.count_);
      return *this;
    }
    ~OpeningSlot() { Release(); }
    void Release() {
      if (count_ != nullptr) --*count_;
      count_.reset();
    }

   private:
    std::shared_ptr<std::atomic<int>> count_;
  };
  // An open that passed its checks (OpenLibrary), on its way to the
  // starter: what starting it and recording it in the session need.
  struct OpenPlan {
    v1::OpenLibraryRequest request;
    Caller caller;
    std::string path;
    uint64_t serial = 0;
    ClassTable classes;
    std::optional<v1::TokenClaims> token;
    v1::Permission permission;
    std::vector<PrincipalQuota::Reservation> workers;
    WorkerSpec spec;
    absl::Time deadline;      // the client's; StartOpen caps it (spec.max_start)
    absl::Duration max_call;  // the tighter of the policy's and the permission's
    bool capped = false;      // spec.max_start set `deadline` (StartOpen)
    std::string sha256;       // the permission's pin, if any
    OpeningSlot opening;      // in the session's max_libraries_per_session
    std::function<bool()> cancelled;  // the client has gone (OpenLibrary)
  };
  // The checks of OpenLibrary: what the session's permission or the token
  // allows, and the limits.
  absl::StatusOr<std::unique_ptr<OpenPlan>> PlanOpen(const v1::OpenLibraryRequest& request,
                                                     const Caller& caller, absl::Time deadline);
  // On the starter: starts the workers (after materializing a pinned
  // library) and then records the library (FinishOpen).
  void StartOpen(std::unique_ptr<OpenPlan> plan, Reply<v1::OpenLibraryResponse> done);
  absl::StatusOr<v1::OpenLibraryResponse> FinishOpen(
      OpenPlan& plan, absl::StatusOr<std::shared_ptr<Library>> opened);

  // The session for `id` if it belongs to `caller`, touched; NOT_FOUND
  // otherwise.
  absl::StatusOr<Session*> FindLocked(const std::string& id, const Caller& caller)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stops the libraries of a removed session; returns how many.
  static uint32_t StopAll(Session& session);

  const PolicyHolder* const policies_;
  TokenAuthority* const tokens_;
  AuditLog* const audit_;
  PinnedLibraries* const pins_;
  WorkerLauncher* const launcher_;
  const std::function<absl::Time()> now_;

  // GetStatus: one probe worker at a time, and the requests waiting for it.
  struct StatusWaiter {
    std::string principal;
    std::string holder;  // Caller::limits_holder
    v1::GetStatusResponse response;  // all but the probe
    Reply<v1::GetStatusResponse> done;
  };
  // Answers every waiting GetStatus with the probe's outcome.
  void AnswerStatus(const absl::Status& probed, const v1::WorkerLayers& layers);
  absl::Mutex probe_mu_;
  bool probe_running_ ABSL_GUARDED_BY(probe_mu_) = false;
  std::vector<StatusWaiter> probe_waiting_ ABSL_GUARDED_BY(probe_mu_);
  // Declared before everything holding its reservations (outlives them).
  PrincipalQuota quota_;
  absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<Session>> sessions_ ABSL_GUARDED_BY(mu_);
  uint64_t next_serial_ ABSL_GUARDED_BY(mu_) = 1;
  InstanceTable instances_;  // thread-safe on its own
  // Releases started and not finished (AwaitReleases).
  absl::Mutex release_mu_;
  int releasing_ ABSL_GUARDED_BY(release_mu_) = 0;
  // Start workers, so no RPC thread waits for a start: `starter_` for
  // opens (a principal holds at most its share of the
  // threads, so one whose opens hang in library constructors delays only
  // its own), `restarter_` in place of dead ones (Library:
  // WorkerSpec.starter; a pool of its own, so hanging opens delay no
  // restart; one thread per principal at a time).
  std::unique_ptr<Executor> starter_;
  static constexpr int kRestarterThreads = 4;
  std::unique_ptr<Executor> restarter_;
  // The GetStatus probe: one at a time, behind nobody's opens.
  std::unique_ptr<Executor> prober_;
  // Runs the release of expired sessions. Last member: destroyed (draining
  // its queue) before everything its tasks use.
  std::unique_ptr<Executor> releaser_;
  // One thread: token quota charges that write the journal (fsync), so no
  // gRPC thread waits for the disk.
  std::unique_ptr<Executor> journal_;
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_SESSION_MANAGER_H_
