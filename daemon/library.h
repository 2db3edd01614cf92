// Library: one opened library and the pool of workers serving it.
//
// Holds the declared symbols (the contract every call is validated against)
// and its workers (one by default; a pool of N for a library whose calls
// share no state). Calls are asynchronous: Call validates and encodes the
// request on the caller's thread, sends it to a worker and returns; the
// worker's reply completes it on the WorkerWatcher's thread. Calls sent to
// one worker run in the order sent (pipelined); a pool spreads calls over
// its workers by how many each has outstanding, except that a call with an
// instance argument goes to the worker holding the instance.
//
// If a worker dies (crash, deadline, protocol violation) the calls it was
// running fail with the reason, and the next call starts a fresh worker in
// its place and reopens the library in it. If it died between calls (the
// WorkerWatcher sees it when it happens), the next call on its place says
// what happened (CallResponse.worker_notice). Starting a worker blocks, so
// it runs on WorkerSpec.starter, never on the calling thread.
//
// The worker protocol (worker::v1) stays inside this layer: callers speak
// of symbols, Values, instances (InstanceRef) and statics. library.cc holds
// opening and calls, library_pool.cc the pool, library_instances.cc the
// instance and static operations.
//
// Thread-safety: all methods are thread-safe. Stop() fails what is running.
//
//   Library::Open(path, symbols, statics, classes, spec, deadline, [](auto lib) {...});
//   lib->Call(request, deadline, instances, [](absl::StatusOr<v1::CallResponse> r) {...});
#ifndef FFIBROKER_DAEMON_LIBRARY_H_
#define FFIBROKER_DAEMON_LIBRARY_H_

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/resolved_names.h"
#include "common/type_table.h"
#include "daemon/call_codec.h"
#include "daemon/executor.h"
#include "daemon/worker_launcher.h"
#include "daemon/worker_process.h"
#include "ffibroker/v1/broker.pb.h"
#include "ffibroker/worker/v1/worker.pb.h"

namespace ffibroker {

// How a library's workers are started and confined.
struct WorkerSpec {
  WorkerLauncher* launcher = nullptr;  // borrowed; outlives the library
  std::string profile = "strict";      // confinement profile name
  std::vector<v1::Layer> required_layers;  // from the policy at open time
  // The permission's PermissionLibrary.allow_dependency_symbols: may a
  // dependency of the library define the names the worker resolves?
  bool allow_dependency_symbols = false;
  std::string owner;  // who opened it, for logs ("session s3")
  int pool_size = 1;  // workers serving the library (1..kMaxPoolSize)
  // Runs worker starts after a death (borrowed; outlives the library).
  // Null: they run on the calling thread.
  Executor* starter = nullptr;
  // Whose share of the starter's threads those starts use (the opener's
  // limits holder; Executor).
  std::string share;
  // The longest a worker start may take (limits.max_open_millis).
  absl::Duration max_start = absl::Seconds(10);
};

class Library : public std::enable_shared_from_this<Library> {
 public:
  using CallDone = absl::AnyInvocable<void(absl::StatusOr<v1::CallResponse>)>;
  using BatchDone = absl::AnyInvocable<void(absl::StatusOr<v1::CallBatchResponse>)>;

  // Starts spec.pool_size workers that load `path` (absolute, already
  // allowed by policy) and resolve `symbols` and `statics` (already
  // resolved against `classes`, the session's classes at open time).
  // NOT_FOUND for a missing symbol, FAILED_PRECONDITION if the loader
  // refused the file, UNAVAILABLE if a worker could not start or died while
  // loading. The worker resolves exactly Library::NamesToResolve(...),
  // which the caller has authorized. Starting the workers blocks the
  // calling thread (run Open on a thread for starts, like spec.starter's);
  // asking the first worker which optional names it lacks does not: `done`
  // runs once, with the library or why it could not open, on this thread
  // or on the worker watcher's.
  using Opened = absl::AnyInvocable<void(absl::StatusOr<std::shared_ptr<Library>>)>;
  static void Open(std::string path,
                   const google::protobuf::RepeatedPtrField<v1::SymbolDeclaration>& symbols,
                   const google::protobuf::RepeatedPtrField<v1::StaticDeclaration>& statics,
                   const ClassTable& classes, WorkerSpec spec, absl::Time deadline,
                   Opened done);

  // Every name a worker opening `path` with these declarations resolves
  // (common/resolved_names.h: functions, statics, destructors of owned
  // results), for the caller to authorize before Open. Errors as
  // NamesToResolve's.
  static absl::StatusOr<std::vector<NameToResolve>> NamesToResolve(
      const std::string& path,
      const google::protobuf::RepeatedPtrField<v1::SymbolDeclaration>& symbols,
      const google::protobuf::RepeatedPtrField<v1::StaticDeclaration>& statics,
      const ClassTable& classes);

  ~Library();  // kills the workers: what is outstanding fails

  // Validates `request` against the declared signature and runs it; `done`
  // runs once, on the watcher's thread (or on the caller's for an error
  // found before sending). INVALID_ARGUMENT / NOT_FOUND for bad input (the
  // worker never sees it); DEADLINE_EXCEEDED if the deadline passed (the
  // worker is killed); PERMISSION_DENIED naming the syscall if the library
  // made one its profile forbids; RESOURCE_EXHAUSTED if it ran out of
  // memory or CPU time; UNAVAILABLE if the worker died (naming the signal)
  // or broke the protocol; DATA_LOSS if the library returned an invalid
  // value (e.g. a bool that is neither 0 nor 1); FAILED_PRECONDITION for a
  // missing optional symbol or a stale instance.
  void Call(const v1::CallRequest& request, absl::Time deadline,
            const InstanceHooks& instances, CallDone done);

  // Runs `request.calls()` in order in one exchange with one worker (the
  // one holding their instances, if any). All calls are validated first:
  // if one is invalid, none runs (it carries its error, the others
  // ABORTED). A valid batch runs to the end; each call has its own result
  // and status. If the worker dies during the batch, every call fails with
  // the reason (those before the one that ended it may have run).
  void CallBatch(const v1::CallBatchRequest& request, absl::Time deadline,
                 const InstanceHooks& instances, BatchDone done);

  // Instance operations (library_instances.cc), each one exchange with
  // the worker holding the instance (`where`, from NewInstance or a call's
  // result). None blocks: `done` runs once, on the watcher's thread (on
  // the starter's when a worker had to be started first, or on the
  // caller's for an error found before sending). Errors as Call's;
  // FAILED_PRECONDITION if the instance's worker is gone (stale);
  // UNAVAILABLE if the worker answers with the wrong kind of reply (it is
  // killed) or the wrong size.
  template <typename T>
  using Done = absl::AnyInvocable<void(absl::StatusOr<T>)>;
  using StatusDone = absl::AnyInvocable<void(absl::Status)>;
  //
  // A new instance of `klass` (registered before the library was opened)
  // holding `init` (klass.size bytes), in the least busy worker.
  void NewInstance(const TypeDesc& klass, std::string init, absl::Time deadline,
                   Done<InstanceRef> done);
  // The `size` bytes of the instance at `where`.
  void ReadInstance(const InstanceRef& where, uint64_t size, absl::Time deadline,
                    Done<std::string> done);
  // Writes every span (bytes at an offset) into the instance at `where`, in
  // one exchange; the worker checks each against the instance's size.
  struct Span {
    uint64_t offset = 0;
    std::string data;
  };
  void WriteInstance(const InstanceRef& where, std::vector<Span> spans, absl::Time deadline,
                     StatusDone done);
  // Frees the instance at `where`; true if its destructor ran.
  void FreeInstance(const InstanceRef& where, absl::Time deadline, Done<bool> done);

  // True if `symbol` is declared and returns an instance handle (so a call
  // of it may create one).
  bool ReturnsInstance(const std::string& symbol) const;

  // Optional symbols and statics the library does not export.
  const std::vector<std::string>& missing() const { return missing_; }
  // The static named `name`: its index, type and mutability; NOT_FOUND if
  // not declared, FAILED_PRECONDITION if optional and missing.
  struct StaticInfo {
    int index;
    TypeRef type;
    bool is_mutable;
  };
  absl::StatusOr<StaticInfo> FindStatic(const std::string& name) const;
  // The type->size bytes of static `info` (from FindStatic), read in the
  // first worker; errors and threads as the instance operations'.
  void ReadStatic(const StaticInfo& info, absl::Time deadline, Done<std::string> done);
  // Writes `bytes` (info.type->size of them) into static `info`.
  void WriteStatic(const StaticInfo& info, std::string bytes, absl::Time deadline,
                   StatusDone done);

  // Kills the workers and refuses further calls (FAILED_PRECONDITION).
  void Stop();

  const std::string& path() const { return path_; }
  // How many of the session's classes the worker knows (those registered
  // before the library was opened).
  int class_count() const { return open_.classes_size(); }
  int pool_size() const { return spec_.pool_size; }
  // The pid of each live worker (0 for a place whose worker is gone).
  std::vector<pid_t> worker_pids() const;
  pid_t worker_pid() const { return worker_pids().front(); }
  // The layers in force in the first worker.
  v1::WorkerLayers layers() const;

 private:
  // One place in the pool.
  struct Slot {
    std::shared_ptr<WorkerProcess> worker;
    uint64_t generation = 0;  // of `worker`
    v1::WorkerLayers layers;
    // The last operation the worker completed ("'f'"), whether its end
    // was already reported to a caller, and what the next call on this
    // place says about a death between calls.
    std::string last_operation = "loading the library";
    bool end_reported = false;
    bool starting = false;  // a start is running on the starter
    // The start's waiters are being sent to its worker: requests that come
    // meanwhile queue behind them, so the worker gets them in order.
    bool draining = false;
    // Whether its worker takes requests: one whose end is known but not
    // yet handled still does (WorkerProcess::Submit holds them, and sends
    // them on after those it was sent before once its end is handled).
    bool TakesRequests() const { return worker != nullptr && worker->TakesRequests(); }
    // Whether the end of `worker` was handed out: the requests it never
    // started have come back to be sent again (its end hook ran).
    bool end_handed_out = false;
    // Replaced workers whose ends are not handed out yet. While there are
    // any, their requests are still coming back, and they go first: the
    // drain of a start waits for them (its outcome kept in `start_held`).
    int ends_returning = 0;
    std::optional<absl::Status> start_held;
    // Requests waiting for that start, in the order they first came to
    // the library (Waiter::order): each gets its outcome once.
    struct Waiter {
      uint64_t order;
      absl::AnyInvocable<void(absl::Status)> go;
    };
    std::vector<Waiter> waiting;
  };
  // What a call is sent with: the worker and its place.
  struct Target {
    std::shared_ptr<WorkerProcess> worker;
    int slot = 0;
    uint64_t generation = 0;
    std::string notice;  // a death between calls nobody was told of
  };

  Library(std::string path, worker::v1::Open open, WorkerSpec spec)
      : path_(std::move(path)), open_(std::move(open)), spec_(std::move(spec)) {}

  // The request that makes a worker load `path` with these declarations.
  static worker::v1::Open WorkerOpen(
      const std::string& path,
      const google::protobuf::RepeatedPtrField<v1::SymbolDeclaration>& symbols,
      const google::protobuf::RepeatedPtrField<v1::StaticDeclaration>& statics,
      const ClassTable& classes, const WorkerSpec& spec);
  // Runs one instance or static operation (worker::v1::InstanceNew, ...)
  // and checks that the reply is an InstanceResult. `generation` is the
  // worker generation the instance lives in, or 0 for "any worker" (a
  // worker is started first if none is live; statics use the first
  // worker). `done` gets the result and the generation that served it.
  using InstanceDone =
      absl::AnyInvocable<void(absl::StatusOr<worker::v1::InstanceResult>, uint64_t generation)>;
  void SubmitInstanceOp(worker::v1::DaemonToWorker request, uint64_t generation,
                        absl::Time deadline, InstanceDone done);

  // Starts a worker in place `slot` and loads the library in it; blocks.
  absl::Status StartWorker(int slot, absl::Time deadline);
  // Asks the first worker which optional symbols and statics it lacks (all
  // questions at once); `done` runs once, when every answer is in.
  void ProbeOptional(absl::Time deadline, absl::AnyInvocable<void(absl::Status)> done);
  // The worker a request goes to: the one of `generation` (0: the least
  // busy; -1 reads as slot 0). If its worker is gone, `*needs_start` is set
  // and the place to restart is returned in target->slot.
  absl::StatusOr<Target> Pick(uint64_t generation, bool first_slot, bool* needs_start,
                              bool waited_for_start);
  // Whether worker generation `generation` is alive in some place.
  bool LiveGeneration(uint64_t generation) const;
  // Records the end of a request on `target`: a completed `operation`, or a
  // failure reported to its caller.
  void Finished(const Target& target, bool ok, std::string operation);
  // Encodes the call of `symbol` with `args` into `*out`; the instances it
  // names must all live in one worker generation, returned in
  // `*generation` (0: none named).
  absl::Status Encode(const std::string& symbol,
                      const google::protobuf::RepeatedPtrField<v1::Value>& args,
                      const InstanceHooks& instances, worker::v1::Call* out,
                      uint64_t* generation, int* index,
                      std::vector<CallbackScope::Bound>* callbacks = nullptr) const;
  // Decodes the worker's `result` for the call `sent` of symbol `index`.
  // Sets `*violation` if the worker broke the protocol.
  absl::StatusOr<v1::CallResponse> Decode(int index, const worker::v1::Call& sent,
                                          const worker::v1::Result& result, uint64_t generation,
                                          const InstanceHooks& instances, bool* violation) const;
  // A call or batch in progress (library.cc), sent by SendCall/SendBatch,
  // and sent again by them if its worker ended before starting it
  // (SendAgain: kNotStartedReason, a few times, before its deadline).
  struct CallState;
  struct BatchState;
  struct InstanceOpState;  // library_instances.cc
  void SendCall(std::shared_ptr<CallState> state);
  void SendBatch(std::shared_ptr<BatchState> state);
  void SendInstanceOp(std::shared_ptr<InstanceOpState> state);
  static bool SendAgain(const absl::Status& status, int* attempts, absl::Time deadline);
  // Runs `send` on a worker for `generation` (the first worker if
  // `first_slot`), starting one on the starter first if needed; `fail`
  // gets the status if no worker can be had.
  // One start per place at a time: requests that need the place while it
  // starts wait for that start (Slot::waiting). `restarted`: this request
  // already waited for one (a second death fails it).
  // `order` (NextOrder, taken when the request first came) places it among
  // the requests waiting for a start.
  void WithWorker(uint64_t generation, bool first_slot, absl::Time deadline, uint64_t order,
                  absl::AnyInvocable<void(Target)> send,
                  absl::AnyInvocable<void(absl::Status)> fail, bool restarted = false);
  // Starts a worker in place `slot` on the starter (within the opener's
  // share of it), then Started. The start ends by `deadline` and at most
  // spec_.max_start after it begins (the wait in the queue is not counted).
  void RunStart(int slot, absl::Time deadline);
  // A start in place `slot` ended with `status`: its waiting requests go on
  // (Drain), once the worker it replaced has handed out its end.
  void Started(int slot, absl::Status status);
  // Sends the requests waiting in place `slot` on with `status`, in order,
  // and those that queue behind them meanwhile.
  void Drain(int slot, absl::Status status);
  // The end hook of worker `generation` of place `slot`.
  void EndHandedOut(int slot, uint64_t generation);
  uint64_t NextOrder() { return next_order_.fetch_add(1, std::memory_order_relaxed); }

  const std::string path_;
  const worker::v1::Open open_;           // the request that loads us
  const WorkerSpec spec_;
  std::map<std::string, int> symbol_index_;  // name -> index in open_
  std::vector<ResolvedSignature> signatures_;  // by symbol index
  std::vector<bool> capture_errno_;            // by symbol index
  std::vector<bool> symbol_missing_;           // by symbol index
  std::map<std::string, StaticInfo> statics_;
  std::vector<bool> static_missing_;           // by static index
  std::vector<std::string> missing_;

  mutable absl::Mutex mu_;
  std::vector<Slot> slots_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  // Incremented by every worker start; instances of gone ones are stale.
  uint64_t next_generation_ ABSL_GUARDED_BY(mu_) = 1;
  std::atomic<uint64_t> next_order_{1};  // NextOrder
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_LIBRARY_H_
