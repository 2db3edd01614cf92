// Parsing and vetting of the daemon's listen address.
//
//   unix:/run/ffibroker/ffibrokerd.sock     a unix socket (the default)
//   tcp:127.0.0.1:7000 / tcp:[::1]:7000     TCP; insecure only on loopback
//   tcp:0.0.0.0:7000                        TCP on all interfaces: needs TLS
#ifndef FFIBROKER_DAEMON_LISTEN_ADDRESS_H_
#define FFIBROKER_DAEMON_LISTEN_ADDRESS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ffibroker {

struct ListenAddress {
  enum class Kind { kUnix, kTcp };
  Kind kind;
  std::string path;      // kUnix: absolute socket path
  std::string host;      // kTcp: host without brackets
  int port = 0;          // kTcp
  bool loopback = false; // kTcp: host is 127.0.0.0/8, ::1 or localhost
  // The address in gRPC's syntax ("unix:/path", "127.0.0.1:7000").
  std::string GrpcTarget() const;
};

// INVALID_ARGUMENT naming what is wrong (relative path, missing port, ...).
absl::StatusOr<ListenAddress> ParseListenAddress(absl::string_view text);

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_LISTEN_ADDRESS_H_
