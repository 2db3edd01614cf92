// SessionManager (session_manager.h): reading and writing a library's
// statics, in its first worker, without waiting for it.
#include "absl/strings/str_cat.h"
#include "common/value_codec.h"
#include "daemon/session_manager.h"

namespace ffibroker {

void SessionManager::ReadStatic(const v1::ReadStaticRequest& request, const Caller& caller,
                                absl::Time deadline, Reply<v1::ReadStaticResponse> done) {
  WithLibrary(
      request.session_id(), caller, request.library_handle(), "ReadStatic", request.name(),
      deadline, NewHandle::kNo,
      [name = request.name(), done = std::move(done)](
          absl::StatusOr<std::shared_ptr<Authorized>> op) mutable {
        if (!op.ok()) return done(op.status());
        std::shared_ptr<Authorized> held = *std::move(op);
        absl::StatusOr<Library::StaticInfo> info = held->library->FindStatic(name);
        if (!info.ok()) return done(info.status());
        held->library->ReadStatic(
            *info, held->deadline,
            [held, type = info->type, name = std::move(name),
             done = std::move(done)](absl::StatusOr<std::string> data) mutable {
              held.reset();  // the calls-in-flight slot is free before the answer
              if (!data.ok()) return done(data.status());
              absl::StatusOr<v1::Value> value = DecodeInline(*type, *data);
              if (!value.ok()) {
                return done(absl::DataLossError(absl::StrCat(
                    "static '", name, "' holds an invalid value: ", value.status().message())));
              }
              v1::ReadStaticResponse response;
              *response.mutable_value() = std::move(*value);
              done(std::move(response));
            });
      });
}

void SessionManager::WriteStatic(const v1::WriteStaticRequest& request, const Caller& caller,
                                 absl::Time deadline, Reply<v1::WriteStaticResponse> done) {
  WithLibrary(
      request.session_id(), caller, request.library_handle(), "WriteStatic", request.name(),
      deadline, NewHandle::kNo,
      [request, done = std::move(done)](
          absl::StatusOr<std::shared_ptr<Authorized>> op) mutable {
        if (!op.ok()) return done(op.status());
        std::shared_ptr<Authorized> held = *std::move(op);
        absl::StatusOr<Library::StaticInfo> info = held->library->FindStatic(request.name());
        if (!info.ok()) return done(info.status());
        if (!info->is_mutable) {
          return done(absl::InvalidArgumentError(
              absl::StrCat("static '", request.name(), "' was not declared mutable")));
        }
        std::string bytes;
        absl::Status encoded = EncodeInline(*info->type, request.value(), &bytes);
        if (!encoded.ok()) {
          return done(absl::InvalidArgumentError(
              absl::StrCat("static '", request.name(), "': ", encoded.message())));
        }
        held->library->WriteStatic(*info, std::move(bytes), held->deadline,
                                   [held, done = std::move(done)](absl::Status written) mutable {
                                     held.reset();
                                     if (!written.ok()) return done(written);
                                     done(v1::WriteStaticResponse());
                                   });
      });
}

}  // namespace ffibroker
