#include "daemon/listen_address.h"

#include <arpa/inet.h>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ffibroker {

std::string ListenAddress::GrpcTarget() const {
  if (kind == Kind::kUnix) return absl::StrCat("unix:", path);
  if (absl::StrContains(host, ":")) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<ListenAddress> ParseListenAddress(absl::string_view text) {
  ListenAddress address;
  if (absl::ConsumePrefix(&text, "unix:")) {
    if (!absl::StartsWith(text, "/")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "listen address 'unix:", text, "': the socket path must be absolute"));
    }
    if (text.size() >= 108) {
      return absl::InvalidArgumentError(absl::StrCat(
          "listen address 'unix:", text, "': socket path longer than 107 bytes"));
    }
    address.kind = ListenAddress::Kind::kUnix;
    address.path = std::string(text);
    return address;
  }
  if (!absl::ConsumePrefix(&text, "tcp:")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "listen address '", text, "' must start with unix: or tcp:"));
  }
  address.kind = ListenAddress::Kind::kTcp;
  size_t colon = text.rfind(':');
  if (colon == absl::string_view::npos ||
      !absl::SimpleAtoi(text.substr(colon + 1), &address.port) ||
      address.port <= 0 || address.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "listen address 'tcp:", text, "' needs HOST:PORT with a port in 1..65535"));
  }
  absl::string_view host = text.substr(0, colon);
  if (absl::ConsumePrefix(&host, "[") && !absl::ConsumeSuffix(&host, "]")) {
    return absl::InvalidArgumentError(absl::StrCat("listen address 'tcp:", text,
                                                   "': unbalanced '['"));
  }
  address.host = std::string(host);
  in_addr v4;
  in6_addr v6;
  if (address.host == "localhost") {
    address.loopback = true;
  } else if (::inet_pton(AF_INET, address.host.c_str(), &v4) == 1) {
    address.loopback = (ntohl(v4.s_addr) >> 24) == 127;
  } else if (::inet_pton(AF_INET6, address.host.c_str(), &v6) == 1) {
    address.loopback = IN6_IS_ADDR_LOOPBACK(&v6);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "listen address 'tcp:", text, "': host must be an IP address or localhost"));
  }
  return address;
}

}  // namespace ffibroker
