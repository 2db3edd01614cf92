#include "ffibroker/client.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/limits.h"
#include "common/signature.h"
#include "common/status_macros.h"
#include "common/value_codec.h"

namespace ffibroker {

namespace internal {
absl::Status ResultTypeMismatch(const v1::Value& value, const char* wanted) {
  return absl::InvalidArgumentError(absl::StrCat(
      "the result (", ValueCaseName(value), ") cannot be read as ", wanted,
      " without changing it"));
}
}  // namespace internal

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const std::string& address,
                                                        absl::Duration timeout) {
  return Connect(address, ConnectOptions(), timeout);
}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const std::string& address,
                                                        const ConnectOptions& options,
                                                        absl::Duration timeout) {
  std::string target;
  if (absl::StartsWith(address, "unix:/")) {
    target = address;
  } else if (absl::StartsWith(address, "tcp:")) {
    target = address.substr(4);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "address '", address, "' must be unix:/ABS/PATH or tcp:HOST:PORT"));
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  grpc::ChannelArguments args;
  // The daemon's message limits (common/limits.h), so every value up to
  // the documented maximum fits both ways.
  args.SetMaxReceiveMessageSize(static_cast<int>(kMaxGrpcMessageBytes));
  args.SetMaxSendMessageSize(static_cast<int>(kMaxGrpcMessageBytes));
  if (!options.tls_root_certs.empty() || !options.tls_cert_chain.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options.tls_root_certs;
    ssl.pem_cert_chain = options.tls_cert_chain;
    ssl.pem_private_key = options.tls_private_key;
    credentials = grpc::SslCredentials(ssl);
    if (!options.tls_server_name.empty()) {
      args.SetSslTargetNameOverride(options.tls_server_name);
    }
  }
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(target, credentials, args);
  if (!channel->WaitForConnected(absl::ToChronoTime(absl::Now() + timeout))) {
    return absl::UnavailableError(absl::StrCat(
        "cannot connect to ffibrokerd at ", address, " within ",
        absl::FormatDuration(timeout), " (is the daemon running?)"));
  }
  return std::unique_ptr<Client>(new Client(v1::Broker::NewStub(channel), options.api_key));
}

void Client::Prepare(grpc::ClientContext* context) const {
  if (!api_key_.empty()) context->AddMetadata("authorization", "Bearer " + api_key_);
}

absl::StatusOr<v1::WhoamiResponse> Client::Whoami(const std::string& session_id) {
  v1::WhoamiRequest request;
  request.set_session_id(session_id);
  v1::WhoamiResponse response;
  grpc::ClientContext context;
  Prepare(&context);
  RETURN_IF_ERROR(FromGrpcStatus(stub_->Whoami(&context, request, &response)));
  return response;
}

absl::StatusOr<v1::GetStatusResponse> Client::GetStatus() {
  v1::GetStatusResponse response;
  grpc::ClientContext context;
  Prepare(&context);
  RETURN_IF_ERROR(
      FromGrpcStatus(stub_->GetStatus(&context, v1::GetStatusRequest(), &response)));
  return response;
}

absl::StatusOr<std::string> Client::GetMetrics() {
  v1::GetMetricsResponse response;
  grpc::ClientContext context;
  Prepare(&context);
  RETURN_IF_ERROR(
      FromGrpcStatus(stub_->GetMetrics(&context, v1::GetMetricsRequest(), &response)));
  return response.text();
}

absl::StatusOr<std::unique_ptr<Session>> Client::CreateSession(
    uint32_t idle_timeout_seconds) {
  v1::CreateSessionRequest request;
  request.set_idle_timeout_seconds(idle_timeout_seconds);
  v1::CreateSessionResponse response;
  grpc::ClientContext context;
  Prepare(&context);
  RETURN_IF_ERROR(FromGrpcStatus(stub_->CreateSession(&context, request, &response)));
  return std::unique_ptr<Session>(new Session(this, response.session_id()));
}

Session::~Session() { Close().IgnoreError(); }

absl::Status Session::Close() {
  if (closed_) return absl::OkStatus();
  closed_ = true;
  v1::CloseSessionRequest request;
  request.set_session_id(id_);
  v1::CloseSessionResponse response;
  grpc::ClientContext context;
  client_->Prepare(&context);
  return FromGrpcStatus(client_->stub()->CloseSession(&context, request, &response));
}

absl::StatusOr<std::unique_ptr<Library>> Session::OpenLibrary(
    const std::string& library, const std::vector<std::string>& declarations,
    const std::string& token) {
  return OpenLibrary(library, declarations, std::vector<std::string>(), token);
}

absl::StatusOr<std::unique_ptr<Library>> Session::OpenLibrary(
    const std::string& library, const std::vector<std::string>& declarations,
    const std::vector<std::string>& statics, const std::string& token) {
  OpenOptions options;
  options.statics = statics;
  options.token = token;
  return OpenLibrary(library, declarations, options);
}

absl::StatusOr<std::unique_ptr<Library>> Session::OpenLibrary(
    const std::string& library, const std::vector<std::string>& declarations,
    const OpenOptions& options) {
  const std::vector<std::string>& statics = options.statics;
  v1::OpenLibraryRequest request;
  request.set_session_id(id_);
  request.set_library(library);
  request.set_token(options.token);
  request.set_pool_size(options.pool_size);
  for (const std::string& text : declarations) {
    ASSIGN_OR_RETURN(Declaration decl, ParseDeclaration(text, classes_));
    v1::SymbolDeclaration* symbol = request.add_symbols();
    symbol->set_name(decl.name);
    *symbol->mutable_signature() = std::move(decl.signature);
    symbol->set_capture_errno(decl.capture_errno);
    symbol->set_optional(decl.optional);
  }
  for (const std::string& text : statics) {
    ASSIGN_OR_RETURN(*request.add_statics(), ParseStatic(text, classes_));
  }
  v1::OpenLibraryResponse response;
  grpc::ClientContext context;
  client_->Prepare(&context);
  RETURN_IF_ERROR(FromGrpcStatus(client_->stub()->OpenLibrary(&context, request, &response)));
  return std::unique_ptr<Library>(new Library(this, response));
}

Library::~Library() { Close().IgnoreError(); }

absl::Status Library::Close() {
  if (closed_) return absl::OkStatus();
  closed_ = true;
  v1::CloseLibraryRequest request;
  request.set_session_id(session_->id());
  request.set_library_handle(handle_);
  v1::CloseLibraryResponse response;
  grpc::ClientContext context;
  session_->client()->Prepare(&context);
  return FromGrpcStatus(
      session_->client()->stub()->CloseLibrary(&context, request, &response));
}

absl::StatusOr<v1::CallResponse> Library::CallValues(
    const std::string& symbol, const std::vector<v1::Value>& args,
    absl::Duration timeout) {
  v1::CallRequest request;
  request.set_session_id(session_->id());
  request.set_library_handle(handle_);
  request.set_symbol(symbol);
  for (const v1::Value& v : args) *request.add_args() = v;
  v1::CallResponse response;
  grpc::ClientContext context;
  session_->client()->Prepare(&context);
  if (timeout != absl::InfiniteDuration()) {
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  }
  RETURN_IF_ERROR(FromGrpcStatus(session_->client()->stub()->Call(&context, request, &response)));
  return response;
}

absl::StatusOr<v1::CallBatchResponse> Library::CallBatch(const std::vector<v1::BatchCall>& calls,
                                                         absl::Duration timeout) {
  v1::CallBatchRequest request;
  request.set_session_id(session_->id());
  request.set_library_handle(handle_);
  for (const v1::BatchCall& call : calls) *request.add_calls() = call;
  v1::CallBatchResponse response;
  grpc::ClientContext context;
  session_->client()->Prepare(&context);
  if (timeout != absl::InfiniteDuration()) {
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  }
  RETURN_IF_ERROR(
      FromGrpcStatus(session_->client()->stub()->CallBatch(&context, request, &response)));
  return response;
}

// The token RPCs: one request, one response, the session id filled in.
template <typename Request, typename Response>
absl::StatusOr<Response> Session::Unary(
    grpc::Status (v1::Broker::Stub::*rpc)(grpc::ClientContext*, const Request&, Response*),
    Request request) {
  request.set_session_id(id_);
  Response response;
  grpc::ClientContext context;
  client_->Prepare(&context);
  RETURN_IF_ERROR(FromGrpcStatus((client_->stub()->*rpc)(&context, request, &response)));
  return response;
}

absl::Status Session::RevokePermissions() {
  return Unary(&v1::Broker::Stub::RevokePermissions, v1::RevokePermissionsRequest())
      .status();
}

absl::StatusOr<v1::GrantTokenResponse> Session::GrantToken(v1::GrantTokenRequest scope) {
  return Unary(&v1::Broker::Stub::GrantToken, std::move(scope));
}

absl::Status Session::RevokeToken(const std::string& token_id) {
  v1::RevokeTokenRequest request;
  request.set_token_id(token_id);
  return Unary(&v1::Broker::Stub::RevokeToken, std::move(request)).status();
}

absl::StatusOr<v1::InspectTokenResponse> Session::InspectToken(const std::string& token) {
  v1::InspectTokenRequest request;
  request.set_token(token);
  return Unary(&v1::Broker::Stub::InspectToken, std::move(request));
}

absl::StatusOr<v1::ExchangeTokenResponse> Session::ExchangeToken(
    v1::ExchangeTokenRequest request) {
  return Unary(&v1::Broker::Stub::ExchangeToken, std::move(request));
}

}  // namespace ffibroker
