#include "daemon/library.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "common/types.h"
#include "common/log.h"
#include "common/value_codec.h"
#include "daemon/call_codec.h"

namespace ffibroker {
namespace {

}  // namespace

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
  return open;
}

absl::StatusOr<std::unique_ptr<Library>> Library::Open(
    std::string path,
    const google::protobuf::RepeatedPtrField<v1::SymbolDeclaration>& symbols,
    const google::protobuf::RepeatedPtrField<v1::StaticDeclaration>& statics,
    const ClassTable& classes, WorkerSpec spec, absl::Time deadline) {
  worker::v1::Open open = WorkerOpen(path, symbols, statics, classes, spec);
  std::vector<ResolvedSignature> signatures;
  for (const v1::SymbolDeclaration& s : symbols) {
    ASSIGN_OR_RETURN(ResolvedSignature sig, ResolveSignature(s.signature(), classes));
    signatures.push_back(std::move(sig));
  }
  std::map<std::string, StaticInfo> static_infos;
  for (int i = 0; i < statics.size(); ++i) {
    const v1::StaticDeclaration& s = statics[i];
    ASSIGN_OR_RETURN(TypeRef type, classes.Resolve(s.type(), TypeUse::kStatic));
    static_infos[s.name()] = StaticInfo{i, type, s.mutable_()};
  }
  std::unique_ptr<Library> lib(new Library(std::move(path), std::move(open), std::move(spec)));
  lib->signatures_ = std::move(signatures);
  lib->statics_ = std::move(static_infos);
  lib->symbol_missing_.assign(symbols.size(), false);
  lib->static_missing_.assign(statics.size(), false);
  for (int i = 0; i < lib->open_.symbols_size(); ++i) {
    lib->symbol_index_[lib->open_.symbols(i).name()] = i;
    lib->capture_errno_.push_back(symbols[i].capture_errno());
  }
  absl::MutexLock lock(&lib->call_mu_);
  RETURN_IF_ERROR(lib->StartWorker(deadline));
  RETURN_IF_ERROR(lib->ProbeOptional(deadline));
  return lib;
}

absl::Status Library::ProbeOptional(absl::Time deadline) {
  auto probe = [&](bool symbol, int index, const std::string& name,
                   std::vector<bool>& missing) -> absl::Status {
    call_mu_.AssertHeld();  // called right here, under ProbeOptional's lock
    worker::v1::DaemonToWorker request;
    worker::v1::StaticAccess* access = request.mutable_static_access();
    access->set_index(static_cast<uint32_t>(index));
    access->set_probe(true);
    access->set_probe_symbol(symbol);
    ASSIGN_OR_RETURN(worker::v1::InstanceResult r,
                     InstanceOpLocked(request, 0, deadline, nullptr));
    if (!r.found()) {
      missing[index] = true;
      missing_.push_back(name);
    }
    return absl::OkStatus();
  };
  for (int i = 0; i < open_.symbols_size(); ++i) {
    if (open_.symbols(i).optional()) {
      RETURN_IF_ERROR(probe(true, i, open_.symbols(i).name(), symbol_missing_));
    }
  }
  for (int i = 0; i < open_.statics_size(); ++i) {
    if (open_.statics(i).optional()) {
      RETURN_IF_ERROR(probe(false, i, open_.statics(i).name(), static_missing_));
    }
  }
  return absl::OkStatus();
}

bool Library::ReturnsInstance(const std::string& symbol) const {
  auto it = symbol_index_.find(symbol);
  return it != symbol_index_.end() && signatures_[it->second].result != nullptr &&
         signatures_[it->second].result->kind == TypeKind::kHandle;
}

absl::StatusOr<Library::StaticInfo> Library::FindStatic(const std::string& name) const {
  auto it = statics_.find(name);
  if (it == statics_.end()) {
    return absl::NotFoundError(absl::StrCat(
        "static '", name, "' was not declared when ", path_, " was opened"));
  }
  if (static_missing_[it->second.index]) {
    return absl::FailedPreconditionError(
        absl::StrCat("optional static '", name, "' is not exported by ", path_));
  }
  return it->second;
}

absl::StatusOr<WorkerProcess*> Library::LiveWorker(absl::Time deadline) {
  WorkerProcess* worker;
  {
    absl::MutexLock lock(&worker_mu_);
    if (stopped_) return absl::FailedPreconditionError("library was closed");
    worker = worker_.get();
  }
  if (worker != nullptr && !worker->CheckIdle() && !end_reported_) {
    // It ended between calls: nobody was told yet.
    end_reported_ = true;
    notice_ = absl::StrCat("the worker serving ", path_, " died after ", last_operation_,
                           " returned: ", worker->outcome().message);
    LOG_WARNING("%s: %s", spec_.owner, notice_);
  }
  if (worker == nullptr || !worker->alive()) {
    absl::Status restarted = StartWorker(deadline);
    if (!restarted.ok()) {
      std::string before = notice_.empty() ? "" : absl::StrCat(notice_, "; ");
      notice_.clear();
      return absl::Status(restarted.code(), absl::StrCat(before, "could not restart the worker: ",
                                                         restarted.message()));
    }
    absl::MutexLock lock(&worker_mu_);
    worker = worker_.get();
  }
  return worker;
}

absl::StatusOr<worker::v1::InstanceResult> Library::InstanceOp(
    const worker::v1::DaemonToWorker& request, uint64_t generation, absl::Time deadline,
    uint64_t* used) {
  absl::MutexLock call_lock(&call_mu_);
  return InstanceOpLocked(request, generation, deadline, used);
}

absl::StatusOr<worker::v1::InstanceResult> Library::InstanceOpLocked(
    const worker::v1::DaemonToWorker& request, uint64_t generation, absl::Time deadline,
    uint64_t* used) {
  WorkerProcess* worker;
  if (generation != 0) {
    {
      absl::MutexLock lock(&worker_mu_);
      if (stopped_) return absl::FailedPreconditionError("library was closed");
      worker = worker_.get();
    }
    if (generation != generation_ || worker == nullptr || !worker->alive()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the instance is stale: the worker of ", path_,
          " that held it died and was replaced, and its instances were lost"));
    }
  } else {
    ASSIGN_OR_RETURN(worker, LiveWorker(deadline));
    // A death it noticed was logged; it belongs to no later call.
    notice_.clear();
  }
  if (used != nullptr) *used = generation_;
  worker::v1::DaemonToWorker sent = request;  // gets the request id
  absl::StatusOr<worker::v1::WorkerToDaemon> reply =
      Exchange(worker, &sent, deadline, "an instance operation");
  if (!reply.ok()) {
    return absl::Status(reply.status().code(),
                        absl::StrCat("instance operation in ", path_,
                                     " failed: ", reply.status().message()));
  }
  if (!reply->has_instance_result()) {
    // The daemon validated the request, so an error answer is a lie too.
    end_reported_ = true;
    worker->Abandon(reply->has_error()
                        ? absl::StrCat("refused a validated instance operation: ",
                                       SanitizeWorkerText(reply->error().message()))
                        : "answered an instance operation with something else");
    return absl::UnavailableError(absl::StrCat(
        "instance operation in ", path_, " failed: worker ", worker->outcome().message));
  }
  return std::move(*reply->mutable_instance_result());
}

absl::Status Library::StartWorker(absl::Time deadline) {
  v1::WorkerLayers layers;
  absl::StatusOr<std::unique_ptr<WorkerProcess>> worker =
      spec_.launcher->Launch(open_, spec_.profile, spec_.required_layers, deadline, &layers);
  if (!worker.ok()) {
    return absl::Status(worker.status().code(),
                        absl::StrCat("while loading ", path_, ": ", worker.status().message()));
  }
  (*worker)->set_label(absl::StrCat(path_, " for ", spec_.owner));
  absl::MutexLock lock(&worker_mu_);
  if (stopped_) return absl::FailedPreconditionError("library was closed");
  worker_ = std::move(*worker);
  layers_ = std::move(layers);
  ++generation_;
  last_operation_ = "loading the library";
  end_reported_ = false;
  return absl::OkStatus();
}

absl::StatusOr<worker::v1::WorkerToDaemon> Library::Exchange(
    WorkerProcess* worker, worker::v1::DaemonToWorker* request, absl::Time deadline,
    std::string what) {
  absl::StatusOr<worker::v1::WorkerToDaemon> reply = worker->Exchange(request, deadline);
  if (reply.ok()) {
    last_operation_ = std::move(what);
  } else {
    end_reported_ = true;
  }
  return reply;
}

absl::StatusOr<v1::CallResponse> Library::Call(const v1::CallRequest& request,
                                               absl::Time deadline,
                                               const InstanceContext& instances) {
  auto it = symbol_index_.find(request.symbol());
  if (it == symbol_index_.end()) {
    std::vector<std::string> names;
    for (const auto& [name, index] : symbol_index_) names.push_back(name);
    return absl::NotFoundError(absl::StrCat(
        "symbol '", request.symbol(), "' was not declared when ", path_,
        " was opened (declared: ", absl::StrJoin(names, ", "), ")"));
  }
  const worker::v1::Symbol& symbol = open_.symbols(it->second);
  if (symbol_missing_[it->second]) {
    return absl::FailedPreconditionError(absl::StrCat(
        "optional symbol '", symbol.name(), "' is not exported by ", path_));
  }
  const ResolvedSignature& sig = signatures_[it->second];

  absl::MutexLock call_lock(&call_mu_);
  ASSIGN_OR_RETURN(WorkerProcess * worker, LiveWorker(deadline));
  const uint64_t generation = generation_;
  HandleHooks hooks;
  hooks.map = [&](const TypeDesc& klass, uint64_t handle) {
    return instances.map(klass, handle, generation);
  };
  hooks.adopt = [&](const TypeDesc& type, uint64_t worker_id) {
    return instances.adopt(type, worker_id, generation);
  };
  hooks.max_buffer_bytes = instances.max_buffer_bytes;
  hooks.max_string_bytes = instances.max_string_bytes;
  worker::v1::DaemonToWorker message;
  message.mutable_call()->set_symbol_index(static_cast<uint32_t>(it->second));
  absl::Status encoded = EncodeCall(sig, request.args(), hooks, message.mutable_call());
  if (!encoded.ok()) {
    return absl::Status(encoded.code(), absl::StrCat(symbol.name(), ": ", encoded.message()));
  }
  absl::StatusOr<worker::v1::WorkerToDaemon> reply =
      Exchange(worker, &message, deadline, absl::StrCat("'", symbol.name(), "'"));
  std::string notice = std::move(notice_);
  notice_.clear();
  if (!reply.ok()) {
    return absl::Status(reply.status().code(),
                        absl::StrCat("call to '", symbol.name(), "' in ", path_,
                                     " failed: ", reply.status().message(),
                                     notice.empty() ? "" : " (before it, ", notice,
                                     notice.empty() ? "" : ")"));
  }
  if (!reply->has_result()) {
    end_reported_ = true;
    worker->Abandon(reply->has_error() ? "refused a call the daemon had validated"
                                       : "answered Call with something other than a result");
    return absl::UnavailableError(absl::StrCat(
        "call to '", symbol.name(), "' in ", path_, " failed: worker ",
        worker->outcome().message));
  }
  // Sizes are protocol (a wrong size means a lying worker: kill it); the
  // values themselves are the library's (a trap representation is reported).
  bool violation = false;
  absl::StatusOr<v1::CallResponse> response = DecodeCallResult(
      symbol.name(), sig, message.call(), reply->result(), hooks, &violation);
  if (violation) {
    end_reported_ = true;
    worker->Abandon(std::string(response.status().message()));
    return absl::UnavailableError(absl::StrCat(
        "call to '", symbol.name(), "' in ", path_, " failed: worker ",
        worker->outcome().message));
  }
  if (!response.ok()) {
    return absl::Status(response.status().code(),
                        absl::StrCat(response.status().message(), " (in ", path_, ")"));
  }
  if (capture_errno_[it->second]) response->set_errno_value(reply->result().errno_value());
  if (!notice.empty()) response->set_worker_notice(notice);
  return response;
}

void Library::Stop() {
  absl::MutexLock lock(&worker_mu_);
  stopped_ = true;
  if (worker_ != nullptr) worker_->Kill();
}

v1::WorkerLayers Library::layers() const {
  absl::MutexLock lock(&worker_mu_);
  return layers_;
}

pid_t Library::worker_pid() const {
  absl::MutexLock lock(&worker_mu_);
  return worker_ != nullptr && worker_->alive() ? worker_->pid() : 0;
}

}  // namespace ffibroker
