// SessionManager (session_manager.h): calls and batches, after one
// authorization, finished from the worker's reply.
#include "common/error_reason.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/log_event.h"
#include "daemon/metrics.h"
#include "daemon/session_manager.h"

namespace ffibroker {
namespace {

// Worker ends and library faults are logged (with the call's principal,
// session, library and symbol as journal fields); client mistakes are not.
void LogIfWorkerFault(const std::string& principal, uint64_t serial, const std::string& library,
                      const std::string& symbol, const absl::Status& status) {
  if (absl::IsUnavailable(status) || absl::IsPermissionDenied(status) ||
      absl::IsResourceExhausted(status) || absl::IsDeadlineExceeded(status) ||
      absl::IsDataLoss(status)) {
    LogFields fields;
    fields.Event("call_failed").Principal(principal).Session(serial).Library(library);
    if (!symbol.empty()) fields.Symbol(symbol);  // a whole batch names none
    LOG_EVENT(LogLevel::kWarning, fields, "session s%d: %s", serial, StatusText(status));
  }
}

}  // namespace

void SessionManager::AuditCall(const Caller& caller, const Authorized& op,
                               const std::string& symbol) {
  audit_->Record("call", {{"principal", caller.principal},
                          {"session", SessionField(op.serial)},
                          {"token_id", op.token_id},
                          {"library", op.library->path()},
                          {"symbol", symbol}});
}

void SessionManager::ChargeThen(std::shared_ptr<Authorized> op, const Caller& caller,
                                uint64_t handle, std::string operation, std::string detail,
                                absl::AnyInvocable<void(absl::Status)> next) {
  journal_->Submit([this, op = std::move(op), caller, handle, operation = std::move(operation),
                    detail = std::move(detail), next = std::move(next)]() mutable {
    next(ChargeToken(caller, op->serial, handle, *op->deferred_token, op->deferred_calls,
                     operation, detail));
  });
}

void SessionManager::WhenCharged(
    absl::StatusOr<Authorized> op, const Caller& caller, uint64_t handle, std::string operation,
    std::string detail,
    absl::AnyInvocable<void(absl::StatusOr<std::shared_ptr<Authorized>>)> next) {
  if (!op.ok()) return next(op.status());
  auto held = std::make_shared<Authorized>(*std::move(op));
  if (!held->deferred_token.has_value()) return next(std::move(held));
  ChargeThen(held, caller, handle, std::move(operation), std::move(detail),
             [held, next = std::move(next)](absl::Status charged) mutable {
               if (!charged.ok()) return next(charged);
               next(std::move(held));
             });
}

void SessionManager::WithLibrary(
    const std::string& id, const Caller& caller, uint64_t handle, std::string operation,
    std::string detail, absl::Time deadline, NewHandle new_handle,
    absl::AnyInvocable<void(absl::StatusOr<std::shared_ptr<Authorized>>)> next) {
  absl::StatusOr<Authorized> op = Authorize(id, caller, handle, operation, detail, deadline,
                                            new_handle, nullptr, TokenCharge::kDeferIfJournaled);
  WhenCharged(std::move(op), caller, handle, std::move(operation), std::move(detail),
              std::move(next));
}

void SessionManager::Call(const v1::CallRequest& request, const Caller& caller,
                          absl::Time deadline, Library::CallDone done,
                          CallbackContext callbacks) {
  absl::StatusOr<Authorized> op =
      Authorize(request.session_id(), caller, request.library_handle(), "Call", request.symbol(),
                deadline, NewHandle::kIfResultIsInstance, nullptr,
                TokenCharge::kDeferIfJournaled);
  if (!op.ok()) return done(op.status());
  // The authorization (its calls-in-flight slot) is held until the call ends.
  auto held = std::make_shared<Authorized>(*std::move(op));
  if (!held->deferred_token.has_value()) {
    return StartCall(request, caller, std::move(held), std::move(done), std::move(callbacks));
  }
  auto copy = std::make_shared<v1::CallRequest>(request);
  ChargeThen(held, caller, request.library_handle(), "Call", request.symbol(),
             [this, copy, caller, held, done = std::move(done),
              callbacks = std::move(callbacks)](absl::Status charged) mutable {
               if (!charged.ok()) return done(charged);
               StartCall(*copy, caller, std::move(held), std::move(done), std::move(callbacks));
             });
}

void SessionManager::StartCall(const v1::CallRequest& request, const Caller& caller,
                               std::shared_ptr<Authorized> held, Library::CallDone done,
                               CallbackContext callbacks) {
  if (held->audit_calls) AuditCall(caller, *held, request.symbol());
  std::vector<PrincipalQuota::Reservation> instance;
  instance.push_back(std::move(held->instance));
  InstanceHooks context =
      ContextFor(held->serial, request.library_handle(), held->open, std::move(instance));
  context.callbacks = std::move(callbacks);
  std::shared_ptr<Library> library = held->library;
  const uint64_t serial = held->serial;
  library->Call(request, held->deadline, context,
                [serial, held, done = std::move(done), started = absl::Now(),
                 principal = caller.principal,
                 symbol = request.symbol()](absl::StatusOr<v1::CallResponse> response) mutable {
                  metrics::CallDone(held->library->path(), symbol, response.status().code(),
                                    absl::Now() - started);
                  if (!response.ok()) {
                    LogIfWorkerFault(principal, serial, held->library->path(), symbol,
                                     response.status());
                  }
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
  const std::string first = request.calls_size() > 0 ? request.calls(0).symbol() : "";
  absl::StatusOr<Authorized> op =
      Authorize(request.session_id(), caller, request.library_handle(), "CallBatch", first,
                deadline, NewHandle::kIfResultIsInstance, &request,
                TokenCharge::kDeferIfJournaled);
  if (!op.ok()) return done(op.status());
  // An empty batch names a session and a library like any other: checked
  // above, it has nothing to run.
  if (request.calls_size() == 0) return done(v1::CallBatchResponse());
  auto held = std::make_shared<Authorized>(*std::move(op));
  if (!held->deferred_token.has_value()) {
    return StartBatch(request, caller, std::move(held), std::move(done));
  }
  auto copy = std::make_shared<v1::CallBatchRequest>(request);
  ChargeThen(held, caller, request.library_handle(), "CallBatch", request.calls(0).symbol(),
             [this, copy, caller, held, done = std::move(done)](absl::Status charged) mutable {
               if (!charged.ok()) return done(charged);
               StartBatch(*copy, caller, std::move(held), std::move(done));
             });
}

void SessionManager::StartBatch(const v1::CallBatchRequest& request, const Caller& caller,
                                std::shared_ptr<Authorized> held, Library::BatchDone done) {
  if (held->audit_calls) {
    for (const v1::BatchCall& call : request.calls()) AuditCall(caller, *held, call.symbol());
  }
  InstanceHooks context =
      ContextFor(held->serial, request.library_handle(), held->open,
                 std::move(held->batch_instances));
  std::shared_ptr<Library> library = held->library;
  const uint64_t serial = held->serial;
  absl::Time capped = held->deadline;
  std::vector<std::string> symbols;
  for (const v1::BatchCall& call : request.calls()) symbols.push_back(call.symbol());
  library->CallBatch(request, capped, context,
                     [serial, held, done = std::move(done), started = absl::Now(),
                      principal = caller.principal, symbols = std::move(symbols)](
                         absl::StatusOr<v1::CallBatchResponse> response) mutable {
                       // Each call of the batch counts, with its share of the time;
                       // a run of calls of one symbol and outcome is counted at once.
                       absl::Duration each = (absl::Now() - started) / symbols.size();
                       auto code_of = [&response](size_t i) {
                         if (!response.ok()) return response.status().code();
                         if (i >= static_cast<size_t>(response->outcomes_size())) {
                           return absl::StatusCode::kUnknown;
                         }
                         return static_cast<absl::StatusCode>(
                             response->outcomes(static_cast<int>(i)).status().code());
                       };
                       for (size_t i = 0, run = 1; i < symbols.size(); i += run) {
                         const absl::StatusCode code = code_of(i);
                         run = 1;
                         while (i + run < symbols.size() && symbols[i + run] == symbols[i] &&
                                code_of(i + run) == code) {
                           ++run;
                         }
                         metrics::CallsDone(held->library->path(), symbols[i], code, run, each);
                       }
                       if (!response.ok()) {
                         LogIfWorkerFault(principal, serial, held->library->path(), "",
                                          response.status());
                       }
                       held.reset();  // the calls-in-flight slot is free before the answer
                       done(std::move(response));
                     });
}

}  // namespace ffibroker
