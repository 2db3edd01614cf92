#include "daemon/worker/instance_store.h"

#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/checked_math.h"
#include "common/limits.h"
#include "common/status_macros.h"

namespace ffibroker {

InstanceStore::~InstanceStore() {
  for (auto& [id, entry] : entries_) {
    if (entry.origin == Origin::kAllocated) std::free(entry.ptr);
  }
}

absl::StatusOr<uint64_t> InstanceStore::Allocate(size_t size, size_t align,
                                                 absl::string_view init) {
  if (init.size() != size || size == 0) {
    return absl::InvalidArgumentError("instance size mismatch");
  }
  if (size > kMaxClassBytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "instance of ", size, " bytes is larger than the class size limit of ", kMaxClassBytes));
  }
  if (align < sizeof(void*)) align = sizeof(void*);
  if ((align & (align - 1)) != 0 || align > 4096) {
    return absl::InvalidArgumentError(absl::StrCat("invalid instance alignment ", align));
  }
  size_t rounded = 0;
  if (!CheckedAlignUp<size_t>(size, align, &rounded)) {
    return absl::ResourceExhaustedError("instance size overflows");
  }
  void* ptr = std::aligned_alloc(align, rounded);
  if (ptr == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat("out of memory allocating ", rounded,
                                                     " bytes for an instance"));
  }
  std::memset(ptr, 0, rounded);
  std::memcpy(ptr, init.data(), size);
  return Add(ptr, size, Origin::kAllocated, nullptr);
}

uint64_t InstanceStore::Add(void* ptr, size_t size, Origin origin, Destructor destructor) {
  uint64_t id = next_id_++;
  entries_[id] = Entry{ptr, size, origin, destructor};
  return id;
}

absl::StatusOr<const InstanceStore::Entry*> InstanceStore::Find(
    uint64_t id, uint64_t offset, uint64_t size) const {
  auto it = entries_.find(id);
  if (it == entries_.end()) {
    return absl::NotFoundError(absl::StrCat("no instance with id ", id));
  }
  if (!RangeWithin(offset, size, it->second.size)) {
    return absl::OutOfRangeError(absl::StrCat(
        "bytes ", offset, "+", size, " are outside instance ", id, " (", it->second.size,
        " bytes)"));
  }
  return &it->second;
}

absl::StatusOr<void*> InstanceStore::Pointer(uint64_t id) const {
  ASSIGN_OR_RETURN(const Entry* entry, Find(id, 0, 0));
  return entry->ptr;
}

absl::StatusOr<std::string> InstanceStore::Read(uint64_t id, uint64_t offset,
                                                uint64_t size) const {
  ASSIGN_OR_RETURN(const Entry* entry, Find(id, offset, size));
  return std::string(static_cast<const char*>(entry->ptr) + offset, size);
}

absl::Status InstanceStore::Write(uint64_t id, uint64_t offset, absl::string_view data) {
  ASSIGN_OR_RETURN(const Entry* entry, Find(id, offset, data.size()));
  std::memcpy(static_cast<char*>(entry->ptr) + offset, data.data(), data.size());
  return absl::OkStatus();
}

absl::StatusOr<bool> InstanceStore::Free(uint64_t id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) {
    return absl::NotFoundError(absl::StrCat("no instance with id ", id));
  }
  Entry entry = it->second;
  entries_.erase(it);
  switch (entry.origin) {
    case Origin::kAllocated:
      std::free(entry.ptr);
      return false;
    case Origin::kOwned:
      if (entry.destructor != nullptr) {
        entry.destructor(entry.ptr);
        return true;
      }
      return false;
    case Origin::kBorrowed:
      return false;
  }
  return false;
}

}  // namespace ffibroker
