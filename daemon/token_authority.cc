#include "daemon/token_authority.h"

#include <sys/random.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace ffibroker {

TokenAuthority::TokenAuthority(std::string secret, std::function<absl::Time()> now)
    : signer_(std::move(secret)), now_(std::move(now)) {}

absl::StatusOr<IssuedToken> TokenAuthority::Issue(v1::TokenClaims claims,
                                                  absl::Duration ttl) {
  char id[16];
  if (::getrandom(id, sizeof id, 0) != sizeof id) {
    return absl::InternalError("getrandom failed for a token id");
  }
  absl::Time now = now_();
  claims.set_token_id(absl::BytesToHexString(absl::string_view(id, sizeof id)));
  claims.set_issued_unix_seconds(absl::ToUnixSeconds(now));
  claims.set_expires_unix_seconds(absl::ToUnixSeconds(now + ttl));
  IssuedToken issued;
  issued.token = signer_.Sign(claims);
  issued.claims = claims;
  absl::MutexLock lock(&mu_);
  PruneLocked();
  known_[claims.token_id()] =
      Known{claims.principal(), absl::FromUnixSeconds(claims.expires_unix_seconds())};
  return issued;
}

absl::Status TokenAuthority::CheckLive(const v1::TokenClaims& claims) const {
  auto revoked = [this](const std::string& id) {
    auto it = known_.find(id);
    return it != known_.end() && it->second.revoked;
  };
  if (revoked(claims.token_id())) {
    return absl::PermissionDeniedError(
        absl::StrCat("token ", claims.token_id(), " has been revoked"));
  }
  for (const std::string& ancestor : claims.ancestor_ids()) {
    if (revoked(ancestor)) {
      return absl::PermissionDeniedError(absl::StrCat(
          "token ", claims.token_id(), " was exchanged from revoked token ", ancestor));
    }
  }
  if (absl::FromUnixSeconds(claims.expires_unix_seconds()) <= now_()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "token ", claims.token_id(), " expired at ",
        absl::FormatTime(absl::RFC3339_sec,
                         absl::FromUnixSeconds(claims.expires_unix_seconds()),
                         absl::UTCTimeZone())));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::TokenClaims> TokenAuthority::Verify(absl::string_view token) const {
  absl::StatusOr<v1::TokenClaims> claims = signer_.Verify(token);
  if (!claims.ok()) return claims.status();
  absl::ReaderMutexLock lock(&mu_);
  absl::Status live = CheckLive(*claims);
  if (!live.ok()) return live;
  return claims;
}

absl::Status TokenAuthority::ConsumeCall(const v1::TokenClaims& claims) {
  absl::MutexLock lock(&mu_);
  absl::Status live = CheckLive(claims);
  if (!live.ok()) return live;
  if (claims.call_quota() == 0) return absl::OkStatus();
  uint64_t& used = calls_used_[claims.token_id()];
  if (used >= claims.call_quota()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "token ", claims.token_id(), ": its call quota of ", claims.call_quota(),
        " is used up"));
  }
  ++used;
  return absl::OkStatus();
}

uint64_t TokenAuthority::CallsRemaining(const v1::TokenClaims& claims) const {
  if (claims.call_quota() == 0) return 0;
  absl::ReaderMutexLock lock(&mu_);
  auto it = calls_used_.find(claims.token_id());
  uint64_t used = it == calls_used_.end() ? 0 : it->second;
  return used >= claims.call_quota() ? 0 : claims.call_quota() - used;
}

absl::Status TokenAuthority::Revoke(const std::string& id, const std::string& principal) {
  absl::MutexLock lock(&mu_);
  auto it = known_.find(id);
  if (it == known_.end()) {
    return absl::NotFoundError(absl::StrCat(
        "token_id: no live token ", id, " was issued by this daemon"));
  }
  if (it->second.principal != principal) {
    return absl::PermissionDeniedError(absl::StrCat(
        "token_id: token ", id, " was granted by another principal"));
  }
  it->second.revoked = true;
  return absl::OkStatus();
}

void TokenAuthority::PruneLocked() {
  // An expired token fails on its own; its entries are no longer needed.
  absl::Time now = now_();
  for (auto it = known_.begin(); it != known_.end();) {
    if (it->second.expires <= now) {
      calls_used_.erase(it->first);
      it = known_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace ffibroker
