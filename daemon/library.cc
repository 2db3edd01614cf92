#include "daemon/library.h"

#include "absl/strings/str_cat.h"
#include "common/error_reason.h"
#include "common/grpc_status.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "common/types.h"
#include "common/log.h"
#include "common/value_codec.h"
#include "daemon/call_codec.h"

namespace ffibroker {

worker::v1::Open Library::WorkerOpen(
    const std::string& path,
    const google::protobuf::RepeatedPtrField<v1::SymbolDeclaration>& symbols,
    const google::protobuf::RepeatedPtrField<v1::StaticDeclaration>& statics,
    const ClassTable& classes, const WorkerSpec& spec) {
  worker::v1::Open open;
  open.set_path(path);
  for (const v1::ClassDefinition& def : classes.definitions()) *open.add_classes() = def;
  for (const v1::SymbolDeclaration& s : symbols) {
    worker::v1::Symbol* symbol = open.add_symbols();
    symbol->set_name(s.name());
    *symbol->mutable_signature() = s.signature();
    symbol->set_optional(s.optional());
  }
  for (const v1::StaticDeclaration& s : statics) {
    worker::v1::Symbol* symbol = open.add_statics();
    symbol->set_name(s.name());
    *symbol->mutable_signature()->mutable_result() = s.type();
    symbol->set_optional(s.optional());
  }
  open.set_allow_dependency_symbols(spec.allow_dependency_symbols);
  // Closures for callbacks, allocated before lockdown: every nesting level
  // may bind the most callbacks one call passes, plus the persistent ones.
  uint32_t most_per_call = 0;
  for (const v1::SymbolDeclaration& s : symbols) {
    uint32_t n = 0;
    for (const v1::Parameter& p : s.signature().params()) {
      n += p.type().type_case() == v1::Type::kCallback ? 1 : 0;
    }
    most_per_call = std::max(most_per_call, n);
  }
  if (most_per_call > 0) {
    open.set_callback_closures(most_per_call * (kMaxCallbackNesting + 1) +
                               kMaxPersistentCallbacksPerWorker);
  }
  return open;
}

absl::StatusOr<std::vector<NameToResolve>> Library::NamesToResolve(
    const std::string& path,
    const google::protobuf::RepeatedPtrField<v1::SymbolDeclaration>& symbols,
    const google::protobuf::RepeatedPtrField<v1::StaticDeclaration>& statics,
    const ClassTable& classes) {
  return ffibroker::NamesToResolve(WorkerOpen(path, symbols, statics, classes, WorkerSpec()),
                                   classes);
}

void Library::Open(std::string path,
                   const google::protobuf::RepeatedPtrField<v1::SymbolDeclaration>& symbols,
                   const google::protobuf::RepeatedPtrField<v1::StaticDeclaration>& statics,
                   const ClassTable& classes, WorkerSpec spec, absl::Time deadline,
                   Opened done) {
  if (spec.pool_size < 1 || spec.pool_size > static_cast<int>(kMaxPoolSize)) {
    return done(absl::InvalidArgumentError(
        absl::StrCat("pool size ", spec.pool_size, " is not in 1..", kMaxPoolSize)));
  }
  worker::v1::Open open = WorkerOpen(path, symbols, statics, classes, spec);
  std::vector<ResolvedSignature> signatures;
  for (const v1::SymbolDeclaration& s : symbols) {
    absl::StatusOr<ResolvedSignature> sig = ResolveSignature(s.signature(), classes);
    if (!sig.ok()) return done(sig.status());
    signatures.push_back(*std::move(sig));
  }
  std::map<std::string, StaticInfo> static_infos;
  for (int i = 0; i < statics.size(); ++i) {
    const v1::StaticDeclaration& s = statics[i];
    absl::StatusOr<TypeRef> type = classes.Resolve(s.type(), TypeUse::kStatic);
    if (!type.ok()) return done(type.status());
    static_infos[s.name()] = StaticInfo{i, *type, s.mutable_()};
  }
  std::shared_ptr<Library> lib(new Library(std::move(path), std::move(open), std::move(spec)));
  lib->signatures_ = std::move(signatures);
  lib->statics_ = std::move(static_infos);
  lib->symbol_missing_.assign(symbols.size(), false);
  lib->static_missing_.assign(statics.size(), false);
  for (int i = 0; i < lib->open_.symbols_size(); ++i) {
    lib->symbol_index_[lib->open_.symbols(i).name()] = i;
    lib->capture_errno_.push_back(symbols[i].capture_errno());
  }
  {
    absl::MutexLock lock(&lib->mu_);
    lib->slots_.resize(lib->spec_.pool_size);
  }
  for (int i = 0; i < lib->spec_.pool_size; ++i) {
    absl::Status started = lib->StartWorker(i, deadline);
    if (!started.ok()) {
      lib->Stop();  // the workers started so far end before the answer goes out
      return done(started);
    }
  }
  Library* raw = lib.get();
  raw->ProbeOptional(deadline, [lib = std::move(lib), done = std::move(done)](
                                   absl::Status probed) mutable {
    if (!probed.ok()) {
      lib->Stop();  // its workers end before the answer goes out
      lib.reset();
      return done(probed);
    }
    done(std::move(lib));
  });
}

Library::~Library() { Stop(); }

void Library::ProbeOptional(absl::Time deadline, absl::AnyInvocable<void(absl::Status)> done) {
  struct Probe {
    bool symbol;
    int index;
    std::string name;
  };
  std::vector<Probe> probes;
  for (int i = 0; i < open_.symbols_size(); ++i) {
    if (open_.symbols(i).optional()) probes.push_back({true, i, open_.symbols(i).name()});
  }
  for (int i = 0; i < open_.statics_size(); ++i) {
    if (open_.statics(i).optional()) probes.push_back({false, i, open_.statics(i).name()});
  }
  if (probes.empty()) return done(absl::OkStatus());
  // Answers come back on the watcher's thread (or this one, for a request
  // that fails before it is sent); the last one decides.
  struct Answers {
    absl::Mutex mu;
    size_t left ABSL_GUARDED_BY(mu) = 0;
    absl::Status first_error ABSL_GUARDED_BY(mu);
    std::vector<bool> missing ABSL_GUARDED_BY(mu);
    std::vector<Probe> probes;
    absl::AnyInvocable<void(absl::Status)> done;
  };
  auto answers = std::make_shared<Answers>();
  {
    absl::MutexLock lock(&answers->mu);
    answers->left = probes.size();
    answers->missing.assign(probes.size(), false);
  }
  answers->done = std::move(done);
  answers->probes = std::move(probes);
  for (size_t i = 0; i < answers->probes.size(); ++i) {
    worker::v1::DaemonToWorker request;
    worker::v1::StaticAccess* access = request.mutable_static_access();
    access->set_index(static_cast<uint32_t>(answers->probes[i].index));
    access->set_probe(true);
    access->set_probe_symbol(answers->probes[i].symbol);
    SubmitInstanceOp(std::move(request), 0, deadline,
                     [self = shared_from_this(), answers, i](
                         absl::StatusOr<worker::v1::InstanceResult> result, uint64_t) {
      absl::Status status;
      {
        absl::MutexLock lock(&answers->mu);
        if (!result.ok() && answers->first_error.ok()) answers->first_error = result.status();
        if (result.ok() && !result->found()) answers->missing[i] = true;
        if (--answers->left != 0) return;
        status = answers->first_error;
        // The library is not shared yet: only this (last) answer touches it.
        for (size_t j = 0; status.ok() && j < answers->probes.size(); ++j) {
          if (!answers->missing[j]) continue;
          const Probe& probe = answers->probes[j];
          (probe.symbol ? self->symbol_missing_ : self->static_missing_)[probe.index] = true;
          self->missing_.push_back(probe.name);
        }
      }
      answers->done(status);
    });
  }
}

bool Library::ReturnsInstance(const std::string& symbol) const {
  auto it = symbol_index_.find(symbol);
  return it != symbol_index_.end() && signatures_[it->second].result != nullptr &&
         signatures_[it->second].result->kind == TypeKind::kHandle;
}

absl::Status Library::Encode(const std::string& symbol,
                             const google::protobuf::RepeatedPtrField<v1::Value>& args,
                             const InstanceHooks& instances, worker::v1::Call* out,
                             uint64_t* generation, int* index,
                             std::vector<CallbackScope::Bound>* callbacks) const {
  auto it = symbol_index_.find(symbol);
  if (it == symbol_index_.end()) {
    std::vector<std::string> names;
    for (const auto& [name, i] : symbol_index_) names.push_back(name);
    return absl::NotFoundError(absl::StrCat("symbol '", symbol, "' was not declared when ", path_,
                                            " was opened (declared: ", absl::StrJoin(names, ", "),
                                            ")"));
  }
  *index = it->second;
  if (symbol_missing_[it->second]) {
    return absl::FailedPreconditionError(
        absl::StrCat("optional symbol '", symbol, "' is not exported by ", path_));
  }
  std::function<bool(uint64_t)> live = [this](uint64_t g) { return LiveGeneration(g); };
  out->set_symbol_index(static_cast<uint32_t>(it->second));
  absl::Status encoded =
      EncodeCall(signatures_[it->second], args, instances, live, out, generation, callbacks);
  if (!encoded.ok()) {
    return WithNewMessage(encoded, absl::StrCat(symbol, ": ", encoded.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::CallResponse> Library::Decode(int index, const worker::v1::Call& sent,
                                                 const worker::v1::Result& result,
                                                 uint64_t generation,
                                                 const InstanceHooks& instances,
                                                 bool* violation) const {
  const std::string& name = open_.symbols(index).name();
  // Sizes are protocol (a wrong size means a lying worker: kill it); the
  // values themselves are the library's (a trap representation is reported).
  absl::StatusOr<v1::CallResponse> response =
      DecodeCallResult(name, signatures_[index], sent, result, instances, generation, violation);
  if (*violation) return response;
  if (!response.ok()) {
    return WithNewMessage(response.status(),
                        absl::StrCat(response.status().message(), " (in ", path_, ")"));
  }
  if (capture_errno_[index]) response->set_errno_value(result.errno_value());
  return response;
}

// A call in progress: what was sent, how to finish it, and how often it was
// sent again because its worker ended before starting it.
struct Library::CallState {
  worker::v1::DaemonToWorker message;
  int index = 0;
  uint64_t generation = 0;  // of the instances the call names
  std::string name;
  absl::Time deadline;
  uint64_t order = 0;  // NextOrder
  int attempts = 0;
  InstanceHooks instances;
  std::vector<CallbackScope::Bound> callbacks;  // bound for this call
  // The worker it must run in (nested in an invocation, or a persistent
  // callback bound there): generations alone name places of this library.
  std::weak_ptr<WorkerProcess> pinned;
  bool is_pinned = false;
  CallDone done;
};

// Requests a worker ended before starting (kNotStartedReason) are sent
// again, to a fresh worker, this many times at most.
constexpr int kMaxAttempts = 3;

bool Library::SendAgain(const absl::Status& status, int* attempts, absl::Time deadline) {
  return ErrorReason(status) == kNotStartedReason && ++*attempts < kMaxAttempts &&
         absl::Now() < deadline;
}

void Library::Call(const v1::CallRequest& request, absl::Time deadline,
                   const InstanceHooks& instances, CallDone done) {
  auto state = std::make_shared<CallState>();
  state->instances = instances;
  state->done = std::move(done);
  state->name = request.symbol();
  state->deadline = deadline;
  state->order = NextOrder();
  const CallbackContext& callbacks = instances.callbacks;
  if (callbacks.nested_generation != 0) {
    // Sent by a callback's handler: runs in the worker waiting for its
    // answer, on the thread that invoked the callback.
    state->generation = callbacks.nested_generation;
    state->message.set_within_invocation(callbacks.within_invocation);
    state->pinned = callbacks.nested_worker;
    state->is_pinned = true;
  }
  absl::Status encoded = Encode(request.symbol(), request.args(), instances,
                                state->message.mutable_call(), &state->generation, &state->index,
                                &state->callbacks);
  if (encoded.ok() && callbacks.nested_generation != 0 &&
      state->generation != callbacks.nested_generation) {
    encoded = absl::InvalidArgumentError(absl::StrCat(
        "call to '", request.symbol(), "' names instances or callbacks of another worker than "
        "the one running the callback it is nested in"));
  }
  for (const CallbackScope::Bound& b : state->callbacks) {
    if (encoded.ok() && b.generation != 0 && !state->is_pinned) {
      state->pinned = b.worker;
      state->is_pinned = true;
    }
  }
  if (!encoded.ok()) return state->done(encoded);
  SendCall(std::move(state));
}

void Library::SendCall(std::shared_ptr<CallState> state) {
  auto send = [self = shared_from_this(), state](Target target) {
    WorkerProcess* worker = target.worker.get();
    if (state->is_pinned && state->pinned.lock() != target.worker) {
      return state->done(absl::InvalidArgumentError(absl::StrCat(
          "call to '", state->name, "' in ", self->path_, ": ",
          state->message.within_invocation() != 0
              ? "a callback's handler can only call the library running the callback, "
                "whose worker is waiting for it"
              : "a persistent callback it passes is bound in a worker of another library, or "
                "in one that has ended; register it again")));
    }
    CallbackScope* scope = state->instances.callbacks.scope.get();
    if (scope != nullptr) {
      scope->Sent(state->instances.callbacks.call_id, target.worker, target.generation,
                  state->callbacks, state->instances);
    }
    worker->Submit(&state->message, state->deadline,
                   [self, state, target = std::move(target)](
                       absl::StatusOr<worker::v1::WorkerToDaemon> reply) mutable {
      if (CallbackScope* scope = state->instances.callbacks.scope.get()) {
        scope->Unsent(state->instances.callbacks.call_id);
      }
      const std::string& name = state->name;
      auto fail = [&](absl::Status status) {
        self->Finished(target, false, "");
        state->done(WithNewMessage(status,
            absl::StrCat("call to '", name, "' in ", self->path_, " failed: ", status.message(),
                         target.notice.empty() ? "" : " (before it, ", target.notice,
                         target.notice.empty() ? "" : ")")));
      };
      if (!reply.ok() && SendAgain(reply.status(), &state->attempts, state->deadline)) {
        return self->SendCall(state);  // it never ran: a fresh worker runs it
      }
      if (!reply.ok()) return fail(reply.status());
      if (!reply->has_result()) {
        target.worker->Abandon(reply->has_error()
                                   ? "refused a call the daemon had validated"
                                   : "answered Call with something other than a result");
        return fail(absl::UnavailableError(
            absl::StrCat("worker ", target.worker->outcome().message)));
      }
      bool violation = false;
      absl::StatusOr<v1::CallResponse> response =
          self->Decode(state->index, state->message.call(), reply->result(), target.generation,
                       state->instances, &violation);
      if (violation) {
        target.worker->Abandon(std::string(response.status().message()));
        return fail(absl::UnavailableError(
            absl::StrCat("worker ", target.worker->outcome().message)));
      }
      self->Finished(target, true, absl::StrCat("'", name, "'"));
      if (response.ok() && !target.notice.empty()) response->set_worker_notice(target.notice);
      state->done(std::move(response));
    });
  };
  WithWorker(state->generation, /*first_slot=*/false, state->deadline, state->order,
             std::move(send),
             [state, path = path_](absl::Status status) {
               state->done(WithNewMessage(status,
                                        absl::StrCat("call to '", state->name, "' in ", path,
                                                     " failed: ", status.message())));
             });
}

// A batch in progress (as CallState).
struct Library::BatchState {
  worker::v1::DaemonToWorker message;
  std::vector<int> index;  // symbol index of each call
  uint64_t generation = 0;
  absl::Time deadline;
  uint64_t order = 0;  // NextOrder
  int attempts = 0;
  InstanceHooks instances;
  BatchDone done;
};

void Library::CallBatch(const v1::CallBatchRequest& request, absl::Time deadline,
                        const InstanceHooks& instances, BatchDone done) {
  auto state = std::make_shared<BatchState>();
  state->instances = instances;
  state->done = std::move(done);
  state->deadline = deadline;
  state->order = NextOrder();
  const int n = request.calls_size();
  auto status_of = [](const absl::Status& status) { return ToCallStatus(status); };
  // Every call is validated before any runs; all must use one worker.
  uint64_t& generation = state->generation;
  std::vector<absl::Status> invalid(n);
  int first_invalid = -1;
  worker::v1::Batch* batch = state->message.mutable_batch();
  for (int i = 0; i < n; ++i) {
    int index = 0;
    worker::v1::Call call;
    invalid[i] = Encode(request.calls(i).symbol(), request.calls(i).args(), instances, &call,
                        &generation, &index);
    if (!invalid[i].ok()) {
      invalid[i] = WithNewMessage(invalid[i],
                                absl::StrCat("call ", i, " of the batch: ", invalid[i].message()));
      if (first_invalid < 0) first_invalid = i;
      continue;
    }
    *batch->add_calls() = std::move(call);
    state->index.push_back(index);
  }
  if (first_invalid >= 0) {
    v1::CallBatchResponse response;
    for (int i = 0; i < n; ++i) {
      *response.add_outcomes()->mutable_status() = status_of(
          invalid[i].ok() ? absl::AbortedError(absl::StrCat("not run: call ", first_invalid,
                                                            " of the batch is invalid"))
                          : invalid[i]);
    }
    return state->done(std::move(response));
  }
  SendBatch(std::move(state));
}

void Library::SendBatch(std::shared_ptr<BatchState> state) {
  auto status_of = [](const absl::Status& status) { return ToCallStatus(status); };
  auto send = [self = shared_from_this(), state, status_of](Target target) {
    WorkerProcess* worker = target.worker.get();
    worker->Submit(&state->message, state->deadline,
                   [self, state, status_of, target = std::move(target)](
                       absl::StatusOr<worker::v1::WorkerToDaemon> reply) mutable {
      const int n = state->message.batch().calls_size();
      v1::CallBatchResponse response;
      auto fail_all = [&](const absl::Status& status) {
        self->Finished(target, false, "");
        absl::Status each = WithNewMessage(
            status, absl::StrCat("batch in ", self->path_, " failed: ", status.message(),
                                 " (calls before the one running may have run)"));
        for (int i = 0; i < n; ++i) *response.add_outcomes()->mutable_status() = status_of(each);
        state->done(std::move(response));
      };
      if (!reply.ok() && SendAgain(reply.status(), &state->attempts, state->deadline)) {
        return self->SendBatch(state);  // it never ran: a fresh worker runs it
      }
      if (!reply.ok()) return fail_all(reply.status());
      if (!reply->has_batch_result() || reply->batch_result().results_size() != n) {
        target.worker->Abandon(reply->has_error()
                                   ? "refused a batch the daemon had validated"
                                   : "answered a batch with something other than its results");
        return fail_all(absl::UnavailableError(
            absl::StrCat("worker ", target.worker->outcome().message)));
      }
      // Instance results become handles only once every call's reply is
      // valid: a violation below throws the whole batch's answers away.
      struct Adoption {
        int call;
        const TypeDesc* type;
        InstanceRef where;
      };
      std::vector<Adoption> adoptions;
      int decoding = 0;
      InstanceHooks deferred = state->instances;
      deferred.adopt = [&adoptions, &decoding](const TypeDesc& type, const InstanceRef& where) {
        adoptions.push_back({decoding, &type, where});
        return uint64_t{0};  // set below
      };
      for (int i = 0; i < n; ++i) {
        bool violation = false;
        decoding = i;
        absl::StatusOr<v1::CallResponse> one =
            self->Decode(state->index[i], state->message.batch().calls(i),
                         reply->batch_result().results(i), target.generation, deferred,
                         &violation);
        if (violation) {
          target.worker->Abandon(std::string(one.status().message()));
          response.clear_outcomes();
          return fail_all(absl::UnavailableError(
              absl::StrCat("worker ", target.worker->outcome().message)));
        }
        v1::CallBatchResponse::Outcome* outcome = response.add_outcomes();
        *outcome->mutable_status() = status_of(one.status());
        if (one.ok()) *outcome->mutable_response() = std::move(*one);
      }
      for (const Adoption& a : adoptions) {
        response.mutable_outcomes(a.call)->mutable_response()->mutable_result()->set_handle_value(
            state->instances.adopt(*a.type, a.where));
      }
      if (!target.notice.empty() && n > 0 && response.outcomes(0).status().code() == 0) {
        response.mutable_outcomes(0)->mutable_response()->set_worker_notice(target.notice);
      }
      self->Finished(target, true, "a batch");
      state->done(std::move(response));
    });
  };
  WithWorker(state->generation, /*first_slot=*/false, state->deadline, state->order,
             std::move(send),
             [state, path = path_](absl::Status status) {
    state->done(WithNewMessage(status,
                             absl::StrCat("batch in ", path, " failed: ", status.message())));
  });
}

void Library::Stop() {
  std::vector<std::shared_ptr<WorkerProcess>> workers;
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    for (Slot& slot : slots_) {
      if (slot.worker != nullptr) workers.push_back(slot.worker);
    }
  }
  for (auto& worker : workers) worker->Kill();
}

v1::WorkerLayers Library::layers() const {
  absl::MutexLock lock(&mu_);
  return slots_.empty() ? v1::WorkerLayers() : slots_.front().layers;
}

std::vector<pid_t> Library::worker_pids() const {
  absl::MutexLock lock(&mu_);
  std::vector<pid_t> pids;
  for (const Slot& slot : slots_) {
    pids.push_back(slot.worker != nullptr && slot.worker->alive() ? slot.worker->pid() : 0);
  }
  if (pids.empty()) pids.push_back(0);
  return pids;
}

}  // namespace ffibroker
