// WorkerUidPool: a range of host uids handed out one per worker, as
// systemd's DynamicUser= and nsjail do, so that no two workers share a uid
// and none can signal, ptrace or read /proc of another.
//
// A root daemon gives each worker a lease on one uid of the range (its gid
// is the same number); the worker's user namespace maps uid and gid 65534
// to it, so inside the worker still sees 65534 (without a user namespace
// it runs as the leased uid directly). The lease is released when the
// worker has been reaped (WorkerProcess holds it), and a released uid goes
// to the back of the queue: the uid handed out is always the one free the
// longest. An exhausted range is RESOURCE_EXHAUSTED. Only a root daemon can
// map arbitrary uids; a non-root daemon has no pool and its workers keep
// its own uid outside their user namespace (docs/confinement.md).
//
// The default range is kDefaultWorkerUids; docs/confinement.md argues the
// choice. Ids of the range that belong to a local user or group are left
// out (LocalIdsIn).
//
// Thread-safety: thread-safe. A Lease may outlive its pool (it shares the
// pool's state).
//
//   ASSIGN_OR_RETURN(auto range, ParseUidRange("70000-73999"));
//   WorkerUidPool pool(range.first, range.second);
//   ASSIGN_OR_RETURN(WorkerUidPool::Lease lease, pool.Acquire());  // lease.uid()
#ifndef FFIBROKER_DAEMON_WORKER_UID_POOL_H_
#define FFIBROKER_DAEMON_WORKER_UID_POOL_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace ffibroker {

// The default of ffibrokerd's --worker-uids: above the 16-bit ids (so never
// "nobody" 65534 or a legacy (uid16_t)-1), outside systemd's ranges
// (regular users end at 60000, DynamicUser= takes 61184-65519, nspawn
// containers start at 524288) and below 100000, where shadow's useradd
// starts the subordinate ids of /etc/subuid.
inline constexpr char kDefaultWorkerUids[] = "70000-73999";

class WorkerUidPool {
 public:
  // One uid held by one worker. Move-only; released when destroyed or
  // reset. An empty (default-constructed or moved-from) lease holds none.
  class Lease {
   public:
    Lease() = default;
    ~Lease() { Release(); }
    Lease(Lease&& other) noexcept { *this = std::move(other); }
    Lease& operator=(Lease&& other) noexcept;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;

    bool held() const { return state_ != nullptr; }
    uint32_t uid() const { return uid_; }
    // Gives the uid back now (idempotent).
    void Release();

   private:
    friend class WorkerUidPool;
    struct State;
    Lease(std::shared_ptr<State> state, uint32_t uid) : state_(std::move(state)), uid_(uid) {}
    std::shared_ptr<State> state_;
    uint32_t uid_ = 0;
  };

  // The uids first..last (1 <= first <= last), without those in `excluded`.
  WorkerUidPool(uint32_t first, uint32_t last, const std::set<uint32_t>& excluded = {});
  WorkerUidPool(const WorkerUidPool&) = delete;
  WorkerUidPool& operator=(const WorkerUidPool&) = delete;

  // The uid free the longest. RESOURCE_EXHAUSTED if every uid of the range
  // is leased ("all 4000 worker uids of --worker-uids=70000-73999 are in
  // use by running workers").
  absl::StatusOr<Lease> Acquire();

  size_t size() const { return size_; }
  size_t in_use() const;
  // "FIRST-LAST".
  const std::string& range() const { return range_; }

 private:
  std::shared_ptr<Lease::State> state_;
  size_t size_ = 0;
  std::string range_;
};

// "FIRST-LAST" (decimal, 1 <= FIRST <= LAST < 2^31) -> the pair.
// INVALID_ARGUMENT naming the text otherwise.
absl::StatusOr<std::pair<uint32_t, uint32_t>> ParseUidRange(absl::string_view text);

// Ids in first..last that a local user (uid) or group (gid) has, as far as
// the name service enumerates them.
std::set<uint32_t> LocalIdsIn(uint32_t first, uint32_t last);

// OK if every id of first..last is mapped in the daemon's own user
// namespace (/proc/self/uid_map and gid_map); else FAILED_PRECONDITION
// saying which map lacks which id (a daemon in a container with a small
// map cannot give workers such uids).
absl::Status CheckIdsMapped(uint32_t first, uint32_t last);

// The pool of a daemon whose --worker-uids is `flag` (empty: the default
// range). nullptr for a non-root daemon (a warning is logged if the flag was
// given) and for a root daemon whose own user namespace does not map the
// default range (a warning: workers then share uid 65534). INVALID_ARGUMENT
// for a malformed flag; FAILED_PRECONDITION if a range given explicitly is
// not mapped or has no id left once local users and groups are left out.
absl::StatusOr<std::unique_ptr<WorkerUidPool>> MakeWorkerUidPool(const std::string& flag);

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_WORKER_UID_POOL_H_
