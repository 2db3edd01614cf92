#include "daemon/library.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "common/types.h"
#include "common/value_codec.h"

namespace ffibroker {
namespace {

}  // namespace

absl::StatusOr<std::unique_ptr<Library>> Library::Open(
    std::string path,
    const google::protobuf::RepeatedPtrField<v1::SymbolDeclaration>& symbols,
    const WorkerOptions& options, absl::Time deadline) {
  worker::v1::Open open;
  open.set_path(path);
  for (const v1::SymbolDeclaration& s : symbols) {
    worker::v1::Symbol* symbol = open.add_symbols();
    symbol->set_name(s.name());
    *symbol->mutable_signature() = s.signature();
  }
  std::unique_ptr<Library> lib(
      new Library(std::move(path), std::move(open), launcher, std::move(profile)));
  for (int i = 0; i < lib->open_.symbols_size(); ++i) {
    lib->symbol_index_[lib->open_.symbols(i).name()] = i;
  }
  absl::MutexLock lock(&lib->call_mu_);
  RETURN_IF_ERROR(lib->StartWorker(deadline));
  return lib;
}

absl::Status Library::StartWorker(absl::Time deadline) {
  v1::WorkerLayers layers;
  absl::StatusOr<std::unique_ptr<WorkerProcess>> worker =
      launcher_->Launch(open_, profile_, deadline, &layers);
  if (!worker.ok()) {
    return absl::Status(worker.status().code(),
                        absl::StrCat("while loading ", path_, ": ", worker.status().message()));
  }
  absl::MutexLock lock(&worker_mu_);
  if (stopped_) return absl::FailedPreconditionError("library was closed");
  worker_ = std::move(*worker);
  layers_ = std::move(layers);
  return absl::OkStatus();
}

absl::StatusOr<v1::CallResponse> Library::Call(const v1::CallRequest& request,
                                               absl::Time deadline) {
  auto it = symbol_index_.find(request.symbol());
  if (it == symbol_index_.end()) {
    std::vector<std::string> names;
    for (const auto& [name, index] : symbol_index_) names.push_back(name);
    return absl::NotFoundError(absl::StrCat(
        "symbol '", request.symbol(), "' was not declared when ", path_,
        " was opened (declared: ", absl::StrJoin(names, ", "), ")"));
  }
  const worker::v1::Symbol& symbol = open_.symbols(it->second);
  absl::StatusOr<std::vector<std::string>> args =
      EncodeArguments(symbol.signature(), request.args());
  if (!args.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(symbol.name(), ": ", args.status().message()));
  }
  worker::v1::DaemonToWorker message;
  message.mutable_call()->set_symbol_index(static_cast<uint32_t>(it->second));
  for (std::string& arg : *args) message.mutable_call()->add_args(std::move(arg));

  absl::MutexLock call_lock(&call_mu_);
  WorkerProcess* worker;
  {
    absl::MutexLock lock(&worker_mu_);
    if (stopped_) return absl::FailedPreconditionError("library was closed");
    worker = worker_.get();
  }
  if (worker == nullptr || !worker->alive()) {
    absl::Status restarted = StartWorker(deadline);
    if (!restarted.ok()) {
      return absl::Status(restarted.code(),
                          absl::StrCat("could not restart the worker: ", restarted.message()));
    }
    absl::MutexLock lock(&worker_mu_);
    worker = worker_.get();
  }
  absl::StatusOr<worker::v1::WorkerToDaemon> reply = worker->Exchange(message, deadline);
  if (!reply.ok()) {
    return absl::Status(reply.status().code(),
                        absl::StrCat("call to '", symbol.name(), "' in ", path_,
                                     " failed: ", reply.status().message()));
  }
  if (!reply->has_result()) {
    worker->Abandon(reply->has_error() ? "refused a call the daemon had validated"
                                       : "answered Call with something other than a result");
    return absl::UnavailableError(absl::StrCat(
        "call to '", symbol.name(), "' in ", path_, " failed: worker ",
        worker->outcome().message));
  }
  // Size is protocol (a wrong size means a lying worker: kill it); the
  // value itself is the library's (a trap representation is reported).
  const v1::Type& result_type = symbol.signature().result();
  ASSIGN_OR_RETURN(const ScalarInfo* result_info, ScalarOf(result_type));
  if (reply->result().value().size() != result_info->size) {
    worker->Abandon(absl::StrCat("sent ", reply->result().value().size(),
                                 " result bytes for ", result_info->name));
    return absl::UnavailableError(absl::StrCat(
        "call to '", symbol.name(), "' in ", path_, " failed: worker ",
        worker->outcome().message));
  }
  v1::CallResponse response;
  if (result_info->klass == ScalarClass::kVoid) return response;
  absl::StatusOr<v1::Value> value =
      DecodeValue(result_type, reply->result().value());
  if (!value.ok()) {
    return absl::DataLossError(absl::StrCat("'", symbol.name(), "' in ", path_,
                                            " returned an invalid result: ",
                                            value.status().message()));
  }
  *response.mutable_result() = std::move(*value);
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
