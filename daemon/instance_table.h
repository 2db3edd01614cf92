// InstanceTable: every instance handle the daemon has handed out.
//
// A handle is a 64-bit number: the table slot (high 32 bits, from 1) and
// the slot's generation (low 32 bits). The record behind it names the
// class, the owner session and library, the worker's own instance id and
// the worker generation the instance lives in. Nothing reaches a worker
// until a handle has been checked here, ownership first: any handle the
// session does not own — never issued, another session's, or freed while
// another session owned it — is NOT_FOUND with one message, so a session
// learns nothing about other sessions' handles. Only the owner hears that
// its handle is stale: freed (or its library closed or its worker died)
// is FAILED_PRECONDITION with the reason, for the most recent generation of
// a slot (an older one is NOT_FOUND). A freed slot's generation moves on,
// so an old handle never names a new instance (a slot whose generation
// would wrap is retired).
//
// Freed slots are reused oldest first, and only once more than
// `kept_free` of them are waiting (default kFreeSlotsKept): a slot
// remembers only its previous generation's owner and reason, so a handle
// keeps its precise stale answer for at least `kept_free` further frees
// in the whole daemon, and the table holds at most `kept_free` slots more
// than the most instances ever live at once. (Reusing the last freed slot
// first lost the answer after one create-free cycle of the same session.)
//
// Thread-safety: thread-safe.
//
//   uint64_t h = table.Add(record);
//   ASSIGN_OR_RETURN(InstanceTable::Record r, table.Find(h, session_serial));
#ifndef FFIBROKER_DAEMON_INSTANCE_TABLE_H_
#define FFIBROKER_DAEMON_INSTANCE_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/type_desc.h"
#include "daemon/principal_quota.h"

namespace ffibroker {

class InstanceTable {
 public:
  struct Record {
    uint64_t session = 0;   // owner session serial
    uint64_t library = 0;   // library handle within that session
    TypeRef klass;          // the class pointed to
    uint64_t worker_id = 0; // the worker's instance id
    uint64_t generation = 0;  // worker generation it lives in
    bool owned = false;     // a library result to destroy on release
  };

  static constexpr size_t kFreeSlotsKept = 1024;
  explicit InstanceTable(size_t kept_free = kFreeSlotsKept) : kept_free_(kept_free) {}

  // Adds a live record holding `quota` (its place in the instance limits,
  // given back when the record is taken); returns its handle (never 0).
  uint64_t Add(Record record, PrincipalQuota::Reservation quota);
  // The live record of `handle` if `session` owns it; errors as above.
  absl::StatusOr<Record> Find(uint64_t handle, uint64_t session) const;
  // Find, then removes it; later uses report "was <reason>".
  absl::StatusOr<Record> Take(uint64_t handle, uint64_t session, const std::string& reason);
  // Removes every live record of `session` (and, if library != 0, only of
  // that library), remembering `reason`; returns them with their handles.
  std::vector<std::pair<uint64_t, Record>> TakeAll(uint64_t session, uint64_t library,
                                                   const std::string& reason);
  // Number of live records (for tests and logs).
  size_t live() const;
  // Number of slots, live or not (for tests).
  size_t slots() const;

 private:
  struct Slot {
    uint32_t generation = 1;
    bool live = false;
    Record record;
    PrincipalQuota::Reservation quota;  // held while live
    std::string gone_reason;  // why the previous generation ended
    uint64_t gone_session = 0;  // who owned the previous generation
  };
  absl::StatusOr<Slot*> FindLocked(uint64_t handle, uint64_t session) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  const size_t kept_free_;
  mutable std::vector<Slot> slots_ ABSL_GUARDED_BY(mu_);
  std::deque<uint32_t> free_ ABSL_GUARDED_BY(mu_);  // oldest first
  size_t live_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_INSTANCE_TABLE_H_
