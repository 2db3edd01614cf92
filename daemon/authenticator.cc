#include "daemon/authenticator.h"

#include <grpcpp/security/auth_context.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "common/log_event.h"

namespace ffibroker {
namespace {

constexpr char kBearer[] = "Bearer ";

}  // namespace

absl::StatusOr<Caller> Authenticator::Authenticate(
    const grpc::ServerContextBase& context) const {
  PeerIdentity identity;
  std::string peer = context.peer();
  if (acceptor_ != nullptr && absl::StartsWith(peer, "fd:")) {
    absl::StatusOr<PeerIdentity> unix_peer = acceptor_->Lookup(peer);
    if (!unix_peer.ok()) return unix_peer.status();
    identity = *std::move(unix_peer);
  } else {
    std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
    if (auth != nullptr && auth->IsPeerAuthenticated()) {
      identity.transport = PeerIdentity::Transport::kTls;
      for (const char* property : {"x509_common_name", "x509_subject_alternative_name"}) {
        for (const grpc::string_ref& value : auth->FindPropertyValues(property)) {
          identity.tls_names.emplace_back(value.data(), value.size());
        }
      }
    }
  }
  const auto& metadata = context.client_metadata();
  auto key = metadata.find("authorization");
  if (key != metadata.end()) {
    absl::string_view value(key->second.data(), key->second.size());
    if (!absl::ConsumePrefix(&value, kBearer) || value.empty()) {
      return absl::UnauthenticatedError(
          "authorization metadata must be \"Bearer API_KEY\"");
    }
    identity.api_key_sha256 = Sha256Hex(value);
  }
  absl::StatusOr<Caller> caller = policies_->Get()->Authenticate(identity);
  if (caller.ok()) {
    caller->identity = IdentityOf(identity);
  } else {
    uint64_t unlogged = 0;
    {
      absl::MutexLock lock(&log_mu_);
      const absl::Time now = absl::Now();
      if (now - logged_ < absl::Seconds(1)) {
        ++unlogged_;
        return caller;
      }
      logged_ = now;
      std::swap(unlogged, unlogged_);
    }
    LOG_EVENT(LogLevel::kWarning, LogFields().Event("auth_denied").Identity(IdentityOf(identity)),
              "refused a connection of %s: %s%s",
              IdentityOf(identity).empty() ? std::string("an unidentified peer")
                                           : IdentityOf(identity),
              caller.status().message(),
              unlogged == 0 ? ""
                            : absl::StrCat(" (and ", unlogged,
                                           " refusals not logged since the last line)"));
  }
  return caller;
}

std::string IdentityOf(const PeerIdentity& id) {
  if (!id.api_key_sha256.empty()) return absl::StrCat("key:", id.api_key_sha256.substr(0, 16));
  switch (id.transport) {
    case PeerIdentity::Transport::kUnix:
      return absl::StrCat("uid:", id.uid);
    case PeerIdentity::Transport::kTls:
      return id.tls_names.empty() ? std::string() : absl::StrCat("tls:", id.tls_names.front());
    default:
      return "";
  }
}

}  // namespace ffibroker
