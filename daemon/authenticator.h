// Authenticator: who made this gRPC call, as a Caller of the current policy.
//
// Collects the PeerIdentity of a call — the unix-socket peer credentials
// recorded by the PeerAcceptor (peer "fd:N"), the verified client
// certificate of the mTLS listener (gRPC's auth context: x509 common name
// and subject alternative names), and the SHA-256 of an API key sent as
// "authorization: Bearer KEY" metadata — and asks the policy in force which
// principal that is. The key itself is hashed at once and never stored or
// logged.
//
// Thread-safe; borrows the acceptor (may be null: no unix listener) and the
// policy holder.
//
//   Authenticator auth(acceptor.get(), &policies);
//   ASSIGN_OR_RETURN(Caller caller, auth.Authenticate(*context));
#ifndef FFIBROKER_DAEMON_AUTHENTICATOR_H_
#define FFIBROKER_DAEMON_AUTHENTICATOR_H_

#include <grpcpp/server_context.h>

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/identity.h"
#include "daemon/peer_acceptor.h"
#include "daemon/policy_holder.h"

namespace ffibroker {

class Authenticator {
 public:
  Authenticator(const PeerAcceptor* acceptor, const PolicyHolder* policies)
      : acceptor_(acceptor), policies_(policies) {}

  // UNAUTHENTICATED for a malformed or unknown API key or a call without
  // any identity; PERMISSION_DENIED for an identity no principal matches.
  absl::StatusOr<Caller> Authenticate(const grpc::ServerContextBase& context) const;

 private:
  const PeerAcceptor* const acceptor_;
  const PolicyHolder* const policies_;
  // Refusals are logged at most once a second (a peer can send them as
  // fast as it likes, and the audit lines may share the log); the line
  // says how many were not.
  mutable absl::Mutex log_mu_;
  mutable absl::Time logged_ ABSL_GUARDED_BY(log_mu_) = absl::InfinitePast();
  mutable uint64_t unlogged_ ABSL_GUARDED_BY(log_mu_) = 0;
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_AUTHENTICATOR_H_
