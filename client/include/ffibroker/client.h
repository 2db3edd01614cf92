// The ffibroker C++ client: call native library functions through ffibrokerd.
//
//   auto client = ffibroker::Client::Connect("unix:/run/ffibroker/ffibrokerd.sock");
//   auto session = (*client)->CreateSession();
//   auto libm = (*session)->OpenLibrary("libm.so.6", {"f64 cos(f64 x)"});
//   absl::StatusOr<double> c = (*libm)->Call<double>("cos", 0.5);
//
// Errors are absl::Status values carrying the daemon's canonical code and
// message (see docs/errors.md); nothing here throws.
//
// Ownership: a Session borrows its Client, a Library borrows its Session;
// each must outlive what it created. Session and Library release their
// server-side state when destroyed (best effort; errors are ignored there —
// call Close() to see them). Thread-safety: Client is thread-safe; a Session
// or Library may be used from several threads (calls on one library are
// serialized by the daemon).
#ifndef FFIBROKER_CLIENT_CLIENT_H_
#define FFIBROKER_CLIENT_CLIENT_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ffibroker/v1/broker.grpc.pb.h"
#include "ffibroker/value.h"

namespace ffibroker {

class Session;
class Library;
class Instance;    // ffibroker/instance.h
class CallStream;  // ffibroker/call_stream.h

// An instance argument: its handle (see ffibroker/instance.h).
v1::Value ToValue(const Instance& instance);

// How to authenticate to the daemon besides the unix socket's peer
// credentials (which need nothing from the client).
struct ConnectOptions {
  // Sent as "authorization: Bearer KEY" on every RPC. Default: none.
  std::string api_key;
  // mTLS for a tcp: address: PEM CA certificates to verify the daemon
  // against, and the client's PEM certificate chain and private key. All
  // empty (the default) = plaintext.
  std::string tls_root_certs;
  std::string tls_cert_chain;
  std::string tls_private_key;
  // Overrides the name checked against the daemon's certificate.
  std::string tls_server_name;
};

class Client {
 public:
  // Connects to a daemon at `address`: "unix:/ABS/PATH", "tcp:HOST:PORT"
  // (plaintext on loopback, or TLS when `options` carries certificates) and
  // waits up to `timeout` for the connection. UNAVAILABLE if nothing
  // answers (or the TLS handshake fails), INVALID_ARGUMENT for a bad address.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(
      const std::string& address, absl::Duration timeout = absl::Seconds(5));
  static absl::StatusOr<std::unique_ptr<Client>> Connect(
      const std::string& address, const ConnectOptions& options,
      absl::Duration timeout = absl::Seconds(5));

  // Starts a session (0 = the daemon's default idle timeout).
  absl::StatusOr<std::unique_ptr<Session>> CreateSession(
      uint32_t idle_timeout_seconds = 0);

  // Who the daemon says we are (and, with a session id, its permission).
  absl::StatusOr<v1::WhoamiResponse> Whoami(const std::string& session_id = "");
  // The daemon's confinement: its profiles and the layers a worker started
  // now gets (the daemon starts a probe worker to find out).
  absl::StatusOr<v1::GetStatusResponse> GetStatus();
  // The daemon's metrics, Prometheus text format (see GetMetrics in broker.proto).
  absl::StatusOr<std::string> GetMetrics();

  // The generated stub, for RPCs this API does not wrap yet. Contexts for
  // it should go through Prepare() so the API key is sent.
  v1::Broker::Stub* stub() { return stub_.get(); }
  // Adds the authentication metadata to a context.
  void Prepare(grpc::ClientContext* context) const;

 private:
  Client(std::unique_ptr<v1::Broker::Stub> stub, std::string api_key)
      : stub_(std::move(stub)), api_key_(std::move(api_key)) {}
  std::unique_ptr<v1::Broker::Stub> stub_;
  std::string api_key_;
};

class Session {
 public:
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Opens `library` (a policy name like "libm.so.6" or an absolute path)
  // and resolves the declared functions, each written like "f64 cos(f64 x)".
  // With `token`, the open is authorized by the token instead of the
  // session's permission (see GrantToken).
  absl::StatusOr<std::unique_ptr<Library>> OpenLibrary(
      const std::string& library, const std::vector<std::string>& declarations,
      const std::string& token = "");
  // The same, also resolving exported variables written like
  // "mut i32 counter" or "optional f64 scale" (classes registered before
  // may be named in declarations; see docs/classes.md).
  absl::StatusOr<std::unique_ptr<Library>> OpenLibrary(
      const std::string& library, const std::vector<std::string>& declarations,
      const std::vector<std::string>& statics, const std::string& token = "");
  // Everything OpenLibrary can be asked for.
  struct OpenOptions {
    std::vector<std::string> statics;
    std::string token;
    // Workers serving the library (see OpenLibraryRequest.pool_size).
    uint32_t pool_size = 1;
  };
  absl::StatusOr<std::unique_ptr<Library>> OpenLibrary(
      const std::string& library, const std::vector<std::string>& declarations,
      const OpenOptions& options);

  // A CallStream bound to this session (see ffibroker/call_stream.h).
  absl::StatusOr<std::unique_ptr<CallStream>> OpenStream();

  // Drops this session's permission for good; libraries already open keep
  // working, new ones need a token.
  absl::Status RevokePermissions();
  // A capability token snapshotting this session's permission, narrowed
  // by `scope` (its session_id is filled in; leave the rest empty for the
  // whole permission).
  absl::StatusOr<v1::GrantTokenResponse> GrantToken(v1::GrantTokenRequest scope = {});
  // Revokes a token this caller's identity granted.
  absl::Status RevokeToken(const std::string& token_id);
  // Verifies `token` and returns its claims.
  absl::StatusOr<v1::InspectTokenResponse> InspectToken(const std::string& token);
  // A narrower token from `request.token()` (session_id is filled in).
  absl::StatusOr<v1::ExchangeTokenResponse> ExchangeToken(v1::ExchangeTokenRequest request);

  // Registers a class written like "Point { f64 x; mut f64 y; } ~point_free"
  // or "opaque Counter" (see docs/classes.md) and returns its C layout.
  // Libraries opened afterwards may name it in their declarations.
  absl::StatusOr<v1::ClassLayout> RegisterClass(const std::string& definition);
  absl::StatusOr<v1::ClassLayout> RegisterClass(const v1::ClassDefinition& definition);

  // Ends the session on the daemon (releasing all its libraries).
  absl::Status Close();

  const std::string& id() const { return id_; }
  Client* client() const { return client_; }

 private:
  friend class Client;
  friend class CallStream;  // parses callback declarations with classes_
  Session(Client* client, std::string id) : client_(client), id_(std::move(id)) {}
  template <typename Request, typename Response>
  absl::StatusOr<Response> Unary(
      grpc::Status (v1::Broker::Stub::*rpc)(grpc::ClientContext*, const Request&, Response*),
      Request request);
  Client* client_;
  std::string id_;
  bool closed_ = false;
  std::set<std::string> classes_;  // registered class names
};

class Library {
 public:
  ~Library();
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;

  // Calls `symbol` with untyped values; the result is absent for void.
  // `timeout` bounds the whole call (the daemon kills a worker that
  // overruns it and answers DEADLINE_EXCEEDED).
  absl::StatusOr<v1::CallResponse> CallValues(
      const std::string& symbol, const std::vector<v1::Value>& args,
      absl::Duration timeout = absl::InfiniteDuration());

  // Typed call: arguments are converted with ToValue, the result with
  // FromValue<R>. For R = void the return type is absl::Status.
  template <typename R, typename... Args>
  auto Call(const std::string& symbol, const Args&... args)
      -> std::conditional_t<std::is_void_v<R>, absl::Status, absl::StatusOr<R>> {
    absl::StatusOr<v1::CallResponse> response =
        CallValues(symbol, std::vector<v1::Value>{ToValue(args)...});
    if constexpr (std::is_void_v<R>) {
      return response.status();
    } else {
      if (!response.ok()) return response.status();
      if (!response->has_result()) {
        return absl::InvalidArgumentError(symbol + " returned void");
      }
      return FromValue<R>(response->result());
    }
  }

  // Runs `calls` (symbols of this library and their arguments) in order in
  // one exchange with one worker; one outcome per call, in order. What a
  // failure does to the others: docs/streams.md.
  absl::StatusOr<v1::CallBatchResponse> CallBatch(const std::vector<v1::BatchCall>& calls,
                                                  absl::Duration timeout = absl::InfiniteDuration());

  // Allocates an instance of a struct class in this library's worker with
  // the given fields (others zero). Freed when the Instance is destroyed.
  absl::StatusOr<std::unique_ptr<Instance>> NewInstance(
      const std::string& class_name, const v1::Value& fields = v1::Value());

  // Calls a function whose result is a class pointer and wraps the handle
  // (nullptr for a NULL result). Typed like Call.
  template <typename... Args>
  absl::StatusOr<std::unique_ptr<Instance>> CallInstance(const std::string& symbol,
                                                         const Args&... args) {
    absl::StatusOr<v1::CallResponse> response =
        CallValues(symbol, std::vector<v1::Value>{ToValue(args)...});
    if (!response.ok()) return response.status();
    return AdoptResult(symbol, *response);
  }

  // Wraps a handle result of CallValues (nullptr for null_value).
  absl::StatusOr<std::unique_ptr<Instance>> AdoptResult(const std::string& symbol,
                                                        const v1::CallResponse& response);

  // Reads / writes an exported variable declared with OpenLibrary's
  // `statics` (see Session::OpenLibrary).
  absl::StatusOr<v1::Value> ReadStatic(const std::string& name);
  absl::Status WriteStatic(const std::string& name, const v1::Value& value);

  // Releases the library (its worker is stopped).
  absl::Status Close();

  Session* session() const { return session_; }
  uint64_t handle() const { return handle_; }
  const std::string& resolved_path() const { return resolved_path_; }
  pid_t worker_pid() const { return worker_pid_; }
  // Every worker of its pool.
  const std::vector<pid_t>& worker_pids() const { return worker_pids_; }
  // Optional symbols and statics the library does not export.
  const std::vector<std::string>& missing_symbols() const { return missing_; }
  // The confinement layers in force in the worker that opened it.
  const v1::WorkerLayers& layers() const { return layers_; }

 private:
  friend class Session;
  Library(Session* session, const v1::OpenLibraryResponse& opened)
      : session_(session),
        handle_(opened.library_handle()),
        resolved_path_(opened.resolved_path()),
        worker_pid_(opened.worker_pid()),
        worker_pids_(opened.worker_pids().begin(), opened.worker_pids().end()),
        missing_(opened.missing_symbols().begin(), opened.missing_symbols().end()),
        layers_(opened.layers()) {}
  Session* session_;
  uint64_t handle_;
  std::string resolved_path_;
  pid_t worker_pid_;
  std::vector<pid_t> worker_pids_;
  std::vector<std::string> missing_;
  v1::WorkerLayers layers_;
  bool closed_ = false;
};

}  // namespace ffibroker

#endif  // FFIBROKER_CLIENT_CLIENT_H_
