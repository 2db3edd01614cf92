// Policy: the loaded, validated policy file (schema: proto/ffibroker/v1/policy.proto).
//
// Immutable once loaded; safe to share between threads. Reloading builds a
// new Policy (see PolicyHolder); sessions and tokens keep the permission
// snapshot they took from the policy in force when they were created.
//
//   ASSIGN_OR_RETURN(Policy policy, Policy::LoadFile("policy/default.textproto"));
//   ASSIGN_OR_RETURN(Caller caller, policy.Authenticate(identity));
//   ASSIGN_OR_RETURN(std::string path, policy.ResolveLibrary("libm.so.6"));
#ifndef FFIBROKER_DAEMON_POLICY_H_
#define FFIBROKER_DAEMON_POLICY_H_

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/identity.h"
#include "ffibroker/v1/policy.pb.h"

namespace ffibroker {

class Policy {
 public:
  // Reads and validates a text-format policy. INVALID_ARGUMENT listing every
  // mistake found, one per line as "FILE:LINE:COLUMN: message" (syntax and
  // schema mistakes alike); NOT_FOUND if the file cannot be read.
  static absl::StatusOr<Policy> LoadFile(const std::string& path);
  // Same, from text; `source` names it in messages.
  static absl::StatusOr<Policy> Parse(absl::string_view text,
                                      absl::string_view source);

  // Maps what a client asked for to the path a permission is checked
  // against, as strings only (it never touches the file system, so its
  // answer cannot tell whether a file exists):
  //  - a name from the policy's catalogue -> its canonical path;
  //  - an absolute path the policy spells (a catalogue path or a permission
  //    entry as written, or their canonical form; compared after removing
  //    "//", "." and ".." lexically) -> the canonical path it resolved to
  //    when the policy loaded;
  //  - any other absolute path -> itself, cleaned the same way; it matches
  //    a permission only if it is a canonical path that permission names
  //    (e.g. in a token granted under an older policy).
  // Whether the path may be opened is the permission's business
  // (AuthorizeOpen). NOT_FOUND for an unknown name; INVALID_ARGUMENT for an
  // empty or relative path.
  absl::StatusOr<std::string> ResolveLibrary(absl::string_view requested) const;

  // The principal `identity` is and its permission now. An API key, when
  // presented, must belong to a principal (UNAUTHENTICATED otherwise) and
  // selects it; else the first principal matching the transport identity
  // wins. PERMISSION_DENIED if none matches (naming the uid or TLS name).
  absl::StatusOr<Caller> Authenticate(const PeerIdentity& identity) const;

  // Every confinement profile name a principal's permission names (to check
  // they exist before the policy is put in force).
  std::set<std::string> ReferencedProfiles() const;
  // INVALID_ARGUMENT listing, one per line as FILE:LINE:COLUMN: ..., every
  // principal whose confinement profile is not among `known` (the profiles
  // the daemon loaded; `ffibroker policy check` reads their names from the
  // same directory).
  absl::Status CheckProfiles(const std::set<std::string>& known) const;
  // Each principal's name and the confinement profile its permission names,
  // in policy order (for GetStatus: no identities, no keys).
  std::vector<std::pair<std::string, std::string>> PrincipalProfiles() const;
  // Layers every worker must have (Policy.require_layers).
  const std::vector<v1::Layer>& required_layers() const { return required_layers_; }

  // The limits with defaults applied to every unset field.
  const v1::Limits& limits() const { return limits_; }
  // The listen address (default applied).
  const std::string& listen() const { return listen_; }
  // The audit and TLS listener settings, the token secret file (as written).
  const v1::AuditConfig& audit() const { return proto_.audit(); }
  const v1::TlsListener& tls() const { return proto_.tls(); }
  const std::string& token_secret_file() const { return proto_.token_secret_file(); }
  const std::string& token_keyring_file() const { return proto_.token_keyring_file(); }
  // Problems that did not make the policy invalid (e.g. a listed library
  // missing on this machine); the daemon logs them.
  const std::vector<std::string>& warnings() const { return warnings_; }
  size_t principal_count() const { return principals_.size(); }
  // Whether a principal of this name exists.
  bool HasPrincipal(absl::string_view name) const;

 private:
  struct ResolvedPrincipal {
    std::string name;
    std::set<uid_t> uids;
    std::set<gid_t> gids;
    bool any_local_user = false;
    std::set<std::string> tls_names;
    v1::Permission permission;  // canonical paths, defaults applied
    v1::PrincipalLimits limits;  // Limits.per_principal merged with its own
    bool read_metrics = false;
    std::string profile_at;  // "FILE:L:C: principals[i].permission.confinement_profile"
  };
  struct KeyOwner {
    size_t principal;  // index in principals_
    std::string key_id;
  };
  Policy() = default;

  v1::Policy proto_;
  v1::Limits limits_;
  std::string listen_;
  std::map<std::string, std::string> path_by_name_;  // name -> canonical path
  // Cleaned absolute spelling -> canonical path (see ResolveLibrary).
  std::map<std::string, std::string> path_by_spelling_;
  std::vector<ResolvedPrincipal> principals_;
  std::map<std::string, KeyOwner> key_owners_;  // sha256 hex -> owner
  std::vector<v1::Layer> required_layers_;
  std::vector<std::string> warnings_;
};

// Where the daemon listens when neither flag nor policy says.
inline constexpr char kDefaultListenAddress[] = "unix:/run/ffibroker/ffibrokerd.sock";

// Lowercase hex SHA-256 of `bytes` (OpenSSL).
std::string Sha256Hex(absl::string_view bytes);

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_POLICY_H_
