// Library (library.h): instance and static operations, each one exchange
// with the worker holding the instance, none of them waiting for it; the
// worker::v1 messages they are made of are built here and nowhere above
// this layer.
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/error_reason.h"
#include "common/status_macros.h"
#include "daemon/library.h"

namespace ffibroker {

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

// An instance or static operation in progress, sent again like a call if
// its worker ended before starting it.
struct Library::InstanceOpState {
  worker::v1::DaemonToWorker message;
  uint64_t generation = 0;
  absl::Time deadline;
  uint64_t order = 0;  // NextOrder
  int attempts = 0;
  InstanceDone done;  // runs once
};

void Library::SubmitInstanceOp(worker::v1::DaemonToWorker request, uint64_t generation,
                               absl::Time deadline, InstanceDone done) {
  auto state = std::make_shared<InstanceOpState>();
  state->message = std::move(request);
  state->generation = generation;
  state->deadline = deadline;
  state->order = NextOrder();
  state->done = std::move(done);
  SendInstanceOp(std::move(state));
}

void Library::SendInstanceOp(std::shared_ptr<InstanceOpState> state) {
  auto failed = [path = path_](const absl::Status& status) {
    return WithNewMessage(status, absl::StrCat("instance operation in ", path,
                                               " failed: ", status.message()));
  };
  auto send = [self = shared_from_this(), state, failed](Target target) mutable {
    WorkerProcess* worker = target.worker.get();
    worker->Submit(&state->message, state->deadline,
                   [self, state, target = std::move(target), failed](
                       absl::StatusOr<worker::v1::WorkerToDaemon> reply) mutable {
      if (!reply.ok() && SendAgain(reply.status(), &state->attempts, state->deadline)) {
        return self->SendInstanceOp(state);  // it never ran: a fresh worker runs it
      }
      InstanceDone& done = state->done;
      self->Finished(target, reply.ok(), "an instance operation");
      if (!reply.ok()) return done(failed(reply.status()), target.generation);
      if (!reply->has_instance_result()) {
        // The daemon validated the request, so an error answer is a lie too.
        self->Finished(target, false, "");
        target.worker->Abandon(
            reply->has_error()
                ? absl::StrCat("refused a validated instance operation: ",
                               SanitizeWorkerText(reply->error().message()))
                : "answered an instance operation with something else");
        return done(failed(absl::UnavailableError(
                        absl::StrCat("worker ", target.worker->outcome().message))),
                    target.generation);
      }
      done(std::move(*reply->mutable_instance_result()), target.generation);
    });
  };
  WithWorker(state->generation, /*first_slot=*/state->message.has_static_access(),
             state->deadline, state->order, std::move(send),
             [state, failed](absl::Status status) { state->done(failed(status), 0); });
}

void Library::NewInstance(const TypeDesc& klass, std::string init, absl::Time deadline,
                          Done<InstanceRef> done) {
  worker::v1::DaemonToWorker message;
  message.mutable_instance_new()->set_class_index(static_cast<uint32_t>(klass.class_index));
  message.mutable_instance_new()->set_init(std::move(init));
  SubmitInstanceOp(std::move(message), 0, deadline,
                   [done = std::move(done)](absl::StatusOr<worker::v1::InstanceResult> result,
                                            uint64_t generation) mutable {
                     if (!result.ok()) return done(result.status());
                     if (result->instance_id() == 0) {
                       return done(absl::UnavailableError(
                           "the worker answered NewInstance without an instance id"));
                     }
                     done(InstanceRef{result->instance_id(), generation});
                   });
}

void Library::ReadInstance(const InstanceRef& where, uint64_t size, absl::Time deadline,
                           Done<std::string> done) {
  worker::v1::DaemonToWorker message;
  message.mutable_instance_read()->set_instance_id(where.worker_id);
  message.mutable_instance_read()->set_size(size);
  SubmitInstanceOp(std::move(message), where.generation, deadline,
                   [size, done = std::move(done)](
                       absl::StatusOr<worker::v1::InstanceResult> result, uint64_t) mutable {
                     if (!result.ok()) return done(result.status());
                     if (result->data().size() != size) {
                       return done(absl::UnavailableError(
                           "the worker sent an instance of the wrong size"));
                     }
                     done(std::move(*result->mutable_data()));
                   });
}

void Library::WriteInstance(const InstanceRef& where, std::vector<Span> spans,
                            absl::Time deadline, StatusDone done) {
  if (spans.empty()) return done(absl::OkStatus());
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
  SubmitInstanceOp(std::move(message), where.generation, deadline,
                   [done = std::move(done)](absl::StatusOr<worker::v1::InstanceResult> result,
                                            uint64_t) mutable { done(result.status()); });
}

void Library::FreeInstance(const InstanceRef& where, absl::Time deadline, Done<bool> done) {
  worker::v1::DaemonToWorker message;
  message.mutable_instance_free()->set_instance_id(where.worker_id);
  SubmitInstanceOp(std::move(message), where.generation, deadline,
                   [done = std::move(done)](absl::StatusOr<worker::v1::InstanceResult> freed,
                                            uint64_t) mutable {
                     if (!freed.ok()) return done(freed.status());
                     done(freed->destructor_called());
                   });
}

void Library::ReadStatic(const StaticInfo& info, absl::Time deadline, Done<std::string> done) {
  worker::v1::DaemonToWorker message;
  message.mutable_static_access()->set_index(static_cast<uint32_t>(info.index));
  SubmitInstanceOp(std::move(message), 0, deadline,
                   [size = info.type->size, done = std::move(done)](
                       absl::StatusOr<worker::v1::InstanceResult> result, uint64_t) mutable {
                     if (!result.ok()) return done(result.status());
                     if (result->data().size() != size) {
                       return done(absl::UnavailableError(
                           "the worker sent a static of the wrong size"));
                     }
                     done(std::move(*result->mutable_data()));
                   });
}

void Library::WriteStatic(const StaticInfo& info, std::string bytes, absl::Time deadline,
                          StatusDone done) {
  worker::v1::DaemonToWorker message;
  message.mutable_static_access()->set_index(static_cast<uint32_t>(info.index));
  message.mutable_static_access()->set_write(true);
  message.mutable_static_access()->set_data(std::move(bytes));
  SubmitInstanceOp(std::move(message), 0, deadline,
                   [done = std::move(done)](absl::StatusOr<worker::v1::InstanceResult> result,
                                            uint64_t) mutable { done(result.status()); });
}

}  // namespace ffibroker
