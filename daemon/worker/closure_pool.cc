#include "daemon/worker/closure_pool.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/limits.h"
#include "common/unique_fd.h"

namespace ffibroker {
namespace {

#if !defined(__x86_64__)
#error "ClosurePool's trampolines are x86-64 code (see closure_pool.h)"
#endif

constexpr size_t kTrampolineBytes = 32;

// libffi 3.4's dynamic x86-64 trampoline, as ffi_prep_closure_loc writes it
// into ffi_closure::tramp: endbr64; lea -0xb(%rip),%r10; jmp *0x7(%rip);
// nopl; then the 8-byte entry (ffi_closure_unix64 or its SSE variant) at
// offset 24. Ours load %r10 with the closure instead and jump through that
// entry.
constexpr unsigned char kLibffiTrampoline[24] = {
    0xf3, 0x0f, 0x1e, 0xfa, 0x4c, 0x8d, 0x15, 0xf5, 0xff, 0xff, 0xff, 0xff,
    0x25, 0x07, 0x00, 0x00, 0x00, 0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00};
constexpr size_t kEntryOffset = 24;

void WriteTrampoline(unsigned char* at, const ffi_closure* closure) {
  std::memset(at, 0xcc, kTrampolineBytes);  // int3 after the jump
  const unsigned char head[] = {0xf3, 0x0f, 0x1e, 0xfa,  // endbr64
                                0x49, 0xba};             // movabs $imm64, %r10
  std::memcpy(at, head, sizeof head);
  const uint64_t address = reinterpret_cast<uintptr_t>(closure);
  std::memcpy(at + sizeof head, &address, sizeof address);
  const unsigned char jump[] = {0x41, 0xff, 0x62, static_cast<unsigned char>(kEntryOffset)};
  std::memcpy(at + sizeof head + sizeof address, jump, sizeof jump);  // jmp *24(%r10)
}

void Idle(ffi_cif*, void*, void**, void*) {}

}  // namespace

ClosurePool::ClosurePool(uint32_t count, CallbackSink* sink)
    : count_(count), sink_(sink), slots_(count) {}

absl::StatusOr<std::unique_ptr<ClosurePool>> ClosurePool::Create(uint32_t count,
                                                                 CallbackSink* sink) {
  if (count > kMaxCallbackClosures) {
    return absl::InvalidArgumentError(absl::StrCat(
        "callback_closures is ", count, ", more than the limit of ", kMaxCallbackClosures,
        " closures per worker"));
  }
  if (count > 0 && sink == nullptr) {
    return absl::InternalError("callback closures need a sink to relay invocations to");
  }
  std::unique_ptr<ClosurePool> pool(new ClosurePool(count, sink));
  if (count == 0) return pool;  // nothing to map, nothing libffi must do
  if (ffi_prep_cif(&pool->idle_cif_, FFI_DEFAULT_ABI, 0, &ffi_type_void, nullptr) != FFI_OK) {
    return absl::InternalError("libffi cannot prepare the idle closure signature");
  }
  // libffi must write the layout our trampolines rely on.
  ffi_closure probe{};
  if (ffi_prep_closure_loc(&probe, &pool->idle_cif_, Idle, nullptr, &probe) != FFI_OK ||
      std::memcmp(probe.tramp, kLibffiTrampoline, sizeof kLibffiTrampoline) != 0) {
    return absl::InternalError(
        "this libffi does not write the x86-64 dynamic closure trampoline the worker's "
        "callback closures rely on (libffi 3.4 without static trampolines); callbacks are "
        "not available");
  }
  pool->closures_.reset(new ffi_closure[count]());
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  pool->code_bytes_ = (count * kTrampolineBytes + page - 1) / page * page;
  void* code = ::mmap(nullptr, pool->code_bytes_, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (code == MAP_FAILED) return ErrnoStatus("mapping the callback trampolines", errno);
  pool->code_ = code;
  for (uint32_t i = 0; i < count; ++i) {
    Slot& slot = pool->slots_[i];
    slot.closure = &pool->closures_[i];
    slot.code = static_cast<unsigned char*>(code) + i * kTrampolineBytes;
    slot.pool = pool.get();
    WriteTrampoline(static_cast<unsigned char*>(slot.code), slot.closure);
    // Unbound: Dispatch reports it.
    if (ffi_prep_closure_loc(slot.closure, &pool->idle_cif_, Dispatch, &slot, slot.code) !=
        FFI_OK) {
      return absl::InternalError("libffi cannot prepare a callback closure");
    }
    pool->free_.push_back(count - 1 - i);  // hand out slot 0 first
  }
  if (::mprotect(code, pool->code_bytes_, PROT_READ | PROT_EXEC) != 0) {
    return ErrnoStatus("making the callback trampolines executable", errno);
  }
  return pool;
}

ClosurePool::~ClosurePool() {
  if (code_ != nullptr) ::munmap(code_, code_bytes_);
}

void ClosurePool::Dispatch(ffi_cif*, void* ret, void** args, void* user_data) {
  Slot& slot = *static_cast<Slot*>(user_data);
  ClosurePool& pool = *slot.pool;
  uint64_t id;
  uint64_t last_id;
  const TypeDesc* type;
  {
    std::lock_guard<std::mutex> lock(pool.mu_);
    id = slot.id;
    last_id = slot.last_id;
    type = slot.type;
  }
  if (id == 0) pool.sink_->Unbound(last_id);  // does not return
  pool.sink_->Invoke(id, *type, ret, args);
}

absl::StatusOr<void*> ClosurePool::Bind(uint64_t id, const TypeDesc& type, bool persistent) {
  if (id == 0) return absl::InvalidArgumentError("callback id 0 cannot be bound");
  if (type.kind != TypeKind::kCallback || type.callback == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(type.name, " is not a callback type"));
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_id_.find(id);
  if (it != by_id_.end()) {
    Slot& slot = slots_[it->second];
    if (persistent) {
      slot.persistent = true;
    } else {
      ++slot.calls;
    }
    return slot.code;
  }
  if (free_.empty()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "every one of the worker's ", count_, " callback closures is bound (",
        "Open.callback_closures)"));
  }
  const size_t index = free_.back();
  free_.pop_back();
  Slot& slot = slots_[index];
  // The library cannot be running this slot now: it is not bound.
  if (ffi_prep_closure_loc(slot.closure, &type.callback->cif, Dispatch, &slot, slot.code) !=
      FFI_OK) {
    free_.push_back(index);
    return absl::InternalError(absl::StrCat("libffi cannot bind a closure for ", type.name));
  }
  slot.id = id;
  slot.last_id = id;
  slot.type = &type;
  slot.persistent = persistent;
  slot.calls = persistent ? 0 : 1;
  by_id_[id] = index;
  return slot.code;
}

void ClosurePool::Unbind(Slot& slot) {
  by_id_.erase(slot.id);
  slot.id = 0;
  slot.calls = 0;
  slot.persistent = false;
  free_.push_back(static_cast<size_t>(&slot - slots_.data()));
}

void ClosurePool::EndCall(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  Slot& slot = slots_[it->second];
  if (slot.calls > 0) --slot.calls;
  if (slot.calls == 0 && !slot.persistent) Unbind(slot);
}

bool ClosurePool::Release(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end() || !slots_[it->second].persistent) return false;
  Slot& slot = slots_[it->second];
  slot.persistent = false;
  if (slot.calls == 0) Unbind(slot);
  return true;
}

uint32_t ClosurePool::bound() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<uint32_t>(by_id_.size());
}

}  // namespace ffibroker
