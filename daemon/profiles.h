// Confinement profiles: loading, validation and compilation to seccomp BPF.
//
// Profiles are text-format ffibroker.v1.ConfinementProfile files, one per
// profile, in a directory (policy/profiles/). They are validated when the
// daemon starts — unknown syscall names, bad argument indexes, include
// cycles are reported as FILE:LINE:COLUMN — and compiled with libseccomp in
// the daemon; the worker only installs the resulting program.
//
// Immutable once loaded; thread-safe.
//
//   ASSIGN_OR_RETURN(ProfileSet profiles, ProfileSet::LoadDirectory("policy/profiles"));
//   ASSIGN_OR_RETURN(const Profile* strict, profiles.Find("strict"));
//   ASSIGN_OR_RETURN(std::string bpf, strict->Compile({/*channel_fd=*/3, /*self_pid=*/1}));
#ifndef FFIBROKER_DAEMON_PROFILES_H_
#define FFIBROKER_DAEMON_PROFILES_H_

#include <sys/types.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ffibroker/v1/confinement.pb.h"

namespace ffibroker {

// Values a profile's rules may refer to that are known only per worker.
struct SeccompContext {
  int channel_fd = 3;
  pid_t self_pid = 1;  // as the worker sees itself (1 in its own pid namespace)
};

// One profile with its includes flattened.
class Profile {
 public:
  const std::string& name() const { return proto_.name(); }
  const std::string& description() const { return proto_.description(); }
  // Distinct syscalls the profile allows (fail_with_errno rules excluded).
  int syscall_count() const { return syscall_count_; }
  const std::vector<std::string>& readable_paths() const { return readable_paths_; }
  uint64_t address_space_bytes() const;
  uint64_t cpu_seconds() const;
  uint64_t open_files() const;
  // RLIMIT_NPROC: 0, or 1 + max_threads (the worker itself counts).
  uint64_t processes() const;

  // A seccomp program (struct sock_filter[]) whose default action is
  // SECCOMP_RET_TRAP (the worker reports the syscall and exits).
  // `loading`: the filter the worker installs before dlopen, which adds to
  // the profile what the dynamic loader needs (read-only openat, executable
  // mappings) and installing the final filter. A library constructor can
  // at worst keep those; it can never get more.
  // INTERNAL if libseccomp fails (a validated profile does not).
  absl::StatusOr<std::string> Compile(const SeccompContext& context,
                                      bool loading = false) const;

 private:
  friend class ProfileSet;
  v1::ConfinementProfile proto_;  // rules of the profile and its includes
  std::vector<std::string> readable_paths_;
  int syscall_count_ = 0;
  // Compile(SeccompContext{}, false / true), made when the set is loaded.
  std::string compiled_standard_[2];
};

class ProfileSet {
 public:
  // Loads every *.textproto in `directory`. INVALID_ARGUMENT naming the
  // file, line and column of the first mistake; NOT_FOUND if the directory
  // cannot be read or holds no profile.
  static absl::StatusOr<ProfileSet> LoadDirectory(const std::string& directory);
  // The names of the profiles loaded.
  std::set<std::string> Names() const;

  // NOT_FOUND naming the known profiles.
  absl::StatusOr<const Profile*> Find(const std::string& name) const;
  std::vector<const Profile*> All() const;

 private:
  std::map<std::string, Profile> profiles_;
};

// "openat" for 257 on this architecture; "syscall 999" if unknown.
std::string SyscallName(int number);

// For a syscall the filter trapped as not of this architecture: "i386
// getpid #20" (made with int $0x80) or "x32 read #1073741824" (nr |
// __X32_SYSCALL_BIT); nullopt for a native x86-64 syscall.
std::optional<std::string> ForeignSyscall(uint32_t audit_arch, int number);

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_PROFILES_H_
