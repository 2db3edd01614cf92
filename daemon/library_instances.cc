// Library (library.h): instance and static operations, each one exchange
// with the worker holding the instance; the worker::v1 messages they are
// made of are built here and nowhere above this layer.
#include "absl/strings/str_cat.h"
#include "common/error_reason.h"
#include "common/status_macros.h"
#include "daemon/library.h"

namespace ffibroker {
namespace {

worker::v1::DaemonToWorker FreeRequest(uint64_t worker_id) {
  worker::v1::DaemonToWorker request;
  request.mutable_instance_free()->set_instance_id(worker_id);
  return request;
}

}  // namespace

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

absl::StatusOr<worker::v1::InstanceResult> Library::InstanceOp(
    const worker::v1::DaemonToWorker& request, uint64_t generation, absl::Time deadline,
    uint64_t* used) {
  const bool is_static = request.has_static_access();
  ASSIGN_OR_RETURN(Target target, PickStarting(generation, is_static, deadline));
  if (used != nullptr) *used = target.generation;
  worker::v1::DaemonToWorker sent = request;  // gets the request id
  absl::StatusOr<worker::v1::WorkerToDaemon> reply = target.worker->Exchange(&sent, deadline);
  Finished(target, reply.ok(), "an instance operation");
  if (!reply.ok()) {
    return WithNewMessage(reply.status(),
                        absl::StrCat("instance operation in ", path_,
                                     " failed: ", reply.status().message()));
  }
  if (!reply->has_instance_result()) {
    // The daemon validated the request, so an error answer is a lie too.
    Finished(target, false, "");
    target.worker->Abandon(reply->has_error()
                               ? absl::StrCat("refused a validated instance operation: ",
                                              SanitizeWorkerText(reply->error().message()))
                               : "answered an instance operation with something else");
    return absl::UnavailableError(absl::StrCat(
        "instance operation in ", path_, " failed: worker ", target.worker->outcome().message));
  }
  return std::move(*reply->mutable_instance_result());
}

void Library::SubmitInstanceOp(worker::v1::DaemonToWorker request, uint64_t generation,
                               absl::Time deadline, InstanceDone done) {
  bool needs_start = false;
  absl::StatusOr<Target> target = Pick(generation, /*first_slot=*/false, &needs_start);
  if (!target.ok()) return done(target.status());
  if (needs_start) return done(absl::FailedPreconditionError("the instance's worker is gone"));
  auto message = std::make_shared<worker::v1::DaemonToWorker>(std::move(request));
  WorkerProcess* worker = target->worker.get();
  worker->Submit(message.get(), deadline,
                 [self = shared_from_this(), message, target = *std::move(target),
                  done = std::move(done)](
                     absl::StatusOr<worker::v1::WorkerToDaemon> reply) mutable {
                   self->Finished(target, reply.ok(), "an instance operation");
                   if (!reply.ok()) return done(reply.status());
                   if (!reply->has_instance_result()) {
                     target.worker->Abandon("answered an instance operation with something else");
                     return done(absl::UnavailableError(
                         absl::StrCat("worker ", target.worker->outcome().message)));
                   }
                   done(std::move(*reply->mutable_instance_result()));
                 });
}

absl::StatusOr<InstanceRef> Library::NewInstance(const TypeDesc& klass, std::string init,
                                                 absl::Time deadline) {
  worker::v1::DaemonToWorker message;
  message.mutable_instance_new()->set_class_index(static_cast<uint32_t>(klass.class_index));
  message.mutable_instance_new()->set_init(std::move(init));
  uint64_t generation = 0;
  ASSIGN_OR_RETURN(worker::v1::InstanceResult result,
                   InstanceOp(message, 0, deadline, &generation));
  if (result.instance_id() == 0) {
    return absl::UnavailableError("the worker answered NewInstance without an instance id");
  }
  return InstanceRef{result.instance_id(), generation};
}

absl::StatusOr<std::string> Library::ReadInstance(const InstanceRef& where, uint64_t size,
                                                  absl::Time deadline) {
  worker::v1::DaemonToWorker message;
  message.mutable_instance_read()->set_instance_id(where.worker_id);
  message.mutable_instance_read()->set_size(size);
  ASSIGN_OR_RETURN(worker::v1::InstanceResult result,
                   InstanceOp(message, where.generation, deadline));
  if (result.data().size() != size) {
    return absl::UnavailableError("the worker sent an instance of the wrong size");
  }
  return std::move(*result.mutable_data());
}

absl::Status Library::WriteInstance(const InstanceRef& where, std::vector<Span> spans,
                                    absl::Time deadline) {
  if (spans.empty()) return absl::OkStatus();
  worker::v1::DaemonToWorker message;
  worker::v1::InstanceWrite* write = message.mutable_instance_write();
  write->set_instance_id(where.worker_id);
  write->set_offset(spans.front().offset);
  write->set_data(std::move(spans.front().data));
  for (size_t i = 1; i < spans.size(); ++i) {
    worker::v1::InstanceSpan* span = write->add_more();
    span->set_offset(spans[i].offset);
    span->set_data(std::move(spans[i].data));
  }
  return InstanceOp(message, where.generation, deadline).status();
}

absl::StatusOr<bool> Library::FreeInstance(const InstanceRef& where, absl::Time deadline) {
  ASSIGN_OR_RETURN(worker::v1::InstanceResult result,
                   InstanceOp(FreeRequest(where.worker_id), where.generation, deadline));
  return result.destructor_called();
}

void Library::SubmitFree(const InstanceRef& where, absl::Time deadline, FreeDone done) {
  SubmitInstanceOp(FreeRequest(where.worker_id), where.generation, deadline,
                   [done = std::move(done)](
                       absl::StatusOr<worker::v1::InstanceResult> freed) mutable {
                     if (!freed.ok()) return done(freed.status());
                     done(freed->destructor_called());
                   });
}

absl::StatusOr<std::string> Library::ReadStatic(const StaticInfo& info, absl::Time deadline) {
  worker::v1::DaemonToWorker message;
  message.mutable_static_access()->set_index(static_cast<uint32_t>(info.index));
  ASSIGN_OR_RETURN(worker::v1::InstanceResult result, InstanceOp(message, 0, deadline));
  if (result.data().size() != info.type->size) {
    return absl::UnavailableError("the worker sent a static of the wrong size");
  }
  return std::move(*result.mutable_data());
}

absl::Status Library::WriteStatic(const StaticInfo& info, std::string bytes,
                                  absl::Time deadline) {
  worker::v1::DaemonToWorker message;
  message.mutable_static_access()->set_index(static_cast<uint32_t>(info.index));
  message.mutable_static_access()->set_write(true);
  message.mutable_static_access()->set_data(std::move(bytes));
  return InstanceOp(message, 0, deadline).status();
}

}  // namespace ffibroker
