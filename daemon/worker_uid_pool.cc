#include "daemon/worker_uid_pool.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace ffibroker {

struct WorkerUidPool::Lease::State {
  absl::Mutex mu;
  std::deque<uint32_t> free ABSL_GUARDED_BY(mu);  // front: free the longest
  size_t in_use ABSL_GUARDED_BY(mu) = 0;
};

WorkerUidPool::Lease& WorkerUidPool::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    Release();
    state_ = std::move(other.state_);
    other.state_ = nullptr;
    uid_ = std::exchange(other.uid_, 0);
  }
  return *this;
}

void WorkerUidPool::Lease::Release() {
  if (state_ == nullptr) return;
  {
    absl::MutexLock lock(&state_->mu);
    state_->free.push_back(uid_);
    --state_->in_use;
  }
  state_ = nullptr;
  uid_ = 0;
}

WorkerUidPool::WorkerUidPool(uint32_t first, uint32_t last, const std::set<uint32_t>& excluded)
    : state_(std::make_shared<Lease::State>()), range_(absl::StrCat(first, "-", last)) {
  absl::MutexLock lock(&state_->mu);
  for (uint64_t id = first; id <= last; ++id) {
    if (!excluded.count(static_cast<uint32_t>(id))) state_->free.push_back(static_cast<uint32_t>(id));
  }
  size_ = state_->free.size();
}

absl::StatusOr<WorkerUidPool::Lease> WorkerUidPool::Acquire() {
  absl::MutexLock lock(&state_->mu);
  if (state_->free.empty()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "all ", size_, " worker uids of --worker-uids=", range_,
        " are in use by running workers (each worker has a uid of its own)"));
  }
  uint32_t uid = state_->free.front();
  state_->free.pop_front();
  ++state_->in_use;
  return Lease(state_, uid);
}

size_t WorkerUidPool::in_use() const {
  absl::MutexLock lock(&state_->mu);
  return state_->in_use;
}

absl::StatusOr<std::pair<uint32_t, uint32_t>> ParseUidRange(absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, '-');
  uint32_t first = 0, last = 0;
  constexpr uint32_t kMax = 0x7fffffff;  // a uid_t with the sign bit set breaks tools
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &first) ||
      !absl::SimpleAtoi(parts[1], &last) || first == 0 || first > last || last > kMax) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--worker-uids: '", text, "' is not FIRST-LAST with 1 <= FIRST <= LAST <= ", kMax));
  }
  return std::make_pair(first, last);
}

std::set<uint32_t> LocalIdsIn(uint32_t first, uint32_t last) {
  std::set<uint32_t> ids;
  ::setpwent();
  while (struct passwd* pw = ::getpwent()) {
    if (pw->pw_uid >= first && pw->pw_uid <= last) ids.insert(pw->pw_uid);
  }
  ::endpwent();
  ::setgrent();
  while (struct group* gr = ::getgrent()) {
    if (gr->gr_gid >= first && gr->gr_gid <= last) ids.insert(gr->gr_gid);
  }
  ::endgrent();
  return ids;
}

absl::Status CheckIdsMapped(uint32_t first, uint32_t last) {
  for (const char* map : {"/proc/self/uid_map", "/proc/self/gid_map"}) {
    std::ifstream in(map);
    if (!in) return absl::FailedPreconditionError(absl::StrCat("cannot read ", map));
    // Each line: inside-start outside-start count. The ids the daemon can
    // hand out are the "inside" ones of its own namespace.
    bool covered = false;
    for (std::string line; std::getline(in, line) && !covered;) {
      std::istringstream words(line);
      uint64_t inside = 0, outside = 0, count = 0;
      if (!(words >> inside >> outside >> count)) continue;
      covered = inside <= first && static_cast<uint64_t>(last) < inside + count;
    }
    if (!covered) {
      return absl::FailedPreconditionError(absl::StrCat(
          "ids ", first, "-", last, " are not all mapped in the daemon's user namespace (",
          map, "), so workers cannot be given them"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<WorkerUidPool>> MakeWorkerUidPool(const std::string& flag) {
  const std::string text = flag.empty() ? kDefaultWorkerUids : flag;
  ASSIGN_OR_RETURN(auto range, ParseUidRange(text));
  if (::geteuid() != 0) {
    if (!flag.empty()) {
      LOG_WARNING("--worker-uids=%s is ignored: only a root daemon can give workers uids of "
                  "their own; they keep the daemon's uid outside their user namespace", flag);
    }
    return nullptr;
  }
  if (absl::Status mapped = CheckIdsMapped(range.first, range.second); !mapped.ok()) {
    if (!flag.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("--worker-uids=", flag, ": ", mapped.message()));
    }
    LOG_WARNING("workers share uid 65534: the default --worker-uids=%s cannot be used: %s", text,
                mapped.message());
    return nullptr;
  }
  std::set<uint32_t> local = LocalIdsIn(range.first, range.second);
  auto pool = std::make_unique<WorkerUidPool>(range.first, range.second, local);
  if (!local.empty()) {
    LOG_WARNING("%d ids of --worker-uids=%s belong to local users or groups (the first is %d) "
                "and are not given to workers", local.size(), text, *local.begin());
  }
  if (pool->size() == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--worker-uids=", text, ": every id of the range belongs to a local user or group"));
  }
  LOG_INFO("workers get uids of their own from %s (%d of them)", text, pool->size());
  return pool;
}

}  // namespace ffibroker
