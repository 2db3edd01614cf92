// ClosurePool: the worker's callback closures, all made before lockdown.
//
// A library calls a callback through a plain C function pointer, so the
// worker needs executable code per bound callback. Debian bookworm's
// libffi (3.4.4) has no static trampolines on x86-64 (it is built without
// FFI_EXEC_STATIC_TRAMP) and its ffi_closure_alloc maps a page
// PROT_READ|PROT_WRITE|PROT_EXEC, after probing /proc/self/status,
// statfs("/selinux") and /proc/mounts (docs/callbacks-worker.md). That is
// writable+executable memory, and a syscall the loading filter forbids, so
// the worker never calls it. Instead Create(), run before the profile's
// seccomp filter, maps `count` trampolines of 32 bytes once:
//
//   endbr64
//   movabs $closure_i, %r10     ; this slot's ffi_closure, in ordinary heap
//   jmp    *0x18(%r10)          ; the entry libffi wrote into closure_i
//
// writes them while the pages are PROT_READ|PROT_WRITE, then makes them
// PROT_READ|PROT_EXEC for good. The ffi_closure structs (cif, handler,
// user data and libffi's own entry address) live in non-executable heap
// memory, so binding a callback later is ffi_prep_closure_loc on that
// struct: no mmap, no mprotect, no writable+executable page at any time.
// This relies on libffi's x86-64 closure ABI (%r10 = the closure, its entry
// at offset 24 of the trampoline area); Create() checks that libffi wrote
// exactly that layout and refuses otherwise (INTERNAL naming the
// difference), and so does the unit test.
//
// A slot is bound to a callback id for one call (reference-counted, so a
// nested call passing the same id shares it) or persistently (until
// Release). A slot that is not bound still points at the pool's handler,
// which reports the id it was last bound to (CallbackSink::Unbound) instead
// of jumping anywhere.
//
// Thread-safe: binding, unbinding and invocation lookups take one mutex
// (library threads may invoke callbacks while the main thread binds); a
// std::mutex (futex only: absl::Mutex, contended, makes system calls no
// profile allows, see worker_channel.h).
//
//   ASSIGN_OR_RETURN(auto pool, ClosurePool::Create(4, &relay));
//   ASSIGN_OR_RETURN(void* fn, pool->Bind(id, type, /*persistent=*/false));
//   ...library calls fn...; pool->EndCall(id);
#ifndef FFIBROKER_DAEMON_WORKER_CLOSURE_POOL_H_
#define FFIBROKER_DAEMON_WORKER_CLOSURE_POOL_H_

#include <ffi.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include <mutex>

#include "absl/status/statusor.h"
#include "common/type_desc.h"

namespace ffibroker {

// What runs when the library calls a closure (daemon/worker/callback_relay.h
// relays it to the daemon). Implementations must be thread-safe.
class CallbackSink {
 public:
  virtual ~CallbackSink() = default;
  // The library called the closure bound to `callback_id`: `type` is the
  // callback type it was bound with, `ret` and `args` are libffi's (`ret`
  // has room for max(result size, sizeof(ffi_arg))). Must not throw.
  virtual void Invoke(uint64_t callback_id, const TypeDesc& type, void* ret, void** args) = 0;
  // The library called a closure that is not bound; `last_id` is the id it
  // was last bound to (0: never). Ends the worker.
  [[noreturn]] virtual void Unbound(uint64_t last_id) = 0;
};

class ClosurePool {
 public:

  // Maps and writes `count` trampolines (1..kMaxCallbackClosures; 0 gives
  // an empty pool that maps nothing). Needs mmap and mprotect with
  // PROT_EXEC, so it runs before the profile's filter. INVALID_ARGUMENT
  // past the limit, INTERNAL if the system refuses the mapping or libffi's
  // closure layout is not the one above.
  // `sink` (not owned) must outlive the pool; it may be null only if
  // `count` is 0.
  static absl::StatusOr<std::unique_ptr<ClosurePool>> Create(uint32_t count, CallbackSink* sink);
  ~ClosurePool();  // unmaps the trampolines (only at exit)
  ClosurePool(const ClosurePool&) = delete;
  ClosurePool& operator=(const ClosurePool&) = delete;

  // The code pointer for callback `id` (never 0) of callback type `type`
  // (kCallback; must outlive the binding). Persistent: the id's persistent
  // slot, bound now if it has none. Otherwise the id's slot for this call:
  // an existing binding (persistent, or per-call with its count raised) or
  // a free slot. RESOURCE_EXHAUSTED naming the count when no slot is free;
  // INVALID_ARGUMENT for id 0 or a type that is not a callback.
  absl::StatusOr<void*> Bind(uint64_t id, const TypeDesc& type, bool persistent);
  // Ends one per-call use of `id` (one Bind without `persistent`): the slot
  // is unbound when no call uses it any more. A persistent binding stays.
  void EndCall(uint64_t id);
  // Unbinds the persistent binding of `id`; false if it had none.
  bool Release(uint64_t id);

  uint32_t size() const { return count_; }
  // Slots bound at the moment (per-call and persistent).
  uint32_t bound() const;

 private:
  struct Slot {
    ffi_closure* closure = nullptr;  // in `closures_`
    void* code = nullptr;            // its trampoline
    uint64_t id = 0;                 // bound to; 0: free
    uint64_t last_id = 0;
    const TypeDesc* type = nullptr;
    uint32_t calls = 0;              // per-call uses
    bool persistent = false;
    ClosurePool* pool = nullptr;
  };

  ClosurePool(uint32_t count, CallbackSink* sink);
  // libffi's handler for every slot (user_data = the Slot).
  static void Dispatch(ffi_cif* cif, void* ret, void** args, void* user_data);
  void Unbind(Slot& slot);  // mu_ held

  const uint32_t count_;
  CallbackSink* const sink_;
  void* code_ = nullptr;  // the trampolines' mapping
  size_t code_bytes_ = 0;
  std::unique_ptr<ffi_closure[]> closures_;
  ffi_cif idle_cif_{};    // void(void): what an unbound slot is prepared with
  mutable std::mutex mu_;  // guards the slots' bindings, by_id_ and free_
  std::vector<Slot> slots_;            // fixed size: stable addresses
  std::map<uint64_t, size_t> by_id_;   // bound id -> slot
  std::vector<size_t> free_;
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_WORKER_CLOSURE_POOL_H_
