#include "daemon/instance_table.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace ffibroker {

uint64_t InstanceTable::Add(Record record, PrincipalQuota::Reservation quota) {
  absl::MutexLock lock(&mu_);
  uint32_t index;
  if (free_.size() > kept_free_) {
    index = free_.front();
    free_.pop_front();
  } else {
    index = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  Slot& slot = slots_[index];
  slot.live = true;
  slot.record = std::move(record);
  slot.quota = std::move(quota);
  ++live_;
  return (static_cast<uint64_t>(index) + 1) << 32 | slot.generation;
}

absl::StatusOr<InstanceTable::Slot*> InstanceTable::FindLocked(uint64_t handle,
                                                               uint64_t session) const {
  // Ownership first: whatever a handle the session does not own is (never
  // issued, live in another session, freed by another session), the
  // session learns nothing from the answer.
  const absl::Status not_ours = absl::NotFoundError(
      absl::StrCat("instance handle ", handle, " is not an instance of this session"));
  uint64_t index = (handle >> 32) - 1;
  uint32_t generation = static_cast<uint32_t>(handle);
  if ((handle >> 32) == 0 || index >= slots_.size() || generation == 0 ||
      generation > slots_[index].generation) {
    return not_ours;
  }
  Slot& slot = slots_[index];
  if (generation == slot.generation) {
    if (!slot.live || slot.record.session != session) return not_ours;
    return &slot;
  }
  // An older generation: stale, but only its owner may hear so. Only the
  // previous generation's owner is remembered; older ones are unknown.
  if (generation + 1 != slot.generation || slot.gone_session != session) return not_ours;
  return absl::FailedPreconditionError(absl::StrCat(
      "instance handle ", handle, " is stale: it ", slot.gone_reason, " (use after free)"));
}

absl::StatusOr<InstanceTable::Record> InstanceTable::Find(uint64_t handle,
                                                          uint64_t session) const {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Slot * slot, FindLocked(handle, session));
  return slot->record;
}

absl::StatusOr<InstanceTable::Record> InstanceTable::Take(uint64_t handle, uint64_t session,
                                                          const std::string& reason) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Slot * slot, FindLocked(handle, session));
  Record record = std::move(slot->record);
  slot->gone_session = record.session;
  slot->live = false;
  slot->record = Record();
  slot->quota.Release();
  slot->gone_reason = reason;
  ++slot->generation;
  --live_;
  // A slot whose generation would wrap is retired rather than reused.
  if (slot->generation != UINT32_MAX) free_.push_back(static_cast<uint32_t>((handle >> 32) - 1));
  return record;
}

std::vector<std::pair<uint64_t, InstanceTable::Record>> InstanceTable::TakeAll(
    uint64_t session, uint64_t library, const std::string& reason) {
  std::vector<uint64_t> handles;
  {
    absl::MutexLock lock(&mu_);
    for (size_t i = 0; i < slots_.size(); ++i) {
      const Slot& slot = slots_[i];
      if (slot.live && slot.record.session == session &&
          (library == 0 || slot.record.library == library)) {
        handles.push_back((static_cast<uint64_t>(i) + 1) << 32 | slot.generation);
      }
    }
  }
  std::vector<std::pair<uint64_t, Record>> out;
  for (uint64_t h : handles) {
    absl::StatusOr<Record> r = Take(h, session, reason);
    if (r.ok()) out.emplace_back(h, std::move(*r));
  }
  return out;
}

size_t InstanceTable::live() const {
  absl::MutexLock lock(&mu_);
  return live_;
}

size_t InstanceTable::slots() const {
  absl::MutexLock lock(&mu_);
  return slots_.size();
}

}  // namespace ffibroker
