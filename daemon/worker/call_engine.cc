#include "daemon/worker/call_engine.h"

#include <dlfcn.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/types.h"
#include "daemon/worker/ffi_types.h"

namespace ffibroker {

absl::StatusOr<std::unique_ptr<CallEngine>> CallEngine::Open(
    const worker::v1::Open& open) {
  void* handle = ::dlopen(open.path().c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = ::dlerror();
    return absl::FailedPreconditionError(
        absl::StrCat("dlopen failed: ", err ? err : "unknown error"));
  }
  std::unique_ptr<CallEngine> engine(new CallEngine(handle));
  for (const worker::v1::Symbol& symbol : open.symbols()) {
    auto p = std::make_unique<Prepared>();
    p->name = symbol.name();
    ::dlerror();
    void* address = ::dlsym(handle, symbol.name().c_str());
    if (address == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("symbol '", symbol.name(), "' not found in ", open.path()));
    }
    // POSIX guarantees object and function pointers share a representation.
    p->fn = reinterpret_cast<void (*)()>(address);
    const v1::Signature& sig = symbol.signature();
    for (const v1::Parameter& param : sig.params()) {
      ASSIGN_OR_RETURN(ffi_type* t, FfiTypeOf(param.type()));
      ASSIGN_OR_RETURN(const ScalarInfo* info, ScalarOf(param.type()));
      p->arg_types.push_back(t);
      p->arg_sizes.push_back(info->size);
    }
    ASSIGN_OR_RETURN(ffi_type* rtype, FfiTypeOf(sig.result()));
    ASSIGN_OR_RETURN(const ScalarInfo* rinfo, ScalarOf(sig.result()));
    p->result_size = rinfo->size;
    if (ffi_prep_cif(&p->cif, FFI_DEFAULT_ABI,
                     static_cast<unsigned>(p->arg_types.size()), rtype,
                     p->arg_types.data()) != FFI_OK) {
      return absl::InvalidArgumentError(
          absl::StrCat("ffi_prep_cif failed for '", symbol.name(), "'"));
    }
    engine->symbols_.push_back(std::move(p));
  }
  return engine;
}

CallEngine::~CallEngine() = default;

absl::StatusOr<worker::v1::Result> CallEngine::Call(
    const worker::v1::Call& call) {
  if (call.symbol_index() >= symbols_.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("no symbol with index ", call.symbol_index()));
  }
  Prepared& p = *symbols_[call.symbol_index()];
  if (static_cast<size_t>(call.args_size()) != p.arg_sizes.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", p.name, "' takes ", p.arg_sizes.size(), " arguments, got ",
        call.args_size()));
  }
  // Every scalar fits an 8-byte, 8-aligned slot; the frame owns them.
  std::vector<uint64_t> slots(p.arg_sizes.size());
  std::vector<void*> avalues(p.arg_sizes.size());
  for (size_t i = 0; i < p.arg_sizes.size(); ++i) {
    const std::string& bytes = call.args(static_cast<int>(i));
    if (bytes.size() != p.arg_sizes[i] || bytes.size() > sizeof(uint64_t)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "argument ", i + 1, " of '", p.name, "' has ", bytes.size(),
          " bytes, expected ", p.arg_sizes[i]));
    }
    std::memcpy(&slots[i], bytes.data(), bytes.size());
    avalues[i] = &slots[i];
  }
  // libffi widens small integral results to a full ffi_arg; on a
  // little-endian host the value's own bytes come first.
  alignas(16) unsigned char result[16] = {};
  static_assert(sizeof(ffi_arg) <= sizeof(result), "result buffer too small");
  errno = 0;
  ffi_call(&p.cif, p.fn, result, avalues.data());
  int saved_errno = errno;
  worker::v1::Result out;
  out.set_value(reinterpret_cast<const char*>(result), p.result_size);
  out.set_errno_value(saved_errno);
  return out;
}

}  // namespace ffibroker
