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

uint64_t SessionManager::AddInstance(InstanceTable::Record record,
                                     PrincipalQuota::Reservation slot,
                                     const std::shared_ptr<bool>& open) {
  const uint64_t serial = record.session;
  absl::MutexLock lock(&mu_);  // a close marks `open` and takes the instances under it
  uint64_t handle = instances_.Add(std::move(record), std::move(slot));
  if (open == nullptr || !*open) {
    instances_.Take(handle, serial, "was released when its library or session was closed")
        .IgnoreError();
  }
  return handle;
}

InstanceHooks SessionManager::ContextFor(uint64_t serial, uint64_t library,
                                         std::shared_ptr<bool> open,
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
  context.adopt = [this, serial, library, slots, open = std::move(open)](
                      const TypeDesc& type, const InstanceRef& where) {
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
    return AddInstance(std::move(record), std::move(slot), open);
  };
  return context;
}

void SessionManager::ReleaseInstances(uint64_t serial, uint64_t library,
                                      std::map<uint64_t, std::shared_ptr<Library>> libraries,
                                      const std::string& reason, absl::Time deadline,
                                      absl::AnyInvocable<void()> then) {
  auto released = instances_.TakeAll(serial, library, reason);
  // Every destructor is sent at once, pipelined to its worker: workers run
  // theirs concurrently, and one deadline bounds them all (past it the
  // watcher kills the workers still running one). Nothing waits for them:
  // the last answer finishes the release.
  struct Tally {
    absl::Mutex mu;
    int pending ABSL_GUARDED_BY(mu) = 1;  // the sender's own, dropped once all are sent
    int destructors ABSL_GUARDED_BY(mu) = 0;
    std::set<uint64_t> late ABSL_GUARDED_BY(mu);  // libraries cut off by the deadline
    uint64_t serial = 0;
    size_t released = 0;
    // Taken out by the last answer: what they hold (the libraries, and
    // through them their workers' reservations; what `then` captured) is
    // let go of before the release counts as finished.
    std::map<uint64_t, std::shared_ptr<Library>> libraries ABSL_GUARDED_BY(mu);
    absl::AnyInvocable<void()> then ABSL_GUARDED_BY(mu);
  };
  {
    absl::MutexLock lock(&release_mu_);
    ++releasing_;
  }
  auto tally = std::make_shared<Tally>();
  tally->serial = serial;
  tally->released = released.size();
  {
    absl::MutexLock lock(&tally->mu);
    tally->libraries = libraries;
    tally->then = std::move(then);
  }
  // Runs once, after the last answer (or the sender, if it is last).
  auto answered = [this](const std::shared_ptr<Tally>& t, bool destructor, bool late,
                         uint64_t lib) {
    std::set<uint64_t> cut_off;
    int destructors;
    std::map<uint64_t, std::shared_ptr<Library>> libs;
    absl::AnyInvocable<void()> finish;
    {
      absl::MutexLock lock(&t->mu);
      if (destructor) ++t->destructors;
      if (late) t->late.insert(lib);
      if (--t->pending > 0) return;
      cut_off = t->late;
      destructors = t->destructors;
      libs = std::move(t->libraries);
      finish = std::move(t->then);
    }
    for (uint64_t cut : cut_off) {
      auto it = libs.find(cut);
      it->second->Stop();
      LOG_WARNING("session s%d: the release deadline passed; killed the worker of %s (its other "
                  "instances were dropped without destructors)",
                  t->serial, it->second->path());
    }
    libs.clear();
    if (t->released > 0) {
      LOG_INFO("session s%d: %d instances released, %d destructors called", t->serial,
               t->released, destructors);
    }
    finish();
    finish = nullptr;  // what it captured goes first
    absl::MutexLock lock(&release_mu_);
    --releasing_;
  };
  for (const auto& [handle, record] : released) {
    if (!record.owned) continue;  // worker memory dies with the worker
    auto it = libraries.find(record.library);
    if (it == libraries.end()) continue;
    {
      absl::MutexLock lock(&tally->mu);
      ++tally->pending;
    }
    uint64_t lib = record.library;
    it->second->FreeInstance({record.worker_id, record.generation}, deadline,
                             [tally, lib, answered](absl::StatusOr<bool> freed) {
                               answered(tally, freed.ok() && *freed,
                                        absl::IsDeadlineExceeded(freed.status()), lib);
                             });
  }
  answered(tally, false, false, 0);
}

void SessionManager::AwaitReleases() {
  absl::MutexLock lock(&release_mu_);
  release_mu_.Await(absl::Condition(
      +[](int* n) { return *n == 0; }, &releasing_));
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

absl::StatusOr<std::string> SessionManager::NewInstanceBytes(
    const v1::NewInstanceRequest& request, const Caller& caller, const Library& lib,
    TypeRef* klass) {
  {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(Session * session, FindLocked(request.session_id(), caller));
    *klass = session->classes.FindClass(request.class_name());
  }
  if (*klass == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("class '", request.class_name(), "' is not registered in this session"));
  }
  const TypeDesc& type = **klass;
  if (type.opaque) {
    return absl::InvalidArgumentError(absl::StrCat(
        "class '", type.name, "' is opaque: only the library can create instances"));
  }
  if (type.class_index >= lib.class_count()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "class '", type.name, "' was registered after library ", request.library_handle(),
        " was opened; open the library again to use it"));
  }
  if (type.size == 0 || type.size > kMaxClassBytes) {  // Register guarantees it
    return absl::InternalError(absl::StrCat("class '", type.name, "' has size ", type.size,
                                            ", outside 1..", kMaxClassBytes));
  }
  std::string init(type.size, '\0');
  RETURN_IF_ERROR(EncodeFields(type, request.fields(), false, &init));
  absl::Status complete = DecodeInline(type, init).status();  // zeroed fields valid?
  if (!complete.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        complete.message(), " (fields not given are zero; give this one a value)"));
  }
  return init;
}

void SessionManager::NewInstance(const v1::NewInstanceRequest& request, const Caller& caller,
                                 absl::Time deadline, Reply<v1::NewInstanceResponse> done) {
  WithLibrary(
      request.session_id(), caller, request.library_handle(), "NewInstance", request.class_name(),
      deadline, NewHandle::kYes,
      [this, request, caller, done = std::move(done)](
          absl::StatusOr<std::shared_ptr<Authorized>> op) mutable {
        if (!op.ok()) return done(op.status());
        std::shared_ptr<Authorized> held = *std::move(op);
        TypeRef klass;
        absl::StatusOr<std::string> init =
            NewInstanceBytes(request, caller, *held->library, &klass);
        if (!init.ok()) return done(init.status());
        held->library->NewInstance(
            *klass, *std::move(init), held->deadline,
            [this, held, klass, library = request.library_handle(),
             done = std::move(done)](absl::StatusOr<InstanceRef> where) mutable {
              if (!where.ok()) return done(where.status());
              InstanceTable::Record record;
              record.session = held->serial;
              record.library = library;
              record.klass = klass;
              record.worker_id = where->worker_id;
              record.generation = where->generation;
              v1::NewInstanceResponse response;
              response.set_handle(
                  AddInstance(std::move(record), std::move(held->instance), held->open));
              held.reset();  // the calls-in-flight slot is free before the answer
              done(std::move(response));
            });
      });
}

void SessionManager::WithInstance(
    const std::string& id, const Caller& caller, uint64_t handle, absl::string_view operation,
    absl::Time deadline,
    absl::AnyInvocable<void(absl::StatusOr<std::shared_ptr<HeldInstance>>)> next) {
  absl::StatusOr<std::pair<InstanceTable::Record, Authorized>> found =
      AuthorizeInstance(id, caller, handle, operation, deadline);
  if (!found.ok()) return next(found.status());
  auto op = std::make_shared<HeldInstance>();
  op->record = std::move(found->first);
  absl::StatusOr<Authorized> authorized = std::move(found->second);
  const uint64_t library = op->record.library;
  const std::string klass = op->record.klass->name;
  WhenCharged(std::move(authorized), caller, library, std::string(operation), klass,
              [op, next = std::move(next)](
                  absl::StatusOr<std::shared_ptr<Authorized>> held) mutable {
                if (!held.ok()) return next(held.status());
                op->authorized = *std::move(held);
                next(std::move(op));
              });
}

void SessionManager::ForgetIfStale(const HeldInstance& op, uint64_t handle,
                                   const absl::Status& status) {
  if (absl::IsFailedPrecondition(status)) {
    instances_.Take(handle, op.record.session, "was lost when its worker died").IgnoreError();
  }
}

void SessionManager::ReadFields(const v1::ReadFieldsRequest& request, const Caller& caller,
                                absl::Time deadline, Reply<v1::ReadFieldsResponse> done) {
  WithInstance(request.session_id(), caller, request.handle(), "ReadFields", deadline,
               [this, request, done = std::move(done)](
                   absl::StatusOr<std::shared_ptr<HeldInstance>> found) mutable {
    if (!found.ok()) return done(found.status());
    std::shared_ptr<HeldInstance> op = *std::move(found);
    const TypeDesc& klass = *op->record.klass;
    if (klass.opaque) {
      return done(absl::FailedPreconditionError(absl::StrCat(
          "class '", klass.name, "' is opaque: its fields are only reachable through "
          "the library's functions (e.g. ", klass.name, "__field)")));
    }
    std::set<std::string> wanted(request.fields().begin(), request.fields().end());
    for (const std::string& name : wanted) {
      if (klass.FindField(name) == nullptr) {
        return done(absl::InvalidArgumentError(
            absl::StrCat("class ", klass.name, " has no field '", name, "'")));
      }
    }
    std::shared_ptr<Library> lib = op->authorized->library;
    lib->ReadInstance(
        {op->record.worker_id, op->record.generation}, klass.size, op->authorized->deadline,
        [this, op, handle = request.handle(), wanted = std::move(wanted),
         done = std::move(done)](absl::StatusOr<std::string> data) mutable {
          ForgetIfStale(*op, handle, data.status());
          op->authorized.reset();  // the calls-in-flight slot is free before the answer
          if (!data.ok()) return done(data.status());
          done(FieldsOf(*op->record.klass, handle, *data, wanted));
        });
  });
}

absl::StatusOr<v1::ReadFieldsResponse> SessionManager::FieldsOf(
    const TypeDesc& klass, uint64_t handle, const std::string& data,
    const std::set<std::string>& wanted) {
  v1::ReadFieldsResponse response;
  for (const FieldDesc& f : klass.fields) {
    if (!wanted.empty() && !wanted.count(f.name)) continue;
    if (!RangeWithin(f.offset, f.type->size, data.size())) {
      return absl::InternalError(absl::StrCat("layout of ", klass.name, " puts field '", f.name,
                                              "' outside its ", klass.size, " bytes"));
    }
    absl::StatusOr<v1::Value> value =
        DecodeInline(*f.type, absl::string_view(data).substr(f.offset, f.type->size));
    if (!value.ok()) {
      return FromWorker(handle, klass,
                        absl::InvalidArgumentError(absl::StrCat(
                            "field '", f.name, "': ", value.status().message())));
    }
    v1::FieldValue* out = response.mutable_fields()->add_fields();
    out->set_name(f.name);
    *out->mutable_value() = std::move(*value);
  }
  return response;
}

absl::StatusOr<std::vector<Library::Span>> SessionManager::FieldSpans(
    const TypeDesc& klass, const v1::StructValue& fields) {
  if (klass.opaque) {
    return absl::FailedPreconditionError(absl::StrCat(
        "class '", klass.name, "' is opaque: use its setter functions (", klass.name,
        "__set_field)"));
  }
  // Every field is encoded first: nothing is written unless all are valid.
  std::vector<Library::Span> spans;
  std::set<std::string> seen;
  for (const v1::FieldValue& fv : fields.fields()) {
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
  return spans;
}

void SessionManager::WriteFields(const v1::WriteFieldsRequest& request, const Caller& caller,
                                 absl::Time deadline, Reply<v1::WriteFieldsResponse> done) {
  WithInstance(request.session_id(), caller, request.handle(), "WriteFields", deadline,
               [this, request, done = std::move(done)](
                   absl::StatusOr<std::shared_ptr<HeldInstance>> found) mutable {
    if (!found.ok()) return done(found.status());
    std::shared_ptr<HeldInstance> op = *std::move(found);
    absl::StatusOr<std::vector<Library::Span>> spans =
        FieldSpans(*op->record.klass, request.fields());
    if (!spans.ok()) return done(spans.status());
    if (spans->empty()) return done(v1::WriteFieldsResponse());
    // All of them go to the worker in one exchange.
    std::shared_ptr<Library> lib = op->authorized->library;
    lib->WriteInstance({op->record.worker_id, op->record.generation}, *std::move(spans),
                       op->authorized->deadline,
                       [this, op, handle = request.handle(),
                        done = std::move(done)](absl::Status written) mutable {
                         ForgetIfStale(*op, handle, written);
                         op->authorized.reset();
                         if (!written.ok()) return done(written);
                         done(v1::WriteFieldsResponse());
                       });
  });
}

void SessionManager::FreeInstance(const v1::FreeInstanceRequest& request, const Caller& caller,
                                  absl::Time deadline, Reply<v1::FreeInstanceResponse> done) {
  // Authorized like any operation (the destructor is library code); only
  // then is the handle taken.
  WithInstance(request.session_id(), caller, request.handle(), "FreeInstance", deadline,
               [this, handle = request.handle(), done = std::move(done)](
                   absl::StatusOr<std::shared_ptr<HeldInstance>> found) mutable {
    if (!found.ok()) return done(found.status());
    std::shared_ptr<HeldInstance> op = *std::move(found);
    absl::StatusOr<InstanceTable::Record> record =
        instances_.Take(handle, op->authorized->serial, "was freed");
    if (!record.ok()) return done(record.status());
    std::shared_ptr<Library> lib = op->authorized->library;
    lib->FreeInstance({record->worker_id, record->generation}, op->authorized->deadline,
                      [op, done = std::move(done)](absl::StatusOr<bool> called) mutable {
                        op->authorized.reset();
                        if (!called.ok()) return done(called.status());
                        v1::FreeInstanceResponse response;
                        response.set_destructor_called(*called);
                        done(std::move(response));
                      });
  });
}

}  // namespace ffibroker
