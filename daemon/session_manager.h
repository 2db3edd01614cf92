// SessionManager: the daemon's sessions and the libraries they opened.
//
// The business logic behind the gRPC service: every public RPC maps to one
// method here, which takes the request proto and returns a Status or the
// response proto. Everything a session opened is stopped when the session is
// closed, expires (idle timeout) or the daemon shuts down.
//
// Thread-safety: all methods are thread-safe. Library calls run outside the
// manager's lock, so sessions never wait on each other's calls.
//
//   SessionManager sessions(&policy, worker_options);
//   ASSIGN_OR_RETURN(v1::CreateSessionResponse s, sessions.CreateSession({}));
#ifndef FFIBROKER_DAEMON_SESSION_MANAGER_H_
#define FFIBROKER_DAEMON_SESSION_MANAGER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/library.h"
#include "daemon/policy.h"
#include "daemon/worker_launcher.h"
#include "ffibroker/v1/broker.pb.h"

namespace ffibroker {

class SessionManager {
 public:
  // `policy` and `launcher` are borrowed and must outlive the manager.
  // `now` is the clock (a seam for tests).
  SessionManager(const Policy* policy, WorkerLauncher* launcher,
                 std::function<absl::Time()> now = absl::Now);
  ~SessionManager();  // stops every library

  absl::StatusOr<v1::CreateSessionResponse> CreateSession(
      const v1::CreateSessionRequest& request);
  absl::StatusOr<v1::CloseSessionResponse> CloseSession(
      const v1::CloseSessionRequest& request);
  absl::StatusOr<v1::OpenLibraryResponse> OpenLibrary(
      const v1::OpenLibraryRequest& request, absl::Time deadline);
  absl::StatusOr<v1::CloseLibraryResponse> CloseLibrary(
      const v1::CloseLibraryRequest& request);
  // `deadline` is the client's; the policy's max_call_millis caps it.
  absl::StatusOr<v1::CallResponse> Call(const v1::CallRequest& request,
                                        absl::Time deadline);

  // The profiles, required layers, worker count, and the layers of a probe
  // worker started now under the default profile.
  absl::StatusOr<v1::GetStatusResponse> GetStatus(absl::Time deadline);

  // Ends sessions idle past their timeout; returns how many ended.
  int ExpireIdleSessions();
  // Ends every session (stops every worker). New requests still work.
  void CloseAll();

 private:
  struct Session {
    uint64_t serial;  // shown in logs instead of the secret id
    absl::Duration idle_timeout;
    absl::Time last_used;
    uint64_t next_handle = 1;
    // shared: a call in flight keeps its library alive after CloseLibrary.
    std::map<uint64_t, std::shared_ptr<Library>> libraries;
  };

  // The session for `id`, touched; NOT_FOUND if there is none.
  absl::StatusOr<Session*> FindLocked(const std::string& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stops the libraries of a removed session; returns how many.
  static uint32_t StopAll(Session& session);

  const Policy* const policy_;
  WorkerLauncher* const launcher_;
  const std::function<absl::Time()> now_;

  absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<Session>> sessions_ ABSL_GUARDED_BY(mu_);
  uint64_t next_serial_ ABSL_GUARDED_BY(mu_) = 1;
  // Libraries open or being opened, in all sessions (each is one worker).
  uint32_t workers_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_SESSION_MANAGER_H_
