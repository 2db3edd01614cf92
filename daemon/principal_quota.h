// PrincipalQuota: what each principal (and the daemon as a whole) holds at
// once — sessions, workers, calls in flight, instances, classes — counted
// by RAII reservations.
//
// Reserve() checks the principal's limit and the daemon-wide one (0 = no
// daemon-wide limit) and, if both leave room, counts one unit for the
// principal; the returned Reservation gives it back when it is destroyed
// (or reset). Whoever holds the thing counted holds its reservation: a
// session holds its session's, a library its worker's, a running call its
// call's, an instance record its instance's. So no count is kept by hand
// and none can drift. Exceeding a limit is RESOURCE_EXHAUSTED naming it and
// its value; other principals are unaffected by one principal's use.
//
// The limits themselves come from the policy (Limits and PrincipalLimits in
// proto/ffibroker/v1/policy.proto, where their defaults are documented and
// applied by Policy::Parse); this class only counts.
//
// Thread-safety: thread-safe. A Reservation may be destroyed on any thread;
// the quota must outlive every Reservation it hands out.
//
//   PrincipalQuota quota;
//   ASSIGN_OR_RETURN(PrincipalQuota::Reservation r,
//                    quota.Reserve("alice", Resource::kSessions, {32, 256}));
//   session->quota = std::move(r);   // released when the session is destroyed
#ifndef FFIBROKER_DAEMON_PRINCIPAL_QUOTA_H_
#define FFIBROKER_DAEMON_PRINCIPAL_QUOTA_H_

#include <array>
#include <cstdint>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "ffibroker/v1/policy.pb.h"

namespace ffibroker {

// What is counted. kCount is the number of kinds.
// kAnswerKib counts KiB (of answers not yet read), the others one unit each.
enum class Resource {
  kSessions,
  kWorkers,
  kCallsInFlight,
  kInstances,
  kClasses,
  kAnswerKib,
  kStreams,
  kCount
};

// The limits one reservation is checked against.
struct QuotaLimit {
  uint32_t principal = 0;  // what one principal may hold; 0 = nothing
  uint32_t daemon = 0;     // what all principals together may hold; 0 = no limit
};

// The limits of `resource` for a principal whose limits are `principal`
// (defaults applied) under the daemon-wide `limits` (defaults applied).
QuotaLimit LimitOf(Resource resource, const v1::PrincipalLimits& principal,
                   const v1::Limits& limits);

class PrincipalQuota {
 public:
  // One unit of one resource held by one principal. Move-only; an empty
  // (default-constructed or moved-from) reservation holds nothing.
  class Reservation {
   public:
    Reservation() = default;
    ~Reservation() { Release(); }
    Reservation(Reservation&& other) noexcept { *this = std::move(other); }
    Reservation& operator=(Reservation&& other) noexcept;
    Reservation(const Reservation&) = delete;
    Reservation& operator=(const Reservation&) = delete;

    bool held() const { return quota_ != nullptr; }
    // Gives the unit back now (idempotent).
    void Release();

   private:
    friend class PrincipalQuota;
    Reservation(PrincipalQuota* quota, std::string principal, Resource resource, uint32_t amount)
        : quota_(quota), principal_(std::move(principal)), resource_(resource), amount_(amount) {}
    PrincipalQuota* quota_ = nullptr;
    std::string principal_;
    Resource resource_ = Resource::kSessions;
    uint32_t amount_ = 0;
  };

  PrincipalQuota() = default;
  PrincipalQuota(const PrincipalQuota&) = delete;
  PrincipalQuota& operator=(const PrincipalQuota&) = delete;

  // One unit of `resource` for `principal`. RESOURCE_EXHAUSTED if the
  // principal already holds limit.principal units ("principal 'alice'
  // already holds 32 sessions, its limit max_sessions (per principal) is
  // 32") or all principals together limit.daemon (unless 0).
  // `amount` units at once (KiB for kAnswerKib): refused if they do not all
  // fit.
  absl::StatusOr<Reservation> Reserve(const std::string& principal, Resource resource,
                                      QuotaLimit limit, uint32_t amount = 1);

  // Units of `resource` held now by `principal` / by everyone.
  uint32_t Held(const std::string& principal, Resource resource) const;
  uint32_t Total(Resource resource) const;

 private:
  void Give(const std::string& principal, Resource resource, uint32_t amount);

  static constexpr size_t kKinds = static_cast<size_t>(Resource::kCount);
  mutable absl::Mutex mu_;
  // Only principals holding something have an entry.
  std::map<std::string, std::array<uint32_t, kKinds>> held_ ABSL_GUARDED_BY(mu_);
  std::array<uint32_t, kKinds> total_ ABSL_GUARDED_BY(mu_) = {};
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_PRINCIPAL_QUOTA_H_
