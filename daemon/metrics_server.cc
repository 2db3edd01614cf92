#include "daemon/metrics_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "daemon/metrics.h"

namespace ffibroker {
namespace {

MHD_Result Respond(MHD_Connection* connection, unsigned int code, const std::string& body,
                   const char* type) {
  MHD_Response* response =
      MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()),
                                      MHD_RESPMEM_MUST_COPY);
  if (response == nullptr) return MHD_NO;
  MHD_add_response_header(response, "Content-Type", type);
  MHD_Result result = MHD_queue_response(connection, code, response);
  MHD_destroy_response(response);
  return result;
}

MHD_Result Handle(void*, MHD_Connection* connection, const char* url, const char* method,
                  const char*, const char*, size_t* upload_size, void**) {
  if (*upload_size != 0) {
    *upload_size = 0;  // a body is ignored
    return MHD_YES;
  }
  if (std::strcmp(method, "GET") != 0 && std::strcmp(method, "HEAD") != 0) {
    return Respond(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only\n", "text/plain");
  }
  if (std::strcmp(url, "/metrics") != 0) {
    return Respond(connection, MHD_HTTP_NOT_FOUND, "see /metrics\n", "text/plain");
  }
  return Respond(connection, MHD_HTTP_OK, metrics::Render(),
                 "text/plain; version=0.0.4; charset=utf-8");
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Listen(const std::string& address) {
  absl::string_view text = address;
  std::string host = "127.0.0.1";
  if (size_t colon = text.rfind(':'); colon != absl::string_view::npos) {
    host = std::string(text.substr(0, colon));
    text.remove_prefix(colon + 1);
  }
  int port;
  if (!absl::SimpleAtoi(text, &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics-listen=", address, ": expected HOST:PORT or PORT"));
  }
  sockaddr_storage addr{};
  socklen_t len;
  absl::string_view bare = host;
  bool v6 = absl::ConsumePrefix(&bare, "[") && absl::ConsumeSuffix(&bare, "]");
  if (v6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&addr);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<uint16_t>(port));
    if (::inet_pton(AF_INET6, std::string(bare).c_str(), &in6->sin6_addr) != 1) len = 0;
    else len = sizeof *in6;
  } else {
    auto* in = reinterpret_cast<sockaddr_in*>(&addr);
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<uint16_t>(port));
    if (::inet_pton(AF_INET, host.c_str(), &in->sin_addr) != 1) len = 0;
    else len = sizeof *in;
  }
  if (len == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--metrics-listen=", address, ": '", host, "' is not an IPv4 or [IPv6] address"));
  }
  UniqueFd fd(::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus("socket for the metrics listener", errno);
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::listen(fd.get(), 64) != 0) {
    return ErrnoStatus(absl::StrCat("metrics listener on ", address), errno);
  }
  len = sizeof addr;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  int bound = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                       : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  return Serve(std::move(fd), absl::StrCat(host, ":", bound));
}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Adopt(UniqueFd listener,
                                                                    std::string address) {
  return Serve(std::move(listener), std::move(address));
}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Serve(UniqueFd listener,
                                                                    std::string address) {
  int fd = listener.release();  // libmicrohttpd closes it when stopped
  MHD_Daemon* daemon = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, nullptr, nullptr, &Handle, nullptr,
      MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, 64u,
      MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
  if (daemon == nullptr) {
    ::close(fd);
    return absl::UnavailableError(absl::StrCat("cannot serve metrics on ", address));
  }
  return std::unique_ptr<MetricsServer>(new MetricsServer(daemon, std::move(address)));
}

MetricsServer::~MetricsServer() { MHD_stop_daemon(daemon_); }

}  // namespace ffibroker
