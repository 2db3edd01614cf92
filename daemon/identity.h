// PeerIdentity and Caller: who is on the other end of an RPC.
//
// PeerIdentity is what the transport proved (peer credentials of a unix
// socket connection, a verified TLS client certificate) plus the hash of an
// API key the client presented; Policy::Authenticate maps it to a Caller —
// a principal of the policy and its permission at this moment.
//
// Plain values; copyable. Never holds an API key itself, only its hash.
// (IdentityOf is defined in authenticator.cc.)
#ifndef FFIBROKER_DAEMON_IDENTITY_H_
#define FFIBROKER_DAEMON_IDENTITY_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "ffibroker/v1/policy.pb.h"

namespace ffibroker {

struct PeerIdentity {
  enum class Transport { kUnknown, kUnix, kTls };
  Transport transport = Transport::kUnknown;
  // kUnix: SO_PEERCRED of the connection, SO_PEERGROUPS if available.
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  // kTls: common name and subject alternative names of the verified client
  // certificate.
  std::vector<std::string> tls_names;
  // Lowercase hex SHA-256 of the API key presented; empty if none.
  std::string api_key_sha256;
};

struct Caller {
  std::string principal;         // the policy's name for it
  std::string authenticated_by;  // "uid 1000", "tls CN=x", "api key ci"
  v1::Permission permission;     // defaults applied, paths canonical
  // Who exactly, within the principal (IdentityOf): owns the tokens it
  // grants. Several identities may share one principal (any_local_user).
  std::string identity;
  // What the principal may hold at once (Principal.limits over
  // Limits.per_principal, defaults applied).
  v1::PrincipalLimits limits;
  // Who holds what `limits` count: the principal's name, or for a principal
  // matching any_local_user "NAME (uid N)", each local user on its own.
  std::string limits_holder;
  // May read the daemon's metrics (Principal.read_metrics).
  bool read_metrics = false;
};

// The authenticated identity behind `id`, the key of token ownership:
// "key:" + the first 16 hex digits of the API key's SHA-256 when a key was
// presented (never the key), else "uid:N" for a unix peer, "tls:NAME" (the
// certificate's first name, its common name) for an mTLS peer; empty if
// none.
std::string IdentityOf(const PeerIdentity& id);

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_IDENTITY_H_
