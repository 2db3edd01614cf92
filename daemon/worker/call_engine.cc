#include "daemon/worker/call_engine.h"

#include <dlfcn.h>
#include <link.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/arg_kinds.h"
#include "common/limits.h"
#include "common/resolved_names.h"
#include "common/status_macros.h"
#include "common/types.h"

namespace ffibroker {
namespace {

// What dlsym found for one name.
struct Found {
  void* address = nullptr;  // null: the library does not define it
  std::string elsewhere;    // set: defined by this other object instead
};

// Looks `name` up in `handle` (whose own link map is `own`). A definition
// in another object (a dependency such as libc) counts only if
// `allow_dependencies`; otherwise the address is dropped and `elsewhere`
// names the object that defines it.
Found Lookup(void* handle, const struct link_map* own, const std::string& name,
             bool allow_dependencies) {
  Found found;
  ::dlerror();
  void* address = ::dlsym(handle, name.c_str());
  if (address == nullptr || allow_dependencies) {
    found.address = address;
    return found;
  }
  Dl_info info;
  struct link_map* defining = nullptr;
  if (::dladdr1(address, &info, reinterpret_cast<void**>(&defining), RTLD_DL_LINKMAP) == 0 ||
      defining == nullptr) {
    found.elsewhere = "no loaded object";
  } else if (defining != own) {
    found.elsewhere = defining->l_name != nullptr && defining->l_name[0] != '\0'
                          ? defining->l_name
                          : "the worker executable";
  } else {
    found.address = address;
  }
  return found;
}

// NOT_FOUND for a required name the library does not define itself.
absl::Status NotDefined(const NameToResolve& name, const Found& found,
                        const std::string& path) {
  if (!found.elsewhere.empty()) {
    return absl::NotFoundError(absl::StrCat(
        DescribeName(name), " is not defined by ", path, ": it is defined in a dependency (",
        found.elsewhere, "); only the library's own symbols may be resolved unless its "
        "policy entry sets allow_dependency_symbols"));
  }
  return absl::NotFoundError(absl::StrCat(DescribeName(name), " not found in ", path));
}

// 8-byte aligned, zeroed storage of at least `size` bytes; callers keep
// `size` within kMaxWorkerMessageBytes, so the word count cannot wrap.
struct Block {
  explicit Block(size_t size) : words(size / 8 + 2, 0) {}
  void* data() { return words.data(); }
  std::vector<uint64_t> words;
};

}  // namespace

absl::StatusOr<std::unique_ptr<CallEngine>> CallEngine::Open(
    const worker::v1::Open& open, CallbackSink* callbacks) {
  // Before the library's constructors run, and while mmap with PROT_EXEC
  // is still allowed (the loading filter): every closure it may use.
  absl::StatusOr<std::unique_ptr<ClosurePool>> closures =
      ClosurePool::Create(open.callback_closures(), callbacks);
  if (!closures.ok()) return closures.status();
  void* handle = ::dlopen(open.path().c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = ::dlerror();
    return absl::FailedPreconditionError(
        absl::StrCat("dlopen failed: ", err ? err : "unknown error"));
  }
  std::unique_ptr<CallEngine> engine(new CallEngine(handle));
  engine->closures_ = std::move(*closures);
  struct link_map* own = nullptr;
  if (::dlinfo(handle, RTLD_DI_LINKMAP, &own) != 0 || own == nullptr) {
    return absl::FailedPreconditionError("dlinfo(RTLD_DI_LINKMAP) failed on the library");
  }
  for (const v1::ClassDefinition& def : open.classes()) {
    absl::StatusOr<v1::ClassLayout> layout = engine->classes_.Register(def);
    if (!layout.ok()) return absl::InvalidArgumentError(layout.status().message());
  }
  // The only dlsym calls of the worker: exactly the names the daemon
  // authorized (common/resolved_names.h), nothing else.
  ASSIGN_OR_RETURN(std::vector<NameToResolve> names,
                   NamesToResolve(open, engine->classes_));
  std::map<std::string, Found> resolved;
  for (const NameToResolve& name : names) {
    resolved[name.name] = Lookup(handle, own, name.name, open.allow_dependency_symbols());
  }
  auto address_of = [&](const std::string& name) { return resolved.at(name).address; };

  engine->destructors_.assign(engine->classes_.classes().size(), nullptr);
  for (const NameToResolve& name : names) {
    if (name.use != NameToResolve::Use::kDestructor) continue;
    // Only the destructors of owned results are resolved; a function
    // returning one fails to open below if its destructor is missing.
    TypeRef klass = engine->classes_.FindClass(name.klass);
    engine->destructors_[klass->class_index] =
        reinterpret_cast<InstanceStore::Destructor>(address_of(name.name));
  }
  for (const worker::v1::Symbol& symbol : open.symbols()) {
    auto p = std::make_unique<Prepared>();
    p->name = symbol.name();
    ASSIGN_OR_RETURN(p->sig, ResolveSignature(symbol.signature(), engine->classes_));
    void* address = address_of(symbol.name());
    if (address == nullptr && !symbol.optional()) {
      return NotDefined({symbol.name(), NameToResolve::Use::kFunction, "", ""},
                        resolved.at(symbol.name()), open.path());
    }
    // POSIX guarantees object and function pointers share a representation.
    p->fn = reinterpret_cast<void (*)()>(address);
    const TypeDesc& result = *p->sig.result;
    if (p->fn != nullptr && result.kind == TypeKind::kHandle &&
        result.ownership == v1::HandleType::OWNERSHIP_OWNED &&
        engine->destructors_[result.element->class_index] == nullptr) {
      return NotDefined({result.element->destructor, NameToResolve::Use::kDestructor,
                         result.element->name, symbol.name()},
                        resolved.at(result.element->destructor), open.path());
    }
    for (const TypeRef& param : p->sig.params) p->arg_types.push_back(param->ffi);
    ffi_type* rtype = result.ffi;
    if (p->sig.proto.convention() == v1::Signature::CONVENTION_FFI_RETURN) {
      if (result.size != 0) p->arg_types.push_back(&ffi_type_pointer);
      rtype = &ffi_type_sint32;
    }
    if (ffi_prep_cif(&p->cif, FFI_DEFAULT_ABI,
                     static_cast<unsigned>(p->arg_types.size()), rtype,
                     p->arg_types.data()) != FFI_OK) {
      return absl::InvalidArgumentError(
          absl::StrCat("ffi_prep_cif failed for '", symbol.name(), "'"));
    }
    engine->symbols_.push_back(std::move(p));
  }
  for (const worker::v1::Symbol& symbol : open.statics()) {
    Static s;
    ASSIGN_OR_RETURN(s.type, engine->classes_.Resolve(symbol.signature().result(),
                                                      TypeUse::kStatic));
    s.address = address_of(symbol.name());
    if (s.address == nullptr && !symbol.optional()) {
      return NotDefined({symbol.name(), NameToResolve::Use::kStatic, "", ""},
                        resolved.at(symbol.name()), open.path());
    }
    engine->statics_.push_back(std::move(s));
  }
  return engine;
}

CallEngine::~CallEngine() = default;

absl::Status CallEngine::EncodePointerResult(const TypeDesc& type, void* ptr,
                                             worker::v1::Result* out) {
  if (ArgKindOf(type) == ArgKind::kHandle) {
    if (ptr == nullptr) {
      out->set_value(InstanceIdBytes(0));
      return absl::OkStatus();
    }
    const TypeDesc& klass = *type.element;
    bool owned = type.ownership == v1::HandleType::OWNERSHIP_OWNED;
    std::lock_guard<std::recursive_mutex> lock(instances_mu_);
    uint64_t id = instances_.Add(
        ptr, klass.size,
        owned ? InstanceStore::Origin::kOwned : InstanceStore::Origin::kBorrowed,
        owned ? destructors_[klass.class_index] : nullptr);
    out->set_value(InstanceIdBytes(id));
    return absl::OkStatus();
  }
  // kString: at most max_length + 1 bytes, so the daemon can see "too long".
  if (ptr == nullptr) {
    out->set_null_result(true);
    return absl::OkStatus();
  }
  const char* s = static_cast<const char*>(ptr);
  out->set_value(s, ::strnlen(s, static_cast<size_t>(type.max_length) + 1));
  return absl::OkStatus();
}

absl::StatusOr<worker::v1::Result> CallEngine::Call(const worker::v1::Call& call) {
  if (call.symbol_index() >= symbols_.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("no symbol with index ", call.symbol_index()));
  }
  Prepared& p = *symbols_[call.symbol_index()];
  if (p.fn == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("'", p.name, "' was not found"));
  }
  const size_t n = p.sig.params.size();
  if (static_cast<size_t>(call.args_size()) != n) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", p.name, "' takes ", n, " arguments, got ", call.args_size()));
  }
  std::vector<bool> is_null(n, false);
  for (uint32_t i : call.arg_null()) {
    if (i < n) is_null[i] = true;
  }
  // What the reply will carry (the result, out and inout buffers): the
  // daemon checked it against kMaxCallPayloadBytes; a request past it is
  // refused before anything is allocated.
  absl::StatusOr<uint64_t> reply_bytes = ReplyBytes(p.sig, call.args());
  if (!reply_bytes.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", p.name, "': ", reply_bytes.status().message()));
  }
  if (*reply_bytes > kMaxCallPayloadBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the reply of '", p.name, "' would exceed the call payload limit of ",
        kMaxCallPayloadBytes, " bytes"));
  }
  // The frame: every temporary of this call lives here until it returns,
  // and the per-call callback bindings end with it.
  struct Bindings {
    ClosurePool* pool;
    std::vector<uint64_t> ids;
    ~Bindings() {
      for (uint64_t id : ids) pool->EndCall(id);
    }
  } bindings{closures_.get(), {}};
  std::vector<Block> blocks;
  blocks.reserve(n + 1);
  std::vector<void*> slots(n + 1, nullptr);  // pointer-typed arguments
  std::vector<void*> avalues(n + 1, nullptr);
  for (size_t i = 0; i < n; ++i) {
    const TypeDesc& type = *p.sig.params[i];
    const std::string& bytes = call.args(static_cast<int>(i));
    auto bad_size = [&](size_t want) {
      return absl::InvalidArgumentError(absl::StrCat(
          "argument ", i + 1, " of '", p.name, "' has ", bytes.size(),
          " bytes, expected ", want));
    };
    switch (ArgKindOf(type)) {
      case ArgKind::kHandle: {
        absl::StatusOr<uint64_t> read = ReadInstanceId(bytes);
        if (!read.ok()) return bad_size(8);
        const uint64_t id = *read;
        // Null only where declared nullable (`Point*?`): the daemon never
        // sends 0 elsewhere, and the library would dereference it.
        if (id == 0 && !type.nullable) {
          return absl::InvalidArgumentError(absl::StrCat(
              "argument ", i + 1, " of '", p.name, "' is null but not declared nullable"));
        }
        if (id != 0) {
          std::lock_guard<std::recursive_mutex> lock(instances_mu_);
          ASSIGN_OR_RETURN(slots[i], instances_.Pointer(id));
        }
        avalues[i] = &slots[i];
        continue;
      }
      case ArgKind::kCallback: {
        absl::StatusOr<uint64_t> read = ReadCallbackId(bytes);
        if (!read.ok()) return bad_size(8);
        const uint64_t id = *read;
        if (id == 0 && !type.nullable) {
          return absl::InvalidArgumentError(absl::StrCat(
              "argument ", i + 1, " of '", p.name, "' is a NULL callback but not declared "
              "nullable"));
        }
        if (id != 0) {
          const bool persistent =
              std::find(call.persistent_callbacks().begin(), call.persistent_callbacks().end(),
                        id) != call.persistent_callbacks().end();
          absl::StatusOr<void*> code = closures_->Bind(id, type, persistent);
          if (!code.ok()) {
            return absl::Status(code.status().code(),
                                absl::StrCat("argument ", i + 1, " of '", p.name, "': ",
                                             code.status().message()));
          }
          if (!persistent) bindings.ids.push_back(id);
          slots[i] = *code;
        }
        avalues[i] = &slots[i];
        continue;
      }
      case ArgKind::kString:
        if (is_null[i] && !type.nullable) {
          return absl::InvalidArgumentError(absl::StrCat(
              "argument ", i + 1, " of '", p.name, "' is null but not declared nullable"));
        }
        if (!is_null[i]) {
          blocks.emplace_back(bytes.size() + 1);
          std::memcpy(blocks.back().data(), bytes.data(), bytes.size());
          slots[i] = blocks.back().data();
        }
        avalues[i] = &slots[i];
        continue;
      case ArgKind::kBufferIn:
      case ArgKind::kBufferOut:
      case ArgKind::kBufferInOut: {
        absl::StatusOr<uint64_t> size = BufferSize(type, bytes);
        if (!size.ok()) return bad_size(8);
        if (*size > kMaxBufferLength) return bad_size(kMaxBufferLength);
        blocks.emplace_back(static_cast<size_t>(*size));
        if (ArgKindOf(type) != ArgKind::kBufferOut) {
          std::memcpy(blocks.back().data(), bytes.data(), bytes.size());
        }
        slots[i] = blocks.back().data();
        avalues[i] = &slots[i];
        continue;
      }
      case ArgKind::kInline:
        if (bytes.size() != type.size) return bad_size(type.size);
        blocks.emplace_back(type.size);
        std::memcpy(blocks.back().data(), bytes.data(), bytes.size());
        avalues[i] = blocks.back().data();
    }
  }
  // The library learns a buffer's size from its length argument (or the
  // declared fixed length): it must be the buffer's size, or the library
  // would read or write past the frame. The daemon encodes them equal
  // (daemon/call_codec); a request that does not is refused (found by the
  // worker_request fuzz target).
  for (size_t i = 0; i < n; ++i) {
    const TypeDesc& type = *p.sig.params[i];
    if (!IsBuffer(ArgKindOf(type))) continue;
    // Sizes checked when the frame was built.
    uint64_t size = *BufferSize(type, call.args(static_cast<int>(i)));
    bool negative = false;
    uint64_t told = ToldBufferLength(p.sig, static_cast<int>(i), call.args(), &negative);
    if (negative || told != size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "argument ", i + 1, " of '", p.name, "' is a buffer of ", size,
          " bytes but the library would be told ", negative ? "a negative length" : absl::StrCat(told)));
    }
  }
  const TypeDesc& result = *p.sig.result;
  bool ffi_return = p.sig.proto.convention() == v1::Signature::CONVENTION_FFI_RETURN;
  // The result (or, for FfiReturn, the out-pointer's target). libffi widens
  // small integral results to a full ffi_arg; little-endian puts the value
  // first.
  Block value(std::max<size_t>(result.size, sizeof(ffi_arg)));
  alignas(16) unsigned char status_word[16] = {};
  void* out_target = value.data();
  if (ffi_return && result.size != 0) avalues[n] = &out_target;
  errno = 0;
  ffi_call(&p.cif, p.fn, ffi_return ? static_cast<void*>(status_word) : value.data(),
           avalues.data());
  int saved_errno = errno;

  worker::v1::Result out;
  out.set_errno_value(saved_errno);
  if (ffi_return) {
    int32_t status;
    std::memcpy(&status, status_word, sizeof status);
    out.set_ffi_return(status);
    if (status != 0) return out;  // the out value is only written on success
  }
  if (ArgKindOf(result) != ArgKind::kInline) {  // a handle or a string
    void* ptr;
    std::memcpy(&ptr, value.data(), sizeof ptr);
    RETURN_IF_ERROR(EncodePointerResult(result, ptr, &out));
  } else {
    out.set_value(static_cast<const char*>(value.data()), result.size);
  }
  // Out and inout buffers, in parameter order; blocks_ holds them in the
  // order they were made, so find each by its slot.
  for (size_t i = 0; i < n; ++i) {
    const TypeDesc& type = *p.sig.params[i];
    if (!IsOutput(ArgKindOf(type))) continue;
    uint64_t size = *BufferSize(type, call.args(static_cast<int>(i)));  // checked above
    out.add_outputs(static_cast<const char*>(slots[i]), static_cast<size_t>(size));
  }
  return out;
}

uint64_t CallEngine::BorrowInstance(void* ptr, const TypeDesc& klass) {
  std::lock_guard<std::recursive_mutex> lock(instances_mu_);
  return instances_.Add(ptr, klass.size, InstanceStore::Origin::kBorrowed, nullptr);
}

void CallEngine::ForgetInstance(uint64_t id) {
  std::lock_guard<std::recursive_mutex> lock(instances_mu_);
  (void)instances_.Free(id);  // borrowed: forgotten, no destructor
}

bool CallEngine::ReleaseCallback(uint64_t id) { return closures_->Release(id); }

absl::StatusOr<worker::v1::InstanceResult> CallEngine::NewInstance(
    const worker::v1::InstanceNew& req) {
  if (req.class_index() >= classes_.classes().size()) {
    return absl::InvalidArgumentError(absl::StrCat("no class ", req.class_index()));
  }
  const TypeDesc& klass = *classes_.classes()[req.class_index()];
  worker::v1::InstanceResult out;
  std::lock_guard<std::recursive_mutex> lock(instances_mu_);
  ASSIGN_OR_RETURN(uint64_t id, instances_.Allocate(klass.size, klass.align, req.init()));
  out.set_instance_id(id);
  return out;
}

absl::StatusOr<worker::v1::InstanceResult> CallEngine::ReadInstance(
    const worker::v1::InstanceRead& req) {
  worker::v1::InstanceResult out;
  std::lock_guard<std::recursive_mutex> lock(instances_mu_);
  ASSIGN_OR_RETURN(*out.mutable_data(),
                   instances_.Read(req.instance_id(), req.offset(), req.size()));
  return out;
}

absl::StatusOr<worker::v1::InstanceResult> CallEngine::WriteInstance(
    const worker::v1::InstanceWrite& req) {
  std::lock_guard<std::recursive_mutex> lock(instances_mu_);
  RETURN_IF_ERROR(instances_.Write(req.instance_id(), req.offset(), req.data()));
  for (const worker::v1::InstanceSpan& span : req.more()) {
    RETURN_IF_ERROR(instances_.Write(req.instance_id(), span.offset(), span.data()));
  }
  return worker::v1::InstanceResult();
}

absl::StatusOr<worker::v1::InstanceResult> CallEngine::FreeInstance(
    const worker::v1::InstanceFree& req) {
  worker::v1::InstanceResult out;
  std::lock_guard<std::recursive_mutex> lock(instances_mu_);
  ASSIGN_OR_RETURN(bool called, instances_.Free(req.instance_id()));
  out.set_destructor_called(called);
  return out;
}

absl::StatusOr<worker::v1::InstanceResult> CallEngine::AccessStatic(
    const worker::v1::StaticAccess& req) {
  worker::v1::InstanceResult out;
  if (req.probe()) {
    if (req.probe_symbol()) {
      out.set_found(req.index() < symbols_.size() && symbols_[req.index()]->fn != nullptr);
    } else {
      out.set_found(req.index() < statics_.size() && statics_[req.index()].address != nullptr);
    }
    return out;
  }
  if (req.index() >= statics_.size() || statics_[req.index()].address == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("no static ", req.index()));
  }
  const Static& s = statics_[req.index()];
  if (req.write()) {
    if (req.data().size() != s.type->size) {
      return absl::InvalidArgumentError("static write size mismatch");
    }
    std::memcpy(s.address, req.data().data(), s.type->size);
    return out;
  }
  out.set_data(static_cast<const char*>(s.address), s.type->size);
  return out;
}

}  // namespace ffibroker
