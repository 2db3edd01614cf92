#include "daemon/broker_service.h"

#include <algorithm>
#include <atomic>
#include "daemon/metrics.h"

#include <chrono>
#include <memory>
#include <exception>
#include <new>

#include "absl/strings/str_cat.h"
#include "common/error_reason.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "daemon/answer_once.h"
#include "daemon/call_stream.h"
#include "daemon/declaration_text.h"

namespace ffibroker {
namespace {

// The daemon's deadline for a request: the client's, less a margin (a
// tenth of the time left, at most 50 ms). A call the daemon ends at its
// deadline (killing a hung worker) is answered saying so; without the
// margin the client's own timer wins that race and shows gRPC's bare
// "Deadline Exceeded", and the worker is recorded as cancelled.
absl::Time DeadlineOf(grpc::CallbackServerContext* context) {
  std::chrono::system_clock::time_point deadline = context->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) {
    return absl::InfiniteFuture();
  }
  const absl::Time client = absl::FromChrono(deadline);
  const absl::Duration left = client - absl::Now();
  return client - std::clamp(left / 10, absl::ZeroDuration(), absl::Milliseconds(50));
}

// Runs `handler`; an exception (none is expected: handlers return Status)
// becomes a status and a log line instead of ending the daemon.
template <typename Response, typename Handler>
absl::StatusOr<Response> RunGuarded(const char* method, const Caller& caller, absl::Time deadline,
                                    const Handler& handler) {
  try {
    return handler(caller, deadline);
  } catch (const std::bad_alloc&) {
    LOG_ERROR("%s: out of memory serving principal %s", method, caller.principal);
    return absl::ResourceExhaustedError(
        absl::StrCat(method, ": the daemon ran out of memory serving this request"));
  } catch (const std::exception& e) {
    LOG_ERROR("%s: exception serving principal %s: %s", method, caller.principal, e.what());
    return absl::InternalError(absl::StrCat(method, ": internal error: ", e.what()));
  } catch (...) {
    LOG_ERROR("%s: unknown exception serving principal %s", method, caller.principal);
    return absl::InternalError(absl::StrCat(method, ": internal error"));
  }
}

}  // namespace

template <typename Response, typename Handler>
grpc::ServerUnaryReactor* BrokerService::Dispatch(
    grpc::CallbackServerContext* context, Response* response, Handler handler,
    const char* method, Where where) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<Caller> caller = auth_->Authenticate(*context);
  if (!caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  absl::Time deadline = DeadlineOf(context);
  if (where == Where::kInline) {
    absl::StatusOr<Response> result = RunGuarded<Response>(method, *caller, deadline, handler);
    if (result.ok()) *response = std::move(*result);
    reactor->Finish(ToGrpcStatus(result.status()));
    return reactor;
  }
  // Shares are those of the per-principal limits: one per local user of
  // a principal that matches any local user.
  const std::string holder = where == Where::kUnshared ? "" : caller->limits_holder;
  const bool queued = executor_->Submit(
      holder, [reactor, response, deadline, handler, method, caller = *std::move(caller)]() {
        absl::StatusOr<Response> result =
            RunGuarded<Response>(method, caller, deadline, handler);
        if (result.ok()) *response = std::move(*result);
        reactor->Finish(ToGrpcStatus(result.status()));
      });
  if (!queued) {
    reactor->Finish(ToGrpcStatus(absl::ResourceExhaustedError(absl::StrCat(
        method, ": principal '", holder, "' already has ", Executor::kMaxWaitingPerPrincipal,
        " requests waiting for its share of the daemon's threads (--threads-per-principal ",
        executor_->per_principal(), ")"))));
  }
  return reactor;
}

grpc::ServerUnaryReactor* BrokerService::CreateSession(
    grpc::CallbackServerContext* context, const v1::CreateSessionRequest* request,
    v1::CreateSessionResponse* response) {
  return Dispatch(context, response, [this, request](const Caller& caller, absl::Time) {
    return sessions_->CreateSession(*request, caller);
  });
}

grpc::ServerUnaryReactor* BrokerService::CloseSession(
    grpc::CallbackServerContext* context, const v1::CloseSessionRequest* request,
    v1::CloseSessionResponse* response) {
  return DispatchAsync(context, response,
                       [this, request](const Caller& caller, absl::Time, auto done) {
                         sessions_->CloseSession(*request, caller, std::move(done));
                       });
}

grpc::ServerUnaryReactor* BrokerService::OpenLibrary(
    grpc::CallbackServerContext* context, const v1::OpenLibraryRequest* request,
    v1::OpenLibraryResponse* response) {
  // Checked on the gRPC thread; the workers start on the daemon's starter
  // threads, and the open finishes from there (SessionManager::OpenLibrary).
  return DispatchAsync(context, response,
                       [this, request, context](const Caller& caller, absl::Time deadline,
                                                auto done) {
    // Safe from any thread with the callback API, until the RPC finishes.
    auto cancelled = [context] { return context->IsCancelled(); };
    if (!HasDeclarationText(*request)) {
      return sessions_->OpenLibrary(*request, caller, deadline, std::move(done), cancelled);
    }
    v1::OpenLibraryRequest expanded = *request;
    absl::StatusOr<std::set<std::string>> classes =
        sessions_->ClassNames(request->session_id(), caller);
    absl::Status status = classes.status();
    if (status.ok()) status = ExpandDeclarationText(&expanded, *classes);
    if (!status.ok()) return done(status);
    sessions_->OpenLibrary(expanded, caller, deadline, std::move(done), cancelled);
  });
}

grpc::ServerUnaryReactor* BrokerService::CloseLibrary(
    grpc::CallbackServerContext* context, const v1::CloseLibraryRequest* request,
    v1::CloseLibraryResponse* response) {
  return DispatchAsync(context, response,
                       [this, request](const Caller& caller, absl::Time, auto done) {
                         sessions_->CloseLibrary(*request, caller, std::move(done));
                       });
}

namespace {

// A unary RPC's reactor that holds its answer's share of the principal's
// unread answers (max_unread_answers_mib) until gRPC is done with the RPC:
// sent, or the client gone.
class AnswerReactor final : public grpc::ServerUnaryReactor {
 public:
  // Before Finish; OnDone releases it.
  void Hold(PrincipalQuota::Reservation held) { held_ = std::move(held); }
  void OnDone() override { delete this; }

 private:
  ~AnswerReactor() override = default;
  PrincipalQuota::Reservation held_;
};

}  // namespace

template <typename Response, typename Start>
grpc::ServerUnaryReactor* BrokerService::DispatchAsync(grpc::CallbackServerContext* context,
                                                       Response* response, Start start,
                                                       const char* method) {
  AnswerReactor* reactor = new AnswerReactor();
  absl::StatusOr<Caller> authenticated = auth_->Authenticate(*context);
  if (!authenticated.ok()) {
    reactor->Finish(ToGrpcStatus(authenticated.status()));
    return reactor;
  }
  auto caller = std::make_shared<const Caller>(*std::move(authenticated));
  // Finishes once: by the completion, by the guard if an exception escaped
  // before the completion could run, or by the AnswerOnce if the chain of
  // completions is dropped unanswered. The answer holds its share of the
  // principal's unread answers until gRPC is done with it.
  auto finished = std::make_shared<std::atomic<bool>>(false);
  auto finish = [sessions = sessions_, reactor, response, finished,
                 caller](absl::StatusOr<Response> result) {
    if (finished->exchange(true)) return;
    absl::Status status = result.status();
    if (result.ok()) {
      *response = std::move(*result);
      absl::StatusOr<PrincipalQuota::Reservation> held =
          sessions->ReserveAnswer(*caller, response->ByteSizeLong());
      if (held.ok()) {
        reactor->Hold(*std::move(held));
      } else {
        response->Clear();
        status = held.status();
      }
    }
    reactor->Finish(ToGrpcStatus(status));
  };
  absl::StatusOr<Response> thrown = RunGuarded<Response>(
      method, *caller, DeadlineOf(context),
      [&](const Caller& who, absl::Time deadline) -> absl::StatusOr<Response> {
        start(who, deadline, AnswerOnce<absl::StatusOr<Response>>(method, finish));
        return Response();
      });
  if (!thrown.ok()) finish(thrown.status());
  return reactor;
}

grpc::ServerUnaryReactor* BrokerService::Call(grpc::CallbackServerContext* context,
                                              const v1::CallRequest* request,
                                              v1::CallResponse* response) {
  // Runs on the gRPC thread up to sending the request to the worker, and
  // finishes from the worker's reply: no thread waits for the worker.
  return DispatchAsync(context, response,
                       [this, request](const Caller& caller, absl::Time deadline, auto done) {
                         sessions_->Call(*request, caller, deadline, std::move(done));
                       });
}

grpc::ServerUnaryReactor* BrokerService::CallBatch(grpc::CallbackServerContext* context,
                                                   const v1::CallBatchRequest* request,
                                                   v1::CallBatchResponse* response) {
  return DispatchAsync(context, response,
                       [this, request](const Caller& caller, absl::Time deadline, auto done) {
                         sessions_->CallBatch(*request, caller, deadline, std::move(done));
                       });
}

grpc::ServerBidiReactor<v1::StreamRequest, v1::StreamResponse>* BrokerService::CallStream(
    grpc::CallbackServerContext* context) {
  // A reactor that only reports a refusal.
  class Refused final : public grpc::ServerBidiReactor<v1::StreamRequest, v1::StreamResponse> {
   public:
    explicit Refused(const grpc::Status& status) { Finish(status); }
    void OnDone() override { delete this; }
  };
  absl::StatusOr<Caller> caller = auth_->Authenticate(*context);
  if (!caller.ok()) return new Refused(ToGrpcStatus(caller.status()));
  absl::StatusOr<PrincipalQuota::Reservation> stream = sessions_->ReserveStream(*caller);
  if (!stream.ok()) {
    return new Refused(ToGrpcStatus(WithNewMessage(
        stream.status(), absl::StrCat("CallStream: ", stream.status().message()))));
  }
  return new CallStreamReactor(sessions_, *std::move(caller), DeadlineOf(context),
                               *std::move(stream));
}

grpc::ServerUnaryReactor* BrokerService::RevokePermissions(
    grpc::CallbackServerContext* context, const v1::RevokePermissionsRequest* request,
    v1::RevokePermissionsResponse* response) {
  return Dispatch(context, response, [this, request](const Caller& caller, absl::Time) {
    return sessions_->RevokePermissions(*request, caller);
  }, __builtin_FUNCTION(), Where::kUnshared);
}

grpc::ServerUnaryReactor* BrokerService::GrantToken(
    grpc::CallbackServerContext* context, const v1::GrantTokenRequest* request,
    v1::GrantTokenResponse* response) {
  return Dispatch(context, response, [this, request](const Caller& caller, absl::Time) {
    return tokens_->Grant(*request, caller);
  });
}

grpc::ServerUnaryReactor* BrokerService::RevokeToken(
    grpc::CallbackServerContext* context, const v1::RevokeTokenRequest* request,
    v1::RevokeTokenResponse* response) {
  return Dispatch(context, response, [this, request](const Caller& caller, absl::Time) {
    return tokens_->Revoke(*request, caller);
  }, __builtin_FUNCTION(), Where::kUnshared);
}

grpc::ServerUnaryReactor* BrokerService::InspectToken(
    grpc::CallbackServerContext* context, const v1::InspectTokenRequest* request,
    v1::InspectTokenResponse* response) {
  return Dispatch(context, response, [this, request](const Caller& caller, absl::Time) {
    return tokens_->Inspect(*request, caller);
  }, __builtin_FUNCTION(), Where::kInline);
}

grpc::ServerUnaryReactor* BrokerService::ExchangeToken(
    grpc::CallbackServerContext* context, const v1::ExchangeTokenRequest* request,
    v1::ExchangeTokenResponse* response) {
  return Dispatch(context, response, [this, request](const Caller& caller, absl::Time) {
    return tokens_->Exchange(*request, caller);
  });
}

grpc::ServerUnaryReactor* BrokerService::Whoami(
    grpc::CallbackServerContext* context, const v1::WhoamiRequest* request,
    v1::WhoamiResponse* response) {
  return Dispatch(context, response, [this, request](const Caller& caller, absl::Time) {
    return tokens_->Whoami(*request, caller);
  }, __builtin_FUNCTION(), Where::kInline);
}

grpc::ServerUnaryReactor* BrokerService::RegisterClass(grpc::CallbackServerContext* context,
                                               const v1::RegisterClassRequest* request,
                                               v1::RegisterClassResponse* response) {
  return Dispatch(context, response, [this, request](const Caller& caller, absl::Time)
                                          -> absl::StatusOr<v1::RegisterClassResponse> {
    if (request->text().empty()) return sessions_->RegisterClass(*request, caller);
    v1::RegisterClassRequest expanded = *request;
    ASSIGN_OR_RETURN(std::set<std::string> classes,
                     sessions_->ClassNames(request->session_id(), caller));
    RETURN_IF_ERROR(ExpandClassText(&expanded, classes));
    return sessions_->RegisterClass(expanded, caller);
  }, __builtin_FUNCTION(), Where::kInline);
}

grpc::ServerUnaryReactor* BrokerService::NewInstance(grpc::CallbackServerContext* context,
                                               const v1::NewInstanceRequest* request,
                                               v1::NewInstanceResponse* response) {
  return DispatchAsync(context, response,
                       [this, request](const Caller& caller, absl::Time deadline, auto done) {
                         sessions_->NewInstance(*request, caller, deadline, std::move(done));
                       });
}

grpc::ServerUnaryReactor* BrokerService::ReadFields(grpc::CallbackServerContext* context,
                                               const v1::ReadFieldsRequest* request,
                                               v1::ReadFieldsResponse* response) {
  return DispatchAsync(context, response,
                       [this, request](const Caller& caller, absl::Time deadline, auto done) {
                         sessions_->ReadFields(*request, caller, deadline, std::move(done));
                       });
}

grpc::ServerUnaryReactor* BrokerService::WriteFields(grpc::CallbackServerContext* context,
                                               const v1::WriteFieldsRequest* request,
                                               v1::WriteFieldsResponse* response) {
  return DispatchAsync(context, response,
                       [this, request](const Caller& caller, absl::Time deadline, auto done) {
                         sessions_->WriteFields(*request, caller, deadline, std::move(done));
                       });
}

grpc::ServerUnaryReactor* BrokerService::FreeInstance(grpc::CallbackServerContext* context,
                                               const v1::FreeInstanceRequest* request,
                                               v1::FreeInstanceResponse* response) {
  return DispatchAsync(context, response,
                       [this, request](const Caller& caller, absl::Time deadline, auto done) {
                         sessions_->FreeInstance(*request, caller, deadline, std::move(done));
                       });
}

grpc::ServerUnaryReactor* BrokerService::ReadStatic(grpc::CallbackServerContext* context,
                                               const v1::ReadStaticRequest* request,
                                               v1::ReadStaticResponse* response) {
  return DispatchAsync(context, response,
                       [this, request](const Caller& caller, absl::Time deadline, auto done) {
                         sessions_->ReadStatic(*request, caller, deadline, std::move(done));
                       });
}

grpc::ServerUnaryReactor* BrokerService::WriteStatic(grpc::CallbackServerContext* context,
                                               const v1::WriteStaticRequest* request,
                                               v1::WriteStaticResponse* response) {
  return DispatchAsync(context, response,
                       [this, request](const Caller& caller, absl::Time deadline, auto done) {
                         sessions_->WriteStatic(*request, caller, deadline, std::move(done));
                       });
}

grpc::ServerUnaryReactor* BrokerService::GetMetrics(grpc::CallbackServerContext* context,
                                                    const v1::GetMetricsRequest*,
                                                    v1::GetMetricsResponse* response) {
  return Dispatch(context, response, [](const Caller& caller, absl::Time)
                                         -> absl::StatusOr<v1::GetMetricsResponse> {
    if (!caller.read_metrics) {
      return absl::PermissionDeniedError(absl::StrCat(
          "principal '", caller.principal,
          "' may not read metrics (they name every principal's libraries and symbols); the "
          "policy must set read_metrics: true for it"));
    }
    v1::GetMetricsResponse metrics;
    metrics.set_text(metrics::Render());
    return absl::StatusOr<v1::GetMetricsResponse>(std::move(metrics));
  });
}

grpc::ServerUnaryReactor* BrokerService::GetStatus(grpc::CallbackServerContext* context,
                                                   const v1::GetStatusRequest*,
                                                   v1::GetStatusResponse* response) {
  return DispatchAsync(context, response,
                       [this](const Caller& caller, absl::Time, auto done) {
                         sessions_->GetStatus(caller, std::move(done));
                       });
}

grpc::ServerUnaryReactor* BrokerService::ParseDeclarations(
    grpc::CallbackServerContext* context, const v1::ParseDeclarationsRequest* request,
    v1::ParseDeclarationsResponse* response) {
  return Dispatch(context, response, [this, request](const Caller& caller, absl::Time)
                                          -> absl::StatusOr<v1::ParseDeclarationsResponse> {
    std::set<std::string> classes;
    if (!request->session_id().empty()) {
      ASSIGN_OR_RETURN(classes, sessions_->ClassNames(request->session_id(), caller));
    }
    return ParseDeclarationTexts(*request, std::move(classes));
  });
}

}  // namespace ffibroker
