#include "daemon/profiles.h"

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "absl/strings/match.h"
#include "daemon/profile_dir_for_tests.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

using ::testing::HasSubstr;

absl::Status LoadError(const std::map<std::string, std::string>& files) {
  ProfileDir dir(files);
  return ProfileSet::LoadDirectory(dir.path()).status();
}

TEST(ProfilesTest, BundledProfilesLoadWithTheirCounts) {
  absl::StatusOr<ProfileSet> set = ProfileSet::LoadDirectory(FFIBROKER_PROFILES_DIR);
  ASSERT_TRUE(set.ok()) << set.status();
  absl::StatusOr<const Profile*> strict = set->Find("strict");
  absl::StatusOr<const Profile*> files = set->Find("files-readonly");
  absl::StatusOr<const Profile*> threads = set->Find("threads");
  ASSERT_TRUE(strict.ok() && files.ok() && threads.ok());
  EXPECT_GT((*strict)->syscall_count(), 20);
  // Includes add to the count; clone3's errno rule does not count.
  EXPECT_GT((*files)->syscall_count(), (*strict)->syscall_count());
  EXPECT_EQ((*threads)->syscall_count(), (*strict)->syscall_count() + 4);
  EXPECT_EQ((*strict)->address_space_bytes(), uint64_t{1024} << 20);
  EXPECT_EQ((*strict)->processes(), 0u);
  EXPECT_EQ((*threads)->processes(), 17u);
  EXPECT_THAT(std::string(set->Find("nope").status().message()),
              HasSubstr("no confinement profile named 'nope' (loaded: files-readonly, strict, "
                        "threads)"));
}

TEST(ProfilesTest, MistakesNameTheFileLineAndColumn) {
  absl::Status s = LoadError({{"p.textproto",
                               "name: \"p\"\n"
                               "allow { name: \"read\" }\n"
                               "allow { name: \"no_such_call\" }\n"}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("p.textproto:3:9: unknown syscall 'no_such_call'"));

  s = LoadError({{"p.textproto", "name: \"p\"\nallow { nme: \"read\" }\n"}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("p.textproto:2:"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("nme"));

  s = LoadError({{"p.textproto",
                  "name: \"p\"\nallow { name: \"read\" args { index: 7 op: ARG_OP_EQ } }\n"}});
  EXPECT_THAT(std::string(s.message()), HasSubstr("argument condition needs index 0..5 and an op"));

  s = LoadError({{"p.textproto", "name: \"p\"\nallow { name: \"openat\" fail_with_errno: 13 }\n"}});
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("p.textproto:2:9: 'openat' cannot fail_with_errno: the worker needs it"));

  s = LoadError({{"p.textproto", "name: \"q\"\n"}});
  EXPECT_THAT(std::string(s.message()), HasSubstr("name 'q' must match the file name 'p'"));

  s = LoadError({{"p.textproto", "name: \"p\"\nreadable_paths: \"etc\"\n"}});
  EXPECT_THAT(std::string(s.message()), HasSubstr("readable path 'etc' must be absolute"));
}

TEST(ProfilesTest, IncludesAreCheckedForCyclesAndUnknownNames) {
  absl::Status s = LoadError({{"a.textproto", "name: \"a\"\ninclude: \"b\"\n"},
                              {"b.textproto", "name: \"b\"\ninclude: \"a\"\n"}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("include cycle a -> b -> a"));

  s = LoadError({{"a.textproto", "name: \"a\"\ninclude: \"missing\"\n"}});
  EXPECT_THAT(std::string(s.message()), HasSubstr("includes unknown profile 'missing'"));

  ProfileDir empty({});
  EXPECT_EQ(ProfileSet::LoadDirectory(empty.path()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ProfileSet::LoadDirectory(empty.path() + "/nope").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(ProfilesTest, SyscallNamesAreResolvedForReports) {
  EXPECT_EQ(SyscallName(SYS_openat), "openat");
  EXPECT_EQ(SyscallName(SYS_execve), "execve");
  EXPECT_EQ(SyscallName(99999), "syscall 99999");
}

// Installs `bpf` in a forked child that runs `body`; returns its wait status.
template <typename Body>
int RunFiltered(const std::string& bpf, Body body) {
  pid_t pid = ::fork();
  if (pid == 0) {
    sock_fprog program = {static_cast<unsigned short>(bpf.size() / sizeof(sock_filter)),
                          reinterpret_cast<sock_filter*>(const_cast<char*>(bpf.data()))};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) {
      ::_exit(100);
    }
    body();
    ::syscall(SYS_exit_group, 0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

TEST(ProfilesTest, CompiledStrictAllowsComputingAndTrapsTheRest) {
  absl::StatusOr<ProfileSet> set = ProfileSet::LoadDirectory(FFIBROKER_PROFILES_DIR);
  ASSERT_TRUE(set.ok()) << set.status();
  const Profile* strict = *set->Find("strict");
  SeccompContext context;
  context.channel_fd = 3;
  context.self_pid = ::getpid();  // overwritten per child below
  absl::StatusOr<std::string> bpf = strict->Compile(context);
  ASSERT_TRUE(bpf.ok()) << bpf.status();
  ASSERT_EQ(bpf->size() % sizeof(sock_filter), 0u);

  int ok = RunFiltered(*bpf, [] {
    ::syscall(SYS_getpid);
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) ::syscall(SYS_exit_group, 1);
  });
  EXPECT_TRUE(WIFEXITED(ok) && WEXITSTATUS(ok) == 0) << ok;

  for (auto forbidden : {+[] { ::syscall(SYS_socket, AF_INET, SOCK_STREAM, 0); },
                         +[] {
                           ::syscall(SYS_mmap, nullptr, 4096, PROT_READ | PROT_EXEC,
                                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                         },
                         +[] { ::syscall(SYS_write, 5, "x", 1); },
                         +[] { ::syscall(SYS_openat, AT_FDCWD, "/etc/passwd", 0); }}) {
    int status = RunFiltered(*bpf, forbidden);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS) << status;
  }
}

}  // namespace
}  // namespace ffibroker
