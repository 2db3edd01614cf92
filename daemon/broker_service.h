// BrokerService: the gRPC face of the daemon (ffibroker.v1.Broker).
//
// Thin by design: each handler authenticates the caller (Authenticator),
// hands the request to the SessionManager or TokenService and finishes the
// RPC with the converted status. No business logic lives here. Where the
// work runs:
//   - Call, CallBatch and CallStream start on gRPC's thread and finish from
//     the worker's reply (on the WorkerWatcher's thread): no thread waits
//     for a worker;
//   - Whoami, InspectToken and RegisterClass never block: they run inline;
//   - the rest may block (starting workers, destructors, the token
//     journal's fsync) and run on the Executor, which the callback API
//     needs for anything that blocks.
//
// Thread-safe; borrows everything, which must outlive it.
#ifndef FFIBROKER_DAEMON_BROKER_SERVICE_H_
#define FFIBROKER_DAEMON_BROKER_SERVICE_H_

#include "daemon/authenticator.h"
#include "daemon/executor.h"
#include "daemon/session_manager.h"
#include "daemon/token_service.h"
#include "ffibroker/v1/broker.grpc.pb.h"

namespace ffibroker {

class BrokerService final : public v1::Broker::CallbackService {
 public:
  BrokerService(SessionManager* sessions, TokenService* tokens,
                const Authenticator* auth, Executor* executor)
      : sessions_(sessions), tokens_(tokens), auth_(auth), executor_(executor) {}

  grpc::ServerUnaryReactor* CreateSession(grpc::CallbackServerContext* context,
                                          const v1::CreateSessionRequest* request,
                                          v1::CreateSessionResponse* response) override;
  grpc::ServerUnaryReactor* CloseSession(grpc::CallbackServerContext* context,
                                         const v1::CloseSessionRequest* request,
                                         v1::CloseSessionResponse* response) override;
  grpc::ServerUnaryReactor* OpenLibrary(grpc::CallbackServerContext* context,
                                        const v1::OpenLibraryRequest* request,
                                        v1::OpenLibraryResponse* response) override;
  grpc::ServerUnaryReactor* CloseLibrary(grpc::CallbackServerContext* context,
                                         const v1::CloseLibraryRequest* request,
                                         v1::CloseLibraryResponse* response) override;
  grpc::ServerUnaryReactor* Call(grpc::CallbackServerContext* context,
                                 const v1::CallRequest* request,
                                 v1::CallResponse* response) override;
  grpc::ServerUnaryReactor* CallBatch(grpc::CallbackServerContext* context,
                                      const v1::CallBatchRequest* request,
                                      v1::CallBatchResponse* response) override;
  grpc::ServerBidiReactor<v1::StreamRequest, v1::StreamResponse>* CallStream(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* RevokePermissions(
      grpc::CallbackServerContext* context, const v1::RevokePermissionsRequest* request,
      v1::RevokePermissionsResponse* response) override;
  grpc::ServerUnaryReactor* GrantToken(grpc::CallbackServerContext* context,
                                       const v1::GrantTokenRequest* request,
                                       v1::GrantTokenResponse* response) override;
  grpc::ServerUnaryReactor* RevokeToken(grpc::CallbackServerContext* context,
                                        const v1::RevokeTokenRequest* request,
                                        v1::RevokeTokenResponse* response) override;
  grpc::ServerUnaryReactor* InspectToken(grpc::CallbackServerContext* context,
                                         const v1::InspectTokenRequest* request,
                                         v1::InspectTokenResponse* response) override;
  grpc::ServerUnaryReactor* ExchangeToken(grpc::CallbackServerContext* context,
                                          const v1::ExchangeTokenRequest* request,
                                          v1::ExchangeTokenResponse* response) override;
  grpc::ServerUnaryReactor* Whoami(grpc::CallbackServerContext* context,
                                   const v1::WhoamiRequest* request,
                                   v1::WhoamiResponse* response) override;
  grpc::ServerUnaryReactor* RegisterClass(grpc::CallbackServerContext* context,
                                          const v1::RegisterClassRequest* request,
                                          v1::RegisterClassResponse* response) override;
  grpc::ServerUnaryReactor* NewInstance(grpc::CallbackServerContext* context,
                                        const v1::NewInstanceRequest* request,
                                        v1::NewInstanceResponse* response) override;
  grpc::ServerUnaryReactor* ReadFields(grpc::CallbackServerContext* context,
                                       const v1::ReadFieldsRequest* request,
                                       v1::ReadFieldsResponse* response) override;
  grpc::ServerUnaryReactor* WriteFields(grpc::CallbackServerContext* context,
                                        const v1::WriteFieldsRequest* request,
                                        v1::WriteFieldsResponse* response) override;
  grpc::ServerUnaryReactor* FreeInstance(grpc::CallbackServerContext* context,
                                         const v1::FreeInstanceRequest* request,
                                         v1::FreeInstanceResponse* response) override;
  grpc::ServerUnaryReactor* ReadStatic(grpc::CallbackServerContext* context,
                                       const v1::ReadStaticRequest* request,
                                       v1::ReadStaticResponse* response) override;
  grpc::ServerUnaryReactor* WriteStatic(grpc::CallbackServerContext* context,
                                        const v1::WriteStaticRequest* request,
                                        v1::WriteStaticResponse* response) override;
  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* context,
                                      const v1::GetStatusRequest* request,
                                      v1::GetStatusResponse* response) override;
  grpc::ServerUnaryReactor* ParseDeclarations(grpc::CallbackServerContext* context,
                                              const v1::ParseDeclarationsRequest* request,
                                              v1::ParseDeclarationsResponse* response) override;
  grpc::ServerUnaryReactor* GetMetrics(grpc::CallbackServerContext* context,
                                       const v1::GetMetricsRequest* request,
                                       v1::GetMetricsResponse* response) override;

 private:
  // Authenticates the caller, then runs `handler(caller, deadline)` on the
  // executor and finishes the RPC with its result. No exception escapes:
  // one thrown by the handler is logged with `method` (the calling
  // handler's name) and answered RESOURCE_EXHAUSTED (std::bad_alloc) or
  // INTERNAL (anything else).
  // kInline runs the handler on gRPC's thread (it must not block).
  // kExecutor runs it within the caller's share of the executor's threads
  // (Executor: at most --threads-per-principal of them at once);
  // kUnshared outside any share (revocations: quick, and never to wait
  // behind the same principal's hung opens).
  enum class Where { kExecutor, kInline, kUnshared };
  template <typename Response, typename Handler>
  grpc::ServerUnaryReactor* Dispatch(grpc::CallbackServerContext* context,
                                     Response* response, Handler handler,
                                     const char* method = __builtin_FUNCTION(),
                                     Where where = Where::kExecutor);
  // Authenticates the caller, then runs `start(caller, deadline, done)` on
  // gRPC's thread; `done(StatusOr<Response>)` finishes the RPC, from
  // whatever thread completes the work. Exceptions as Dispatch.
  template <typename Response, typename Start>
  grpc::ServerUnaryReactor* DispatchAsync(grpc::CallbackServerContext* context,
                                          Response* response, Start start,
                                          const char* method = __builtin_FUNCTION());

  SessionManager* const sessions_;
  TokenService* const tokens_;
  const Authenticator* const auth_;
  Executor* const executor_;
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_BROKER_SERVICE_H_
