// Policy: the loaded, validated policy file (schema: proto/ffibroker/v1/policy.proto).
//
// Immutable once loaded; safe to share between threads.
//
//   ASSIGN_OR_RETURN(Policy policy, Policy::LoadFile("policy/default.textproto"));
//   ASSIGN_OR_RETURN(std::string path, policy.ResolveLibrary("libm.so.6"));
#ifndef FFIBROKER_DAEMON_POLICY_H_
#define FFIBROKER_DAEMON_POLICY_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ffibroker/v1/policy.pb.h"

namespace ffibroker {

class Policy {
 public:
  // Reads and validates a text-format policy. INVALID_ARGUMENT with
  // "FILE:LINE:COLUMN: message" for syntax and schema mistakes; NOT_FOUND if
  // the file cannot be read.
  static absl::StatusOr<Policy> LoadFile(const std::string& path);
  // Same, from text; `source` names it in messages.
  static absl::StatusOr<Policy> Parse(absl::string_view text,
                                      absl::string_view source);

  // Maps what a client asked for to the absolute path to load:
  //  - a name listed in the policy -> its path;
  //  - an absolute path -> its canonical form, if that is allowed.
  // NOT_FOUND for an unknown name or a path that does not exist;
  // PERMISSION_DENIED for an existing path the policy does not list;
  // INVALID_ARGUMENT for a relative path.
  absl::StatusOr<std::string> ResolveLibrary(absl::string_view requested) const;

  // The confinement profile for a library resolved by ResolveLibrary: its
  // rule's profile, else the policy's default_profile, else "strict".
  std::string ProfileFor(const std::string& canonical_path) const;
  const std::string& default_profile() const { return default_profile_; }
  // Every profile name the policy refers to (to check they exist).
  std::vector<std::string> ReferencedProfiles() const;
  const std::vector<v1::Layer>& required_layers() const { return required_layers_; }

  // The limits with defaults applied to every unset field.
  const v1::Limits& limits() const { return limits_; }
  // The listen address (default applied).
  const std::string& listen() const { return listen_; }
  // Problems that did not make the policy invalid (e.g. a listed library
  // missing on this machine); the daemon logs them.
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  Policy() = default;

  v1::Limits limits_;
  std::string listen_;
  std::map<std::string, std::string> path_by_name_;  // name -> canonical path
  std::set<std::string> allowed_paths_;              // canonical paths
  std::map<std::string, std::string> profile_by_path_;  // canonical path -> profile
  std::string default_profile_;
  std::vector<v1::Layer> required_layers_;
  std::vector<std::string> warnings_;
};

// Where the daemon listens when neither flag nor policy says.
inline constexpr char kDefaultListenAddress[] = "unix:/run/ffibroker/ffibrokerd.sock";

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_POLICY_H_
