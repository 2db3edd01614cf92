// Fuzz target: the policy and confinement-profile text parsers, including
// a reload (daemon/policy.h, daemon/policy_holder.h, daemon/profiles.h).
//
// Input: a selector byte, then text. Policy: parsed as a file, then its
// answers (library resolution, authentication) queried; then written to
// the file a PolicyHolder serves and reloaded over the bundled default
// policy, with the daemon's validator (every referenced profile exists).
// Profiles: the text split at NUL bytes into up to three files of a
// profile directory, loaded (includes resolved, seccomp compiled).
// Invariants: everything is a Status; a failed reload keeps the policy in
// force; a successful one puts exactly the parsed policy in force; a
// loaded profile compiles.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "daemon/policy.h"
#include "daemon/policy_holder.h"
#include "daemon/profiles.h"
#include "tests/fuzz/fuzz_values.h"

namespace ffibroker {
namespace {

// A private directory for this process's files (removed at exit), in
// /dev/shm when there is one: every input writes and reads files here, and
// on a disk file system (ext4 flushes a file truncated and rewritten on
// close) that I/O, not the parsers, was most of the target's time.
const std::string& WorkDir() {
  static const std::string* dir = [] {
    std::error_code ignored;
    std::string base = std::filesystem::is_directory("/dev/shm", ignored) &&
                               ::access("/dev/shm", W_OK) == 0
                           ? "/dev/shm"
                           : std::filesystem::temp_directory_path().string();
    std::string templ = base + "/ffib-fuzz-XXXXXX";
    FUZZ_CHECK(::mkdtemp(templ.data()) != nullptr, templ);
    std::filesystem::create_directory(templ + "/profiles");
    std::atexit([] { std::filesystem::remove_all(WorkDir()); });
    return new std::string(templ);
  }();
  return *dir;
}

const ProfileSet& BundledProfiles() {
  static const ProfileSet* set = [] {
    absl::StatusOr<ProfileSet> loaded = ProfileSet::LoadDirectory(FFIBROKER_PROFILES_DIR);
    FUZZ_CHECK(loaded.ok(), loaded.status().ToString());
    return new ProfileSet(*std::move(loaded));
  }();
  return *set;
}

void WriteFile(const std::string& path, absl::string_view text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  FUZZ_CHECK(fd >= 0, path);
  FUZZ_CHECK(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()), path);
  ::close(fd);
}

// The bundled default policy, parsed once: every input reloads over it.
const Policy& DefaultPolicy() {
  static const Policy* policy = [] {
    std::ifstream in(std::string(FFIBROKER_SOURCE_DIR) + "/policy/default.textproto");
    std::string text((std::istreambuf_iterator<char>(in)), {});
    absl::StatusOr<Policy> parsed = Policy::Parse(text, WorkDir() + "/policy.textproto");
    FUZZ_CHECK(parsed.ok(), parsed.status().ToString());
    return new Policy(*std::move(parsed));
  }();
  return *policy;
}

absl::Status Validate(const Policy& p) {
  for (const std::string& name : p.ReferencedProfiles()) {
    absl::StatusOr<const Profile*> found = BundledProfiles().Find(name);
    if (!found.ok()) return absl::InvalidArgumentError(found.status().message());
  }
  return absl::OkStatus();
}

void FuzzPolicy(absl::string_view text) {
  absl::StatusOr<Policy> policy = Policy::Parse(text, "fuzz.textproto");
  if (!policy.ok()) {
    FUZZ_CHECK(policy.status().code() == absl::StatusCode::kInvalidArgument,
               policy.status().ToString());
  } else {
    for (const char* name : {"scalars", "libm.so.6", "/lib/x86_64-linux-gnu/libm.so.6",
                             "/a/../b//c", "", "relative"}) {
      (void)policy->ResolveLibrary(name);
    }
    PeerIdentity peer;
    peer.transport = PeerIdentity::Transport::kUnix;
    peer.uid = 1000;
    (void)policy->Authenticate(peer);
    peer.api_key_sha256 = Sha256Hex("key");
    (void)policy->Authenticate(peer);
    (void)policy->ReferencedProfiles();
  }

  // Reload over the bundled default, as SIGHUP does.
  const std::string path = WorkDir() + "/policy.textproto";
  PolicyHolder holder(DefaultPolicy(), path, Validate);
  std::shared_ptr<const Policy> before = holder.Get();
  WriteFile(path, text);
  absl::Status reloaded = holder.Reload();
  if (!reloaded.ok()) {
    FUZZ_CHECK(holder.Get() == before, "a failed reload replaced the policy");
  } else {
    FUZZ_CHECK(policy.ok(), "reload accepted what Parse refused");
    FUZZ_CHECK(holder.Get() != before, "a reload kept the old policy");
    FUZZ_CHECK(Validate(*holder.Get()).ok(), "a reload put an invalid policy in force");
  }
}

void FuzzProfiles(absl::string_view text) {
  const std::string dir = WorkDir() + "/profiles";
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::filesystem::remove(entry.path());
  }
  int n = 0;
  for (absl::string_view part : absl::StrSplit(text, '\0')) {
    if (n == 3) break;
    WriteFile(absl::StrCat(dir, "/p", n++, ".textproto"), part);
  }
  absl::StatusOr<ProfileSet> set = ProfileSet::LoadDirectory(dir);
  if (!set.ok()) {
    FUZZ_CHECK(set.status().code() == absl::StatusCode::kInvalidArgument ||
                   set.status().code() == absl::StatusCode::kNotFound,
               set.status().ToString());
    return;
  }
  for (const Profile* profile : set->All()) {
    for (bool loading : {false, true}) {
      absl::StatusOr<std::string> bpf = profile->Compile(SeccompContext{}, loading);
      FUZZ_CHECK(bpf.ok(), profile->name() + ": " + bpf.status().ToString());
      FUZZ_CHECK(!bpf->empty() && bpf->size() % 8 == 0, profile->name());
    }
  }
}

}  // namespace
}  // namespace ffibroker

// Everything built once, before the first input (not counted in its time).
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)ffibroker::WorkDir();
  (void)ffibroker::BundledProfiles();
  (void)ffibroker::DefaultPolicy();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  absl::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    ffibroker::FuzzPolicy(text);
  } else {
    ffibroker::FuzzProfiles(text);
  }
  return 0;
}
