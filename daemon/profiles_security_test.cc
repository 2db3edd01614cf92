// Regression tests (label security) for the bundled profiles' size and for
// profiles that would let a library defeat the worker's reporter (issue 9,
// findings 19 and 20; docs/confinement.md).
#include <linux/audit.h>
#include <string.h>
#include <sys/mman.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>

#include "daemon/profile_dir_for_tests.h"
#include "daemon/profiles.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

using ::testing::HasSubstr;

// The bundled strict profile's text.
std::string StrictText() {
  std::ifstream in(std::string(FFIBROKER_PROFILES_DIR) + "/strict.textproto");
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Loads strict plus a profile "p" whose text is `rules` (after its name line).
absl::Status LoadP(const std::string& rules) {
  ProfileDir dir({{"strict.textproto", StrictText()},
                  {"p.textproto", "name: \"p\"\ninclude: \"strict\"\n" + rules}});
  return ProfileSet::LoadDirectory(dir.path()).status();
}

TEST(ProfileSizeTest, EveryBundledProfileAllowsAtMost45Syscalls) {
  absl::StatusOr<ProfileSet> set = ProfileSet::LoadDirectory(FFIBROKER_PROFILES_DIR);
  ASSERT_TRUE(set.ok()) << set.status();
  const std::map<std::string, int> expected = {
      {"strict", 37}, {"threads", 41}, {"files-readonly", 45}};
  ASSERT_EQ(set->All().size(), expected.size());
  for (const Profile* profile : set->All()) {
    EXPECT_LE(profile->syscall_count(), 45) << profile->name();
    auto it = expected.find(profile->name());
    ASSERT_NE(it, expected.end()) << profile->name();
    EXPECT_EQ(profile->syscall_count(), it->second) << profile->name();
  }
}

TEST(ProfileGuardTest, BundledProfilesPass) {
  EXPECT_TRUE(ProfileSet::LoadDirectory(FFIBROKER_PROFILES_DIR).ok());
}

TEST(ProfileGuardTest, SignalHandlersOfTheReporterAreRefusedWithLineAndColumn) {
  absl::Status s = LoadP("\nallow { name: \"rt_sigaction\" }\n");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("p.textproto:4:9: 'rt_sigaction' may replace the handler of SIGSEGV "
                        "(argument 0 is not restricted)"));
  // Only SIGSYS or only SIGSEGV, as in the issue.
  s = LoadP("allow { name: \"rt_sigaction\" args { index: 0 op: ARG_OP_EQ value: 31 } }\n");
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("p.textproto:3:9: 'rt_sigaction' may replace the handler of SIGSYS"));
  s = LoadP("allow { name: \"rt_sigaction\" args { index: 0 op: ARG_OP_EQ value: 11 } }\n");
  EXPECT_THAT(std::string(s.message()), HasSubstr("handler of SIGSEGV"));
  // The kernel reads an int: 0x1_0000001f is SIGSYS.
  s = LoadP("allow { name: \"rt_sigaction\" args { index: 0 op: ARG_OP_EQ value: 0x10000001f } }\n");
  EXPECT_THAT(std::string(s.message()), HasSubstr("handler of SIGSYS"));
  // A lower bound does not help: 0x1_0000000b >= 14 is SIGSEGV to the kernel.
  s = LoadP("allow { name: \"rt_sigaction\" args { index: 0 op: ARG_OP_GE value: 14 } }\n");
  EXPECT_THAT(std::string(s.message()), HasSubstr("handler of SIGSEGV"));
  s = LoadP("allow { name: \"rt_sigaction\" args { index: 0 op: ARG_OP_NE value: 31 } }\n");
  EXPECT_THAT(std::string(s.message()), HasSubstr("'rt_sigaction' may replace the handler of"));

  // Allowed: other signals only, a query (no new action), or an errno.
  EXPECT_TRUE(LoadP("allow { name: \"rt_sigaction\" args { index: 0 op: ARG_OP_EQ value: 10 } }\n").ok());
  EXPECT_TRUE(LoadP("allow { name: \"rt_sigaction\" args { index: 1 op: ARG_OP_EQ value: 0 } }\n").ok());
  EXPECT_TRUE(LoadP("allow { name: \"rt_sigaction\" fail_with_errno: 1 }\n").ok());
}

TEST(ProfileGuardTest, EveryWayAroundTheReporterIsRefused) {
  struct Case {
    const char* rules;
    const char* message;
  };
  const Case cases[] = {
      {"allow { name: \"sigaltstack\" }\n", "p.textproto:3:9: 'sigaltstack' may set a new signal stack"},
      {"allow { name: \"seccomp\" }\n", "p.textproto:3:9: 'seccomp' may use the operation 0"},
      {"allow { name: \"seccomp\" args { index: 0 op: ARG_OP_EQ value: 1 } }\n",
       "'seccomp' may use the operation 1"},
      {"allow { name: \"prctl\" }\n", "p.textproto:3:9: 'prctl' may use the option 1"},
      {"allow { name: \"prctl\" args { index: 0 op: ARG_OP_EQ value: 22 } }\n",
       "'prctl' may use the option 22"},
      {"allow { name: \"ptrace\" }\n", "p.textproto:3:9: 'ptrace' cannot be allowed"},
      {"allow { name: \"ptrace\" args { index: 0 op: ARG_OP_EQ value: 0 } }\n",
       "'ptrace' cannot be allowed"},
      {"allow { name: \"process_vm_writev\" }\n", "'process_vm_writev' cannot be allowed"},
      {"allow { name: \"execve\" }\n", "'execve' cannot be allowed"},
      {"allow { name: \"execveat\" }\n", "'execveat' cannot be allowed"},
  };
  for (const Case& c : cases) {
    absl::Status s = LoadP(c.rules);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.rules;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.message)) << c.rules;
  }
  // Harmless uses pass.
  EXPECT_TRUE(LoadP("allow { name: \"sigaltstack\" args { index: 0 op: ARG_OP_EQ value: 0 } }\n").ok());
  EXPECT_TRUE(LoadP("allow { name: \"prctl\" args { index: 0 op: ARG_OP_EQ value: 15 } }\n").ok());
  EXPECT_TRUE(LoadP("allow { name: \"seccomp\" args { index: 0 op: ARG_OP_EQ value: 2 } }\n").ok());
  EXPECT_TRUE(LoadP("allow { name: \"execve\" fail_with_errno: 13 }\n").ok());
}

// Finding 18: the names a syscall of another architecture is reported with.
TEST(ForeignSyscallTest, NamesTheArchitectureAndTheCall) {
  EXPECT_EQ(ForeignSyscall(AUDIT_ARCH_I386, 20), "i386 getpid #20");
  EXPECT_EQ(ForeignSyscall(AUDIT_ARCH_X86_64, 0x40000000 | 39), "x32 getpid #1073741863");
  EXPECT_EQ(ForeignSyscall(AUDIT_ARCH_X86_64, 39), std::nullopt);
  EXPECT_EQ(ForeignSyscall(0x1234, 5), "architecture 0x1234 syscall #5");
}

}  // namespace
}  // namespace ffibroker
