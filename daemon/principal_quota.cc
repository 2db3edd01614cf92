#include "daemon/principal_quota.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace ffibroker {
namespace {

struct Kind {
  const char* noun;        // "sessions"
  const char* field;       // the PrincipalLimits field
  const char* daemon_field;  // the Limits field, or nullptr
  uint32_t per_field_unit = 1;  // units counted per unit of the field (KiB per MiB)
  const char* field_unit = "";  // " MiB"
};

const Kind& KindOf(Resource resource) {
  static const Kind kKinds[] = {
      {"sessions", "max_sessions", "limits.max_sessions"},
      {"workers", "max_workers", "limits.max_workers"},
      {"calls in flight", "max_calls_in_flight", nullptr},
      {"instance handles", "max_instances", "limits.max_instances"},
      {"registered classes", "max_classes", nullptr},
      {"KiB of answers its clients have not read yet", "max_unread_answers_mib", nullptr, 1024,
       " MiB"},
      {"open call streams", "max_streams", nullptr},
  };
  static_assert(sizeof(kKinds) / sizeof(kKinds[0]) == static_cast<size_t>(Resource::kCount),
                "a Kind for each Resource");
  return kKinds[static_cast<size_t>(resource)];
}

}  // namespace

QuotaLimit LimitOf(Resource resource, const v1::PrincipalLimits& principal,
                   const v1::Limits& limits) {
  switch (resource) {
    case Resource::kSessions: return {principal.max_sessions(), limits.max_sessions()};
    case Resource::kWorkers: return {principal.max_workers(), limits.max_workers()};
    case Resource::kCallsInFlight: return {principal.max_calls_in_flight(), 0};
    case Resource::kInstances: return {principal.max_instances(), limits.max_instances()};
    case Resource::kClasses: return {principal.max_classes(), 0};
    case Resource::kAnswerKib: {
      const uint64_t kib = uint64_t{principal.max_unread_answers_mib()} * 1024;
      return {static_cast<uint32_t>(std::min<uint64_t>(kib, UINT32_MAX)), 0};
    }
    case Resource::kStreams: return {principal.max_streams(), 0};
    case Resource::kCount: break;
  }
  return {};
}

PrincipalQuota::Reservation& PrincipalQuota::Reservation::operator=(
    Reservation&& other) noexcept {
  if (this != &other) {
    Release();
    quota_ = std::exchange(other.quota_, nullptr);
    principal_ = std::move(other.principal_);
    resource_ = other.resource_;
    amount_ = other.amount_;
  }
  return *this;
}

void PrincipalQuota::Reservation::Release() {
  if (quota_ == nullptr) return;
  std::exchange(quota_, nullptr)->Give(principal_, resource_, amount_);
}

absl::StatusOr<PrincipalQuota::Reservation> PrincipalQuota::Reserve(
    const std::string& principal, Resource resource, QuotaLimit limit, uint32_t amount) {
  const size_t k = static_cast<size_t>(resource);
  const Kind& kind = KindOf(resource);
  absl::MutexLock lock(&mu_);
  auto it = held_.find(principal);
  uint32_t mine = it == held_.end() ? 0 : it->second[k];
  if (uint64_t{mine} + amount > limit.principal) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "principal '", principal, "' already holds ", mine, " ", kind.noun,
        amount == 1 ? "" : absl::StrCat(" and this needs ", amount, " more"), ", its limit ",
        kind.field, " (per principal) is ", limit.principal / kind.per_field_unit,
        kind.field_unit));
  }
  if (limit.daemon != 0 && uint64_t{total_[k]} + amount > limit.daemon) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the daemon already holds ", total_[k], " ", kind.noun, " for all principals, its limit ",
        kind.daemon_field != nullptr ? kind.daemon_field : "", " is ", limit.daemon));
  }
  if (it == held_.end()) it = held_.emplace(principal, std::array<uint32_t, kKinds>{}).first;
  it->second[k] += amount;
  total_[k] += amount;
  return Reservation(this, principal, resource, amount);
}

void PrincipalQuota::Give(const std::string& principal, Resource resource, uint32_t amount) {
  const size_t k = static_cast<size_t>(resource);
  absl::MutexLock lock(&mu_);
  auto it = held_.find(principal);
  // A reservation exists only for units counted here: both hold at least them.
  it->second[k] -= amount;
  total_[k] -= amount;
  bool empty = true;
  for (uint32_t n : it->second) empty = empty && n == 0;
  if (empty) held_.erase(it);
}

uint32_t PrincipalQuota::Held(const std::string& principal, Resource resource) const {
  absl::MutexLock lock(&mu_);
  auto it = held_.find(principal);
  return it == held_.end() ? 0 : it->second[static_cast<size_t>(resource)];
}

uint32_t PrincipalQuota::Total(Resource resource) const {
  absl::MutexLock lock(&mu_);
  return total_[static_cast<size_t>(resource)];
}

}  // namespace ffibroker
