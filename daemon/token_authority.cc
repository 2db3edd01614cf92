#include "daemon/token_authority.h"

#include <sys/random.h>

#include <algorithm>
#include <vector>

#include "absl/strings/escaping.h"
#include "common/error_reason.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace ffibroker {
namespace {

// The journal is rewritten to a snapshot when it has grown to twice its
// size after the last rewrite, and at least this big.
constexpr uint64_t kCompactAtLeastBytes = 1 << 20;

bool InAudience(const v1::TokenClaims& claims, const std::string& principal) {
  return std::find(claims.audience().begin(), claims.audience().end(), principal) !=
         claims.audience().end();
}

bool MayUse(const v1::TokenClaims& claims, const Caller& caller) {
  return claims.audience().empty() ? claims.principal() == caller.principal
                                   : InAudience(claims, caller.principal);
}

bool Owns(const std::string& owner, const std::string& principal, const Caller& caller) {
  return owner.empty() ? principal == caller.principal : owner == caller.identity;
}

bool MayInspect(const v1::TokenClaims& claims, const Caller& caller) {
  return Owns(claims.owner(), claims.principal(), caller) ||
         InAudience(claims, caller.principal);
}

daemon::v1::TokenState* AddState(daemon::v1::TokenJournalRecord* record,
                                 const std::string& id, absl::Time expires) {
  daemon::v1::TokenState* state = record->add_tokens();
  state->set_token_id(id);
  state->set_expires_unix_seconds(absl::ToUnixSeconds(expires));
  return state;
}

// One call quota on the path from the root of a token's exchange tree to
// the token itself.
struct QuotaLevel {
  const std::string* id;  // into the claims
  uint64_t quota;
};

// Every quota `claims` is bound by, root first (0, no quota, left out).
std::vector<QuotaLevel> QuotaLevels(const v1::TokenClaims& claims) {
  std::vector<QuotaLevel> levels;
  for (int i = 0; i < claims.ancestor_ids_size(); ++i) {
    uint64_t quota = i < claims.ancestor_call_quotas_size() ? claims.ancestor_call_quotas(i) : 0;
    if (quota != 0) levels.push_back({&claims.ancestor_ids(i), quota});
  }
  if (claims.call_quota() != 0) levels.push_back({&claims.token_id(), claims.call_quota()});
  return levels;
}

}  // namespace

TokenAuthority::TokenAuthority(TokenKeyring keyring, std::function<absl::Time()> now)
    : now_(std::move(now)), signer_(std::make_shared<const TokenSigner>(std::move(keyring))) {}

TokenAuthority::TokenAuthority(std::string secret, std::function<absl::Time()> now)
    : TokenAuthority(TokenKeyring::Single(std::move(secret)), std::move(now)) {}

std::shared_ptr<const TokenSigner> TokenAuthority::signer() const {
  absl::ReaderMutexLock lock(&mu_);
  return signer_;
}

absl::Status TokenAuthority::SetKeyring(TokenKeyring keyring) {
  auto signer = std::make_shared<const TokenSigner>(std::move(keyring));
  absl::MutexLock lock(&mu_);
  if (journal_ != nullptr &&
      signer->keyring().active().secret != signer_->keyring().active().secret) {
    PruneLocked();
    RETURN_IF_ERROR(journal_->Rekey(signer->keyring().active().secret, SnapshotLocked()));
    compacted_size_ = journal_->size();
  }
  signer_ = std::move(signer);
  return absl::OkStatus();
}

std::string TokenAuthority::DescribeKeys() const { return signer()->keyring().Describe(); }

absl::Status TokenAuthority::UseJournal(
    std::unique_ptr<TokenJournal> journal,
    const std::vector<daemon::v1::TokenJournalRecord>& records) {
  absl::MutexLock lock(&mu_);
  for (const daemon::v1::TokenJournalRecord& record : records) {
    for (const daemon::v1::TokenState& state : record.tokens()) {
      Known& k = known_[state.token_id()];
      if (!state.principal().empty()) k.principal = state.principal();
      if (!state.owner().empty()) k.owner = state.owner();
      k.expires = std::max(k.expires, absl::FromUnixSeconds(state.expires_unix_seconds()));
      k.revoked = k.revoked || state.revoked();
      k.calls_used = std::max(k.calls_used, state.calls_used());
    }
  }
  PruneLocked();
  RETURN_IF_ERROR(journal->Rekey(signer_->keyring().active().secret, SnapshotLocked()));
  compacted_size_ = journal->size();
  journal_ = std::move(journal);
  return absl::OkStatus();
}

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
  std::shared_ptr<const TokenSigner> signer = this->signer();
  claims.set_key_id(signer->keyring().active().id);
  IssuedToken issued;
  issued.token = signer->Sign(claims);
  // Verify refuses longer tokens: never hand out one that cannot be used.
  if (issued.token.size() > kMaxTokenChars) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the token would be ", issued.token.size(), " characters, more than the ",
        kMaxTokenChars, " a token may have: narrow its scope (fewer libraries or symbols), "
        "or exchange from a token nearer the grant"));
  }
  issued.claims = claims;
  absl::Time expires = absl::FromUnixSeconds(claims.expires_unix_seconds());
  absl::MutexLock lock(&mu_);
  PruneLocked();
  daemon::v1::TokenJournalRecord record;
  daemon::v1::TokenState* state = AddState(&record, claims.token_id(), expires);
  state->set_principal(claims.principal());
  state->set_owner(claims.owner());
  // The state changes first, so a compaction inside JournalLocked sees it.
  known_[claims.token_id()] = Known{claims.principal(), claims.owner(), expires};
  absl::Status journaled = JournalLocked(record);
  if (!journaled.ok()) {
    known_.erase(claims.token_id());
    return journaled;
  }
  return issued;
}

absl::Status TokenAuthority::StillValid(const v1::TokenClaims& claims) const {
  absl::ReaderMutexLock lock(&mu_);
  return CheckLive(claims);
}

absl::Status TokenAuthority::CheckLive(const v1::TokenClaims& claims) const {
  auto revoked = [this](const std::string& id) {
    mu_.AssertReaderHeld();  // called right here, under the caller's lock
    auto it = known_.find(id);
    return it != known_.end() && it->second.revoked;
  };
  if (revoked(claims.token_id())) {
    return WithReason(absl::PermissionDeniedError(
        absl::StrCat("token ", claims.token_id(), " has been revoked")), "TOKEN_REVOKED", {{"token_id", claims.token_id()}});
  }
  for (const std::string& ancestor : claims.ancestor_ids()) {
    if (revoked(ancestor)) {
      return WithReason(absl::PermissionDeniedError(absl::StrCat(
          "token ", claims.token_id(), " was exchanged from revoked token ", ancestor)), "TOKEN_REVOKED", {{"token_id", claims.token_id()}, {"revoked_token_id", ancestor}});
    }
  }
  if (absl::FromUnixSeconds(claims.expires_unix_seconds()) <= now_()) {
    return WithReason(absl::UnauthenticatedError(absl::StrCat(
        "token ", claims.token_id(), " expired at ",
        absl::FormatTime(absl::RFC3339_sec,
                         absl::FromUnixSeconds(claims.expires_unix_seconds()),
                         absl::UTCTimeZone()))), "TOKEN_EXPIRED", {{"token_id", claims.token_id()}});
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::TokenClaims> TokenAuthority::VerifyWith(
    absl::string_view token, const Caller& caller,
    bool (*may_see)(const v1::TokenClaims&, const Caller&)) const {
  absl::StatusOr<v1::TokenClaims> claims = signer()->Verify(token);
  if (!claims.ok()) return claims.status();
  if (claims->ancestor_call_quotas_size() != claims->ancestor_ids_size()) {
    return absl::UnauthenticatedError(
        "token was exchanged by an older ffibrokerd (its claims lack the ancestors' "
        "quotas); exchange it again");
  }
  if (!may_see(*claims, caller)) {
    // Says nothing about the token: not whose it is, what it allows or
    // whether it is still live.
    return absl::PermissionDeniedError(absl::StrCat(
        "this token was not granted to principal '", caller.principal, "' (",
        caller.identity, ")"));
  }
  absl::ReaderMutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckLive(*claims));
  return claims;
}

absl::StatusOr<v1::TokenClaims> TokenAuthority::Verify(absl::string_view token,
                                                       const Caller& caller) const {
  return VerifyWith(token, caller, &MayUse);
}

absl::StatusOr<v1::TokenClaims> TokenAuthority::VerifyForInspect(
    absl::string_view token, const Caller& caller) const {
  return VerifyWith(token, caller, &MayInspect);
}

bool TokenAuthority::ConsumeWritesJournal(const v1::TokenClaims& claims) const {
  absl::MutexLock lock(&mu_);
  return journal_ != nullptr && !QuotaLevels(claims).empty();
}

absl::Status TokenAuthority::ConsumeCall(const v1::TokenClaims& claims, uint64_t calls) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckLive(claims));
  const std::vector<QuotaLevel> levels = QuotaLevels(claims);
  if (levels.empty() || calls == 0) return absl::OkStatus();  // nothing to count or journal
  absl::Time expires = absl::FromUnixSeconds(claims.expires_unix_seconds());
  std::vector<Known*> known;
  for (const QuotaLevel& level : levels) {
    Known* k = known.emplace_back(&known_[*level.id]);
    // An ancestor outlives its descendants; keep its counter at least as long.
    k->expires = std::max(k->expires, expires);
    if (k->calls_used >= level.quota || level.quota - k->calls_used < calls) {
      const bool own = *level.id == claims.token_id();
      // The same reason whatever the shape: a batch too large for what is
      // left is refused as a whole, like one call past a used-up quota.
      ErrorMetadata metadata = {{"token_id", claims.token_id()}};
      if (!own) metadata["quota_token_id"] = *level.id;
      std::string message;
      if (calls > 1) {
        message = absl::StrCat(
            "token ", claims.token_id(), ": a batch of ", calls, " calls needs more than the ",
            level.quota - std::min(level.quota, k->calls_used), " calls left of the call quota of ",
            level.quota, own ? "" : absl::StrCat(" of token ", *level.id));
      } else if (own) {
        message = absl::StrCat("token ", claims.token_id(), ": its call quota of ", level.quota,
                               " is used up");
      } else {
        message = absl::StrCat(
            "token ", claims.token_id(), ": the call quota of ", level.quota, " of token ",
            *level.id, " it was exchanged from is used up (every token exchanged from it shares it)");
      }
      return WithReason(absl::ResourceExhaustedError(message), "TOKEN_QUOTA_EXHAUSTED", metadata);
    }
  }
  daemon::v1::TokenJournalRecord record;
  for (size_t i = 0; i < levels.size(); ++i) {
    known[i]->calls_used += calls;
    AddState(&record, *levels[i].id, known[i]->expires)->set_calls_used(known[i]->calls_used);
  }
  // Incremented first, so a compaction inside JournalLocked sees the use.
  absl::Status journaled = JournalLocked(record);
  if (!journaled.ok()) {
    for (Known* k : known) k->calls_used -= calls;
  }
  return journaled;
}

uint64_t TokenAuthority::CallsRemaining(const v1::TokenClaims& claims) const {
  if (claims.call_quota() == 0) return 0;
  absl::ReaderMutexLock lock(&mu_);
  auto left = [this](const std::string& id, uint64_t quota) {
    mu_.AssertReaderHeld();  // called right here, under the lock above
    auto it = known_.find(id);
    uint64_t used = it == known_.end() ? 0 : it->second.calls_used;
    return used >= quota ? 0 : quota - used;
  };
  uint64_t remaining = claims.call_quota();
  for (const QuotaLevel& level : QuotaLevels(claims)) {
    remaining = std::min(remaining, left(*level.id, level.quota));
  }
  return remaining;
}

absl::Status TokenAuthority::Revoke(const std::string& id, const Caller& caller) {
  absl::MutexLock lock(&mu_);
  auto it = known_.find(id);
  if (it == known_.end() || it->second.expires <= now_() ||
      !Owns(it->second.owner, it->second.principal, caller)) {
    // One answer for "never issued" and "someone else's": no oracle.
    return absl::NotFoundError(absl::StrCat(
        "token_id: this daemon knows no live token ", id, " granted by ", caller.identity));
  }
  if (it->second.revoked) return absl::OkStatus();
  daemon::v1::TokenJournalRecord record;
  AddState(&record, id, it->second.expires)->set_revoked(true);
  it->second.revoked = true;  // first, so a compaction sees it
  absl::Status journaled = JournalLocked(record);
  if (!journaled.ok()) it->second.revoked = false;
  return journaled;
}

absl::Status TokenAuthority::JournalLocked(const daemon::v1::TokenJournalRecord& record) {
  if (journal_ == nullptr) return absl::OkStatus();
  RETURN_IF_ERROR(journal_->Append(record));
  if (journal_->size() >= std::max(2 * compacted_size_, kCompactAtLeastBytes)) {
    PruneLocked();
    absl::Status rewritten = journal_->Rewrite(SnapshotLocked());
    if (!rewritten.ok()) {
      // The append itself is durable; the old file stays in use.
      LOG_WARNING("cannot compact the token journal: %s", StatusText(rewritten));
    }
    compacted_size_ = journal_->size();
  }
  return absl::OkStatus();
}

std::vector<daemon::v1::TokenJournalRecord> TokenAuthority::SnapshotLocked() const {
  std::vector<daemon::v1::TokenJournalRecord> snapshot;
  for (const auto& [id, k] : known_) {
    daemon::v1::TokenJournalRecord record;
    daemon::v1::TokenState* state = AddState(&record, id, k.expires);
    state->set_principal(k.principal);
    state->set_owner(k.owner);
    state->set_revoked(k.revoked);
    state->set_calls_used(k.calls_used);
    snapshot.push_back(std::move(record));
  }
  return snapshot;
}

void TokenAuthority::PruneLocked() {
  // An expired token fails on its own, and so do the tokens exchanged from
  // it (they never outlive it); its entry is no longer needed.
  absl::Time now = now_();
  for (auto it = known_.begin(); it != known_.end();) {
    if (it->second.expires <= now) {
      it = known_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace ffibroker
