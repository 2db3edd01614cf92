// PolicyHolder: the policy currently in force, swappable atomically.
//
// A validator given at construction (the daemon checks that every profile
// a policy names exists) must accept a new policy before it is swapped in.
//
// Readers take a shared_ptr snapshot and use it for the whole request, so a
// reload never changes a policy under a request's feet; Reload() parses the
// new file completely before swapping, so a bad file leaves the old policy
// in force.
//
// Thread-safe.
//
//   PolicyHolder holder(std::move(policy), path);
//   std::shared_ptr<const Policy> now = holder.Get();
//   absl::Status s = holder.Reload();   // INVALID_ARGUMENT: old one kept
#ifndef FFIBROKER_DAEMON_POLICY_HOLDER_H_
#define FFIBROKER_DAEMON_POLICY_HOLDER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "daemon/policy.h"

namespace ffibroker {

class PolicyHolder {
 public:
  using Validator = std::function<absl::Status(const Policy&)>;

  // `initial` must have passed `validate` already.
  PolicyHolder(Policy initial, std::string path, Validator validate = nullptr)
      : path_(std::move(path)), validate_(std::move(validate)),
        current_(std::make_shared<const Policy>(std::move(initial))) {}

  // The policy in force now.
  std::shared_ptr<const Policy> Get() const {
    absl::MutexLock lock(&mu_);
    return current_;
  }

  // Re-reads the file given at construction; on success swaps it in and
  // returns OK (the new policy's warnings are in Get()->warnings()). On
  // failure the old policy stays and the status says why.
  absl::Status Reload() {
    absl::StatusOr<Policy> loaded = Policy::LoadFile(path_);
    if (!loaded.ok()) return loaded.status();
    if (validate_) {
      absl::Status valid = validate_(*loaded);
      if (!valid.ok()) return valid;
    }
    auto next = std::make_shared<const Policy>(*std::move(loaded));
    absl::MutexLock lock(&mu_);
    current_ = std::move(next);
    return absl::OkStatus();
  }

  const std::string& path() const { return path_; }

 private:
  const std::string path_;
  const Validator validate_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const Policy> current_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_POLICY_HOLDER_H_
