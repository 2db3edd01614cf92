// InstanceStore: the worker's instances, by id (never by address).
//
// An instance is memory the worker allocated (InstanceNew) or a pointer a
// library function returned. The daemon refers to instances only by the ids
// handed out here; every access is checked against the instance's size, so a
// bad id or range is an error, never a stray memory access. The store only
// uses malloc/free (no files, no sockets), so it works under seccomp.
//
// Not thread-safe (the worker serves one request at a time).
//
//   InstanceStore store;
//   uint64_t id = store.Add(ptr, size, InstanceStore::Origin::kAllocated, nullptr);
//   ASSIGN_OR_RETURN(std::string bytes, store.Read(id, 0, size));
#ifndef FFIBROKER_DAEMON_WORKER_INSTANCE_STORE_H_
#define FFIBROKER_DAEMON_WORKER_INSTANCE_STORE_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ffibroker {

class InstanceStore {
 public:
  enum class Origin {
    kAllocated,  // allocated by the store; free() on release
    kOwned,      // returned by the library, ours: destructor on release
    kBorrowed,   // returned by the library, theirs: forgotten on release
  };
  using Destructor = void (*)(void*);

  InstanceStore() = default;
  ~InstanceStore();  // frees what the store allocated (destructors are not run)
  InstanceStore(const InstanceStore&) = delete;
  InstanceStore& operator=(const InstanceStore&) = delete;

  // Allocates `size` zeroed bytes aligned to `align` and copies `init` in
  // (init.size() == size). RESOURCE_EXHAUSTED if malloc fails.
  absl::StatusOr<uint64_t> Allocate(size_t size, size_t align, absl::string_view init);
  // Registers a library pointer of a class of `size` bytes (0 = opaque:
  // no field access). Returns its new id (never 0).
  uint64_t Add(void* ptr, size_t size, Origin origin, Destructor destructor);

  // The address of instance `id`; NOT_FOUND for an unknown id.
  absl::StatusOr<void*> Pointer(uint64_t id) const;
  // Copies [offset, offset+size) out of / `data` into instance `id`;
  // OUT_OF_RANGE past its size.
  absl::StatusOr<std::string> Read(uint64_t id, uint64_t offset, uint64_t size) const;
  absl::Status Write(uint64_t id, uint64_t offset, absl::string_view data);
  // Releases `id` according to its origin; returns whether a destructor ran.
  absl::StatusOr<bool> Free(uint64_t id);

 private:
  struct Entry {
    void* ptr;
    size_t size;
    Origin origin;
    Destructor destructor;
  };
  absl::StatusOr<const Entry*> Find(uint64_t id, uint64_t offset, uint64_t size) const;

  std::map<uint64_t, Entry> entries_;
  uint64_t next_id_ = 1;
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_WORKER_INSTANCE_STORE_H_
