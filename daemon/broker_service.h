// BrokerService: the gRPC face of the daemon (ffibroker.v1.Broker).
//
// Thin by design: each handler hands the request to the SessionManager on
// the Executor (the work blocks on worker processes, which the callback API
// must not do on its own threads) and finishes the RPC with the converted
// status. No business logic lives here.
//
// Thread-safe; borrows the manager and executor, which must outlive it.
#ifndef FFIBROKER_DAEMON_BROKER_SERVICE_H_
#define FFIBROKER_DAEMON_BROKER_SERVICE_H_

#include "daemon/executor.h"
#include "daemon/session_manager.h"
#include "ffibroker/v1/broker.grpc.pb.h"

namespace ffibroker {

class BrokerService final : public v1::Broker::CallbackService {
 public:
  BrokerService(SessionManager* sessions, Executor* executor)
      : sessions_(sessions), executor_(executor) {}

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
  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* context,
                                      const v1::GetStatusRequest* request,
                                      v1::GetStatusResponse* response) override;

 private:
  // Runs `handler(deadline)` on the executor and finishes the RPC with its
  // result.
  template <typename Response, typename Handler>
  grpc::ServerUnaryReactor* Dispatch(grpc::CallbackServerContext* context,
                                     Response* response, Handler handler);

  SessionManager* const sessions_;
  Executor* const executor_;
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_BROKER_SERVICE_H_
