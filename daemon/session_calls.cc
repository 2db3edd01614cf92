// SessionManager (session_manager.h): calls and batches, after one
// authorization, finished from the worker's reply.
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "daemon/metrics.h"
#include "daemon/session_manager.h"

namespace ffibroker {
namespace {

// Worker ends and library faults are logged; client mistakes are not.
void LogIfWorkerFault(uint64_t serial, const absl::Status& status) {
  if (absl::IsUnavailable(status) || absl::IsPermissionDenied(status) ||
      absl::IsResourceExhausted(status) || absl::IsDeadlineExceeded(status) ||
      absl::IsDataLoss(status)) {
    LOG_WARNING("session s%d: %s", serial, status.ToString());
  }
}

}  // namespace

void SessionManager::Call(const v1::CallRequest& request, const Caller& caller,
                          absl::Time deadline, Library::CallDone done) {
  absl::StatusOr<Authorized> op =
      Authorize(request.session_id(), caller, request.library_handle(), "Call", request.symbol(),
                deadline, NewHandle::kIfResultIsInstance);
  if (!op.ok()) return done(op.status());
  if (op->audit_calls) {
    audit_->Record("call", {{"principal", caller.principal},
                            {"session", SessionField(op->serial)},
                            {"token_id", op->token_id},
                            {"library", op->library->path()},
                            {"symbol", request.symbol()}});
  }
  std::vector<PrincipalQuota::Reservation> instance;
  instance.push_back(std::move(op->instance));
  InstanceHooks context = ContextFor(op->serial, request.library_handle(), std::move(instance));
  std::shared_ptr<Library> library = op->library;
  const uint64_t serial = op->serial;
  absl::Time capped = op->deadline;
  // The authorization (its calls-in-flight slot) is held until the call ends.
  auto held = std::make_shared<Authorized>(*std::move(op));
  library->Call(request, capped, context,
                [serial, held, done = std::move(done), started = absl::Now(),
                 symbol = request.symbol()](absl::StatusOr<v1::CallResponse> response) mutable {
                  metrics::CallDone(held->library->path(), symbol, response.status().code(),
                                    absl::Now() - started);
                  if (!response.ok()) LogIfWorkerFault(serial, response.status());
                  held.reset();  // the calls-in-flight slot is free before the answer
                  done(std::move(response));
                });
}

void SessionManager::CallBatch(const v1::CallBatchRequest& request, const Caller& caller,
                               absl::Time deadline, Library::BatchDone done) {
  std::shared_ptr<const Policy> policy = policies_->Get();
  const uint32_t max_calls = policy->limits().max_batch_calls();
  if (static_cast<uint32_t>(request.calls_size()) > max_calls) {
    return done(absl::ResourceExhaustedError(absl::StrCat(
        "a batch of ", request.calls_size(), " calls is larger than the policy allows "
        "(limits.max_batch_calls ", max_calls, ")")));
  }
  if (request.calls_size() == 0) return done(v1::CallBatchResponse());
  absl::StatusOr<Authorized> op =
      Authorize(request.session_id(), caller, request.library_handle(), "CallBatch",
                request.calls(0).symbol(), deadline, NewHandle::kIfResultIsInstance, &request);
  if (!op.ok()) return done(op.status());
  if (op->audit_calls) {
    for (const v1::BatchCall& call : request.calls()) {
      audit_->Record("call", {{"principal", caller.principal},
                              {"session", SessionField(op->serial)},
                              {"token_id", op->token_id},
                              {"library", op->library->path()},
                              {"symbol", call.symbol()}});
    }
  }
  InstanceHooks context =
      ContextFor(op->serial, request.library_handle(), std::move(op->batch_instances));
  std::shared_ptr<Library> library = op->library;
  const uint64_t serial = op->serial;
  absl::Time capped = op->deadline;
  auto held = std::make_shared<Authorized>(*std::move(op));
  std::vector<std::string> symbols;
  for (const v1::BatchCall& call : request.calls()) symbols.push_back(call.symbol());
  library->CallBatch(request, capped, context,
                     [serial, held, done = std::move(done), started = absl::Now(),
                      symbols = std::move(symbols)](
                         absl::StatusOr<v1::CallBatchResponse> response) mutable {
                       // Each call of the batch counts, with its share of the time.
                       absl::Duration each = (absl::Now() - started) / symbols.size();
                       for (size_t i = 0; i < symbols.size(); ++i) {
                         absl::StatusCode code =
                             !response.ok() ? response.status().code()
                             : static_cast<int>(i) < response->outcomes_size()
                                 ? static_cast<absl::StatusCode>(
                                       response->outcomes(static_cast<int>(i)).status().code())
                                 : absl::StatusCode::kUnknown;
                         metrics::CallDone(held->library->path(), symbols[i], code, each);
                       }
                       if (!response.ok()) LogIfWorkerFault(serial, response.status());
                       held.reset();  // the calls-in-flight slot is free before the answer
                       done(std::move(response));
                     });
}

}  // namespace ffibroker
