// SessionManager: classes, instances and statics (see session_manager.h).
#include <set>

#include "absl/strings/str_cat.h"
#include "common/checked_math.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/value_codec.h"
#include "daemon/session_manager.h"

namespace ffibroker {
namespace {

// Time a destructor may take at session end, per instance.
constexpr absl::Duration kReleaseTimeout = absl::Seconds(2);

worker::v1::DaemonToWorker FreeRequest(uint64_t worker_id) {
  worker::v1::DaemonToWorker request;
  request.mutable_instance_free()->set_instance_id(worker_id);
  return request;
}

// Bytes read from a worker are the library's: an invalid value is DATA_LOSS.
absl::Status FromWorker(uint64_t handle, const TypeDesc& klass, const absl::Status& status) {
  return absl::DataLossError(absl::StrCat("instance ", handle, " (", klass.name,
                                          ") holds an invalid value: ", status.message()));
}

}  // namespace

absl::Time SessionManager::CapDeadline(absl::Time deadline) const {
  return std::min(deadline, now_() + absl::Milliseconds(policies_->Get()->limits().max_call_millis()));
}

absl::StatusOr<std::shared_ptr<Library>> SessionManager::FindLibrary(const std::string& id, const Caller& caller,
                                                                     uint64_t handle,
                                                                     uint64_t* serial) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Session * session, FindLocked(id, caller));
  auto it = session->libraries.find(handle);
  if (it == session->libraries.end()) {
    return absl::NotFoundError(
        absl::StrCat("library handle ", handle, " is not open in this session"));
  }
  *serial = session->serial;
  return it->second.library;
}

absl::StatusOr<std::pair<InstanceTable::Record, std::shared_ptr<Library>>>
SessionManager::FindInstance(const std::string& id, const Caller& caller,
                             uint64_t handle) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Session * session, FindLocked(id, caller));
  ASSIGN_OR_RETURN(InstanceTable::Record record, instances_.Find(handle, session->serial));
  auto it = session->libraries.find(record.library);
  if (it == session->libraries.end()) {  // cannot happen: closing releases
    return absl::FailedPreconditionError(
        absl::StrCat("instance handle ", handle, "'s library was closed"));
  }
  return std::make_pair(std::move(record), it->second.library);
}

InstanceContext SessionManager::ContextFor(uint64_t serial, uint64_t library) {
  InstanceContext context;
  std::shared_ptr<const Policy> policy = policies_->Get();
  context.max_buffer_bytes = policy->limits().max_buffer_bytes();
  context.max_string_bytes = policy->limits().max_string_bytes();
  context.map = [this, serial, library](const TypeDesc& klass, uint64_t handle,
                                        uint64_t generation) -> absl::StatusOr<uint64_t> {
    ASSIGN_OR_RETURN(InstanceTable::Record record, instances_.Find(handle, serial));
    if (record.klass.get() != &klass) {
      return absl::InvalidArgumentError(absl::StrCat(
          "instance handle ", handle, " is a ", record.klass->name, ", not a ", klass.name));
    }
    if (record.library != library) {
      return absl::InvalidArgumentError(absl::StrCat(
          "instance handle ", handle, " lives in library ", record.library,
          ", not in library ", library, " (instances cannot move between workers)"));
    }
    if (record.generation != generation) {
      instances_.Take(handle, serial, "was lost when its worker died").IgnoreError();
      return absl::FailedPreconditionError(absl::StrCat(
          "instance handle ", handle, " is stale: the worker that held it died and "
          "was replaced, and its instances were lost"));
    }
    return record.worker_id;
  };
  context.adopt = [this, serial, library](const TypeDesc& type, uint64_t worker_id,
                                          uint64_t generation) {
    InstanceTable::Record record;
    record.session = serial;
    record.library = library;
    record.klass = type.element;
    record.worker_id = worker_id;
    record.generation = generation;
    record.owned = type.ownership == v1::HandleType::OWNERSHIP_OWNED;
    return instances_.Add(std::move(record));
  };
  return context;
}

uint32_t SessionManager::ReleaseInstances(
    uint64_t serial, uint64_t library,
    const std::map<uint64_t, std::shared_ptr<Library>>& libraries, const std::string& reason) {
  auto released = instances_.TakeAll(serial, library, reason);
  int destructors = 0;
  for (const auto& [handle, record] : released) {
    if (!record.owned) continue;  // worker memory dies with the worker
    auto it = libraries.find(record.library);
    if (it == libraries.end()) continue;
    absl::StatusOr<worker::v1::InstanceResult> freed = it->second->InstanceOp(
        FreeRequest(record.worker_id), record.generation, now_() + kReleaseTimeout);
    if (freed.ok() && freed->destructor_called()) ++destructors;
  }
  if (!released.empty()) {
    LOG_INFO("session s%d: %d instances released, %d destructors called", serial,
             released.size(), destructors);
  }
  return static_cast<uint32_t>(released.size());
}

absl::StatusOr<v1::RegisterClassResponse> SessionManager::RegisterClass(
    const v1::RegisterClassRequest& request, const Caller& caller) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Session * session, FindLocked(request.session_id(), caller));
  v1::RegisterClassResponse response;
  ASSIGN_OR_RETURN(*response.mutable_layout(), session->classes.Register(request.definition()));
  return response;
}

absl::StatusOr<v1::NewInstanceResponse> SessionManager::NewInstance(
    const v1::NewInstanceRequest& request, const Caller& caller, absl::Time deadline) {
  uint64_t serial;
  ASSIGN_OR_RETURN(std::shared_ptr<Library> lib,
                   FindLibrary(request.session_id(), caller, request.library_handle(), &serial));
  TypeRef klass;
  {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(Session * session, FindLocked(request.session_id(), caller));
    klass = session->classes.FindClass(request.class_name());
  }
  if (klass == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("class '", request.class_name(), "' is not registered in this session"));
  }
  if (klass->opaque) {
    return absl::InvalidArgumentError(absl::StrCat(
        "class '", klass->name, "' is opaque: only the library can create instances"));
  }
  if (klass->class_index >= lib->class_count()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "class '", klass->name, "' was registered after library ", request.library_handle(),
        " was opened; open the library again to use it"));
  }
  if (klass->size == 0 || klass->size > kMaxClassBytes) {  // Register guarantees it
    return absl::InternalError(absl::StrCat("class '", klass->name, "' has size ", klass->size,
                                            ", outside 1..", kMaxClassBytes));
  }
  std::string init(klass->size, '\0');
  RETURN_IF_ERROR(EncodeFields(*klass, request.fields(), false, &init));
  absl::Status complete = DecodeInline(*klass, init).status();  // zeroed fields valid?
  if (!complete.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        complete.message(), " (fields not given are zero; give this one a value)"));
  }
  worker::v1::DaemonToWorker message;
  message.mutable_instance_new()->set_class_index(static_cast<uint32_t>(klass->class_index));
  message.mutable_instance_new()->set_init(init);
  uint64_t generation = 0;
  ASSIGN_OR_RETURN(worker::v1::InstanceResult result,
                   lib->InstanceOp(message, 0, CapDeadline(deadline), &generation));
  if (result.instance_id() == 0) {
    return absl::UnavailableError("the worker answered NewInstance without an instance id");
  }
  InstanceTable::Record record;
  record.session = serial;
  record.library = request.library_handle();
  record.klass = klass;
  record.worker_id = result.instance_id();
  record.generation = generation;
  v1::NewInstanceResponse response;
  response.set_handle(instances_.Add(std::move(record)));
  return response;
}

absl::StatusOr<v1::ReadFieldsResponse> SessionManager::ReadFields(
    const v1::ReadFieldsRequest& request, const Caller& caller, absl::Time deadline) {
  ASSIGN_OR_RETURN(auto found, FindInstance(request.session_id(), caller, request.handle()));
  auto& [record, lib] = found;
  const TypeDesc& klass = *record.klass;
  if (klass.opaque) {
    return absl::FailedPreconditionError(absl::StrCat(
        "class '", klass.name, "' is opaque: its fields are only reachable through "
        "the library's functions (e.g. ", klass.name, "__field)"));
  }
  std::set<std::string> wanted(request.fields().begin(), request.fields().end());
  for (const std::string& name : wanted) {
    if (klass.FindField(name) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("class ", klass.name, " has no field '", name, "'"));
    }
  }
  worker::v1::DaemonToWorker message;
  message.mutable_instance_read()->set_instance_id(record.worker_id);
  message.mutable_instance_read()->set_size(klass.size);
  absl::StatusOr<worker::v1::InstanceResult> result =
      lib->InstanceOp(message, record.generation, CapDeadline(deadline));
  if (absl::IsFailedPrecondition(result.status())) {
    instances_.Take(request.handle(), record.session, "was lost when its worker died")
        .IgnoreError();
  }
  if (!result.ok()) return result.status();
  if (result->data().size() != klass.size) {
    return absl::UnavailableError("the worker sent an instance of the wrong size");
  }
  v1::ReadFieldsResponse response;
  for (const FieldDesc& f : klass.fields) {
    if (!wanted.empty() && !wanted.count(f.name)) continue;
    if (!RangeWithin(f.offset, f.type->size, result->data().size())) {
      return absl::InternalError(absl::StrCat("layout of ", klass.name, " puts field '", f.name,
                                              "' outside its ", klass.size, " bytes"));
    }
    absl::StatusOr<v1::Value> value = DecodeInline(
        *f.type, absl::string_view(result->data()).substr(f.offset, f.type->size));
    if (!value.ok()) {
      return FromWorker(request.handle(), klass,
                        absl::InvalidArgumentError(absl::StrCat(
                            "field '", f.name, "': ", value.status().message())));
    }
    v1::FieldValue* out = response.mutable_fields()->add_fields();
    out->set_name(f.name);
    *out->mutable_value() = std::move(*value);
  }
  return response;
}

absl::StatusOr<v1::WriteFieldsResponse> SessionManager::WriteFields(
    const v1::WriteFieldsRequest& request, const Caller& caller, absl::Time deadline) {
  ASSIGN_OR_RETURN(auto found, FindInstance(request.session_id(), caller, request.handle()));
  auto& [record, lib] = found;
  const TypeDesc& klass = *record.klass;
  if (klass.opaque) {
    return absl::FailedPreconditionError(absl::StrCat(
        "class '", klass.name, "' is opaque: use its setter functions (", klass.name,
        "__set_field)"));
  }
  // Encode every field first: nothing is written unless all are valid.
  std::vector<worker::v1::DaemonToWorker> writes;
  std::set<std::string> seen;
  for (const v1::FieldValue& fv : request.fields().fields()) {
    const FieldDesc* field = klass.FindField(fv.name());
    if (field == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("class ", klass.name, " has no field '", fv.name(), "'"));
    }
    if (!field->is_mutable) {
      return absl::InvalidArgumentError(absl::StrCat(
          "field '", fv.name(), "' of ", klass.name, " is not mutable"));
    }
    if (!seen.insert(fv.name()).second) {
      return absl::InvalidArgumentError(absl::StrCat("field '", fv.name(), "' is given twice"));
    }
    std::string bytes;
    absl::Status encoded = EncodeInline(*field->type, fv.value(), &bytes);
    if (!encoded.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("field '", fv.name(), "': ", encoded.message()));
    }
    worker::v1::DaemonToWorker& message = writes.emplace_back();
    message.mutable_instance_write()->set_instance_id(record.worker_id);
    message.mutable_instance_write()->set_offset(field->offset);
    message.mutable_instance_write()->set_data(std::move(bytes));
  }
  for (const worker::v1::DaemonToWorker& message : writes) {
    absl::StatusOr<worker::v1::InstanceResult> result =
        lib->InstanceOp(message, record.generation, CapDeadline(deadline));
    if (absl::IsFailedPrecondition(result.status())) {
      instances_.Take(request.handle(), record.session, "was lost when its worker died")
          .IgnoreError();
    }
    RETURN_IF_ERROR(result.status());
  }
  return v1::WriteFieldsResponse();
}

absl::StatusOr<v1::FreeInstanceResponse> SessionManager::FreeInstance(
    const v1::FreeInstanceRequest& request, const Caller& caller, absl::Time deadline) {
  std::shared_ptr<Library> lib;
  InstanceTable::Record record;
  {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(Session * session, FindLocked(request.session_id(), caller));
    ASSIGN_OR_RETURN(record, instances_.Take(request.handle(), session->serial, "was freed"));
    auto it = session->libraries.find(record.library);
    if (it != session->libraries.end()) lib = it->second.library;
  }
  v1::FreeInstanceResponse response;
  if (lib == nullptr) return response;
  ASSIGN_OR_RETURN(worker::v1::InstanceResult result,
                   lib->InstanceOp(FreeRequest(record.worker_id), record.generation,
                                   CapDeadline(deadline)));
  response.set_destructor_called(result.destructor_called());
  return response;
}

absl::StatusOr<v1::ReadStaticResponse> SessionManager::ReadStatic(
    const v1::ReadStaticRequest& request, const Caller& caller, absl::Time deadline) {
  uint64_t serial;
  ASSIGN_OR_RETURN(std::shared_ptr<Library> lib,
                   FindLibrary(request.session_id(), caller, request.library_handle(), &serial));
  ASSIGN_OR_RETURN(Library::StaticInfo info, lib->FindStatic(request.name()));
  worker::v1::DaemonToWorker message;
  message.mutable_static_access()->set_index(static_cast<uint32_t>(info.index));
  ASSIGN_OR_RETURN(worker::v1::InstanceResult result,
                   lib->InstanceOp(message, 0, CapDeadline(deadline)));
  if (result.data().size() != info.type->size) {
    return absl::UnavailableError("the worker sent a static of the wrong size");
  }
  absl::StatusOr<v1::Value> value = DecodeInline(*info.type, result.data());
  if (!value.ok()) {
    return absl::DataLossError(absl::StrCat("static '", request.name(),
                                            "' holds an invalid value: ", value.status().message()));
  }
  v1::ReadStaticResponse response;
  *response.mutable_value() = std::move(*value);
  return response;
}

absl::StatusOr<v1::WriteStaticResponse> SessionManager::WriteStatic(
    const v1::WriteStaticRequest& request, const Caller& caller, absl::Time deadline) {
  uint64_t serial;
  ASSIGN_OR_RETURN(std::shared_ptr<Library> lib,
                   FindLibrary(request.session_id(), caller, request.library_handle(), &serial));
  ASSIGN_OR_RETURN(Library::StaticInfo info, lib->FindStatic(request.name()));
  if (!info.is_mutable) {
    return absl::InvalidArgumentError(
        absl::StrCat("static '", request.name(), "' was not declared mutable"));
  }
  std::string bytes;
  absl::Status encoded = EncodeInline(*info.type, request.value(), &bytes);
  if (!encoded.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("static '", request.name(), "': ", encoded.message()));
  }
  worker::v1::DaemonToWorker message;
  message.mutable_static_access()->set_index(static_cast<uint32_t>(info.index));
  message.mutable_static_access()->set_write(true);
  message.mutable_static_access()->set_data(std::move(bytes));
  RETURN_IF_ERROR(lib->InstanceOp(message, 0, CapDeadline(deadline)).status());
  return v1::WriteStaticResponse();
}

}  // namespace ffibroker
