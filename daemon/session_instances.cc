// SessionManager (session_manager.h): instance operations — classes,
// instances and statics, the instance hooks of a call, and releasing a
// session's instances.
#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/checked_math.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/value_codec.h"
#include "daemon/session_manager.h"

namespace ffibroker {
namespace {

// Bytes read from a worker are the library's: an invalid value is DATA_LOSS.
absl::Status FromWorker(uint64_t handle, const TypeDesc& klass, const absl::Status& status) {
  return absl::DataLossError(absl::StrCat("instance ", handle, " (", klass.name,
                                          ") holds an invalid value: ", status.message()));
}

}  // namespace

InstanceHooks SessionManager::ContextFor(uint64_t serial, uint64_t library,
                                         std::vector<PrincipalQuota::Reservation> reserved) {
  InstanceHooks context;
  std::shared_ptr<const Policy> policy = policies_->Get();
  context.max_buffer_bytes = policy->limits().max_buffer_bytes();
  context.max_string_bytes = policy->limits().max_string_bytes();
  context.map = [this, serial, library](
                    const TypeDesc& klass, uint64_t handle,
                    const std::function<bool(uint64_t)>& live) -> absl::StatusOr<InstanceRef> {
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
    if (!live(record.generation)) {
      instances_.Take(handle, serial, "was lost when its worker died").IgnoreError();
      return absl::FailedPreconditionError(absl::StrCat(
          "instance handle ", handle, " is stale: the worker that held it died and "
          "was replaced, and its instances were lost"));
    }
    return InstanceRef{record.worker_id, record.generation};
  };
  // The instance limit's slots reserved before the call ran (one per
  // result that is an instance handle), handed to the handles it makes.
  struct Reserved {
    absl::Mutex mu;
    std::vector<PrincipalQuota::Reservation> slots ABSL_GUARDED_BY(mu);
  };
  auto slots = std::make_shared<Reserved>();
  {
    absl::MutexLock lock(&slots->mu);
    slots->slots = std::move(reserved);
  }
  context.adopt = [this, serial, library, slots](const TypeDesc& type,
                                                 const InstanceRef& where) {
    InstanceTable::Record record;
    record.session = serial;
    record.library = library;
    record.klass = type.element;
    record.worker_id = where.worker_id;
    record.generation = where.generation;
    record.owned = type.ownership == v1::HandleType::OWNERSHIP_OWNED;
    PrincipalQuota::Reservation slot;
    {
      absl::MutexLock lock(&slots->mu);
      if (!slots->slots.empty()) {
        slot = std::move(slots->slots.back());
        slots->slots.pop_back();
      }
    }
    return instances_.Add(std::move(record), std::move(slot));
  };
  return context;
}

uint32_t SessionManager::ReleaseInstances(
    uint64_t serial, uint64_t library,
    const std::map<uint64_t, std::shared_ptr<Library>>& libraries, const std::string& reason,
    absl::Time deadline) {
  auto released = instances_.TakeAll(serial, library, reason);
  // Every destructor is sent at once, pipelined to its worker: workers run
  // theirs concurrently, and one deadline bounds them all (past it the
  // watcher kills the workers still running one).
  struct Tally {
    absl::Mutex mu;
    int pending ABSL_GUARDED_BY(mu) = 0;
    int destructors ABSL_GUARDED_BY(mu) = 0;
    std::set<uint64_t> late ABSL_GUARDED_BY(mu);  // libraries cut off by the deadline
  };
  auto tally = std::make_shared<Tally>();
  for (const auto& [handle, record] : released) {
    if (!record.owned) continue;  // worker memory dies with the worker
    auto it = libraries.find(record.library);
    if (it == libraries.end()) continue;
    {
      absl::MutexLock lock(&tally->mu);
      ++tally->pending;
    }
    uint64_t lib = record.library;
    it->second->SubmitFree(
        {record.worker_id, record.generation}, deadline,
        [tally, lib](absl::StatusOr<bool> freed) {
          absl::MutexLock lock(&tally->mu);
          --tally->pending;
          if (freed.ok() && *freed) ++tally->destructors;
          if (absl::IsDeadlineExceeded(freed.status())) tally->late.insert(lib);
        });
  }
  int destructors;
  std::set<uint64_t> late;
  {
    absl::MutexLock lock(&tally->mu);
    tally->mu.Await(absl::Condition(
        +[](Tally* t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t->mu) { return t->pending == 0; },
        tally.get()));
    destructors = tally->destructors;
    late = tally->late;
  }
  for (uint64_t lib : late) {
    auto it = libraries.find(lib);
    it->second->Stop();
    LOG_WARNING("session s%d: the release deadline passed; killed the worker of %s (its other "
                "instances were dropped without destructors)",
                serial, it->second->path());
  }
  if (!released.empty()) {
    LOG_INFO("session s%d: %d instances released, %d destructors called", serial,
             released.size(), destructors);
  }
  return static_cast<uint32_t>(released.size());
}

absl::StatusOr<v1::RegisterClassResponse> SessionManager::RegisterClass(
    const v1::RegisterClassRequest& request, const Caller& caller) {
  ASSIGN_OR_RETURN(PrincipalQuota::Reservation quota, Reserve(caller, Resource::kClasses));
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Session * session, FindLocked(request.session_id(), caller));
  v1::RegisterClassResponse response;
  ASSIGN_OR_RETURN(*response.mutable_layout(), session->classes.Register(request.definition()));
  session->class_quota.push_back(std::move(quota));  // given back when the session ends
  return response;
}

absl::StatusOr<std::set<std::string>> SessionManager::ClassNames(
    const std::string& session_id, const Caller& caller) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Session * session, FindLocked(session_id, caller));
  std::set<std::string> names;
  for (const v1::ClassDefinition& def : session->classes.definitions()) names.insert(def.name());
  return names;
}

absl::StatusOr<v1::NewInstanceResponse> SessionManager::NewInstance(
    const v1::NewInstanceRequest& request, const Caller& caller, absl::Time deadline) {
  ASSIGN_OR_RETURN(Authorized op, Authorize(request.session_id(), caller,
                                            request.library_handle(), "NewInstance",
                                            request.class_name(), deadline, NewHandle::kYes));
  const std::shared_ptr<Library>& lib = op.library;
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
  ASSIGN_OR_RETURN(InstanceRef where, lib->NewInstance(*klass, std::move(init), op.deadline));
  InstanceTable::Record record;
  record.session = op.serial;
  record.library = request.library_handle();
  record.klass = klass;
  record.worker_id = where.worker_id;
  record.generation = where.generation;
  v1::NewInstanceResponse response;
  response.set_handle(instances_.Add(std::move(record), std::move(op.instance)));
  return response;
}

absl::StatusOr<v1::ReadFieldsResponse> SessionManager::ReadFields(
    const v1::ReadFieldsRequest& request, const Caller& caller, absl::Time deadline) {
  ASSIGN_OR_RETURN(auto found, AuthorizeInstance(request.session_id(), caller,
                                                  request.handle(), "ReadFields", deadline));
  auto& [record, op] = found;
  const std::shared_ptr<Library>& lib = op.library;
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
  absl::StatusOr<std::string> data =
      lib->ReadInstance({record.worker_id, record.generation}, klass.size, op.deadline);
  if (absl::IsFailedPrecondition(data.status())) {
    instances_.Take(request.handle(), record.session, "was lost when its worker died")
        .IgnoreError();
  }
  if (!data.ok()) return data.status();
  v1::ReadFieldsResponse response;
  for (const FieldDesc& f : klass.fields) {
    if (!wanted.empty() && !wanted.count(f.name)) continue;
    if (!RangeWithin(f.offset, f.type->size, data->size())) {
      return absl::InternalError(absl::StrCat("layout of ", klass.name, " puts field '", f.name,
                                              "' outside its ", klass.size, " bytes"));
    }
    absl::StatusOr<v1::Value> value = DecodeInline(
        *f.type, absl::string_view(*data).substr(f.offset, f.type->size));
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
  ASSIGN_OR_RETURN(auto found, AuthorizeInstance(request.session_id(), caller,
                                                  request.handle(), "WriteFields", deadline));
  auto& [record, op] = found;
  const std::shared_ptr<Library>& lib = op.library;
  const TypeDesc& klass = *record.klass;
  if (klass.opaque) {
    return absl::FailedPreconditionError(absl::StrCat(
        "class '", klass.name, "' is opaque: use its setter functions (", klass.name,
        "__set_field)"));
  }
  // Encode every field first: nothing is written unless all are valid. All
  // of them go to the worker in one exchange.
  std::vector<Library::Span> spans;
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
    spans.push_back({field->offset, std::move(bytes)});
  }
  if (spans.empty()) return v1::WriteFieldsResponse();
  absl::Status written =
      lib->WriteInstance({record.worker_id, record.generation}, std::move(spans), op.deadline);
  if (absl::IsFailedPrecondition(written)) {
    instances_.Take(request.handle(), record.session, "was lost when its worker died")
        .IgnoreError();
  }
  RETURN_IF_ERROR(written);
  return v1::WriteFieldsResponse();
}

absl::StatusOr<v1::FreeInstanceResponse> SessionManager::FreeInstance(
    const v1::FreeInstanceRequest& request, const Caller& caller, absl::Time deadline) {
  // Authorized like any operation (the destructor is library code); only
  // then is the handle taken.
  ASSIGN_OR_RETURN(auto found, AuthorizeInstance(request.session_id(), caller,
                                                  request.handle(), "FreeInstance", deadline));
  Authorized& op = found.second;
  ASSIGN_OR_RETURN(InstanceTable::Record record,
                   instances_.Take(request.handle(), op.serial, "was freed"));
  v1::FreeInstanceResponse response;
  ASSIGN_OR_RETURN(bool destructor_called,
                   op.library->FreeInstance({record.worker_id, record.generation},
                                            op.deadline));
  response.set_destructor_called(destructor_called);
  return response;
}

absl::StatusOr<v1::ReadStaticResponse> SessionManager::ReadStatic(
    const v1::ReadStaticRequest& request, const Caller& caller, absl::Time deadline) {
  ASSIGN_OR_RETURN(Authorized op, Authorize(request.session_id(), caller,
                                            request.library_handle(), "ReadStatic",
                                            request.name(), deadline));
  const std::shared_ptr<Library>& lib = op.library;
  ASSIGN_OR_RETURN(Library::StaticInfo info, lib->FindStatic(request.name()));
  ASSIGN_OR_RETURN(std::string data, lib->ReadStatic(info, op.deadline));
  absl::StatusOr<v1::Value> value = DecodeInline(*info.type, data);
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
  ASSIGN_OR_RETURN(Authorized op, Authorize(request.session_id(), caller,
                                            request.library_handle(), "WriteStatic",
                                            request.name(), deadline));
  const std::shared_ptr<Library>& lib = op.library;
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
  RETURN_IF_ERROR(lib->WriteStatic(info, std::move(bytes), op.deadline));
  return v1::WriteStaticResponse();
}

}  // namespace ffibroker
