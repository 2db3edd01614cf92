// Confinement layers end to end: what a worker reports (GetStatus, the
// OpenLibrary response, `ffibroker status`) against what the kernel says
// about the worker process (/proc/PID/status), disabled and required
// layers, profile validation at start and reload, worker bounds.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker::testing {
namespace {

using ::testing::HasSubstr;

bool InForce(const v1::WorkerLayers& layers, v1::Layer layer) {
  return std::find(layers.in_force().begin(), layers.in_force().end(), layer) !=
         layers.in_force().end();
}

const v1::RefusedLayer* Refused(const v1::WorkerLayers& layers, v1::Layer layer) {
  for (const v1::RefusedLayer& r : layers.refused()) {
    if (r.layer() == layer) return &r;
  }
  return nullptr;
}

// "Uid:\t65534\t65534..." -> the fields after the key.
std::string StatusField(pid_t pid, const std::string& key) {
  std::string text;
  FILE* f = std::fopen(absl::StrCat("/proc/", pid, "/status").c_str(), "r");
  if (f == nullptr) return "";
  char line[512];
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (absl::StartsWith(line, key + ":")) text = line + key.size() + 1;
  }
  std::fclose(f);
  return std::string(absl::StripAsciiWhitespace(text));
}

TEST(ConfinementLayersTest, EveryLayerIsInForceOrRefusedWithAReason) {
  auto daemon = TestDaemon::StartWithPolicy(HostilePolicy());
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto client = (*daemon)->Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<v1::GetStatusResponse> status = (*client)->GetStatus();
  ASSERT_TRUE(status.ok()) << status.status();
  const v1::WorkerLayers& probe = status->probe();
  for (int i = v1::LAYER_USER_NAMESPACE; i <= v1::LAYER_SECCOMP; ++i) {
    v1::Layer layer = static_cast<v1::Layer>(i);
    const v1::RefusedLayer* refused = Refused(probe, layer);
    EXPECT_NE(InForce(probe, layer), refused != nullptr) << v1::Layer_Name(layer);
    if (refused != nullptr) {
      EXPECT_FALSE(refused->reason().empty()) << v1::Layer_Name(layer);
    }
  }
  // These never depend on the kernel's configuration.
  for (v1::Layer layer : {v1::LAYER_RLIMITS, v1::LAYER_NO_NEW_PRIVS, v1::LAYER_NO_CAPABILITIES,
                          v1::LAYER_UNPRIVILEGED_UID, v1::LAYER_SECCOMP}) {
    EXPECT_TRUE(InForce(probe, layer)) << v1::Layer_Name(layer);
  }
  EXPECT_NE(probe.uid(), 0u);
  EXPECT_EQ(probe.seccomp_profile(), "strict");
  EXPECT_EQ(status->default_profile(), "strict");
  uint32_t strict_syscalls = 0;
  for (const v1::ProfileStatus& p : status->profiles()) {
    if (p.name() == "strict") strict_syscalls = p.syscalls();
  }
  EXPECT_GT(strict_syscalls, 20u);
  EXPECT_EQ(probe.seccomp_syscalls(), strict_syscalls);
  EXPECT_EQ(probe.address_space_limit_bytes(), uint64_t{1024} << 20);
  EXPECT_EQ(probe.processes_limit(), 0u);
  EXPECT_EQ(probe.core_limit_bytes(), 0u);

  CliResult cli = RunCli({"--address=" + (*daemon)->address(), "status"});
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_THAT(cli.out, HasSubstr(absl::StrCat("profile strict: ", strict_syscalls,
                                              " syscalls (default)")));
  EXPECT_THAT(cli.out, HasSubstr(absl::StrCat("seccomp (strict, ", strict_syscalls,
                                              " syscalls)")));
  EXPECT_THAT(cli.out, HasSubstr("address space 1024 MiB"));
}

TEST(ConfinementLayersTest, TheKernelAgreesWithTheWorkersReport) {
  auto daemon = TestDaemon::StartWithPolicy(HostilePolicy());
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto client = (*daemon)->Connect();
  auto session = (*client)->CreateSession();
  ASSERT_TRUE(session.ok()) << session.status();
  auto lib = (*session)->OpenLibrary("hostile", {"i32 healthy(i32)"});
  ASSERT_TRUE(lib.ok()) << lib.status();
  const v1::WorkerLayers& layers = (*lib)->layers();
  EXPECT_TRUE(InForce(layers, v1::LAYER_SECCOMP));
  pid_t pid = (*lib)->worker_pid();
  // Seen from outside: no privileged uid, no capabilities, no_new_privs,
  // a seccomp filter (mode 2).
  std::string uids = StatusField(pid, "Uid");
  EXPECT_FALSE(uids.empty());
  for (absl::string_view uid : absl::StrSplit(uids, '\t', absl::SkipWhitespace())) {
    EXPECT_NE(uid, "0") << uids;
    EXPECT_EQ(uid, absl::StrCat(layers.uid())) << uids;
  }
  EXPECT_EQ(StatusField(pid, "CapEff"), "0000000000000000");
  EXPECT_EQ(StatusField(pid, "CapPrm"), "0000000000000000");
  EXPECT_EQ(StatusField(pid, "NoNewPrivs"), "1");
  // A root daemon's supplementary groups (often 0) are dropped.
  if (::geteuid() == 0) {
    EXPECT_EQ(StatusField(pid, "Groups"), "");
  }
  EXPECT_EQ(StatusField(pid, "Seccomp"), "2");
  if (InForce(layers, v1::LAYER_PID_NAMESPACE)) {
    // NSpid lists the pid in each namespace: ours, then 1 in its own.
    EXPECT_THAT(StatusField(pid, "NSpid"), ::testing::EndsWith("\t1"));
  }
  // Its only descriptors: /dev/null on 0-2 and the channel.
  int fds = 0;
  for (int fd = 0; fd < 64; ++fd) {
    fds += ::access(absl::StrCat("/proc/", pid, "/fd/", fd).c_str(), F_OK) == 0 ? 1 : 0;
  }
  EXPECT_EQ(fds, 4);
}

TEST(ConfinementLayersTest, DisabledLayerIsReportedAndWarnedOnce) {
  auto daemon = TestDaemon::StartWithPolicy(HostilePolicy(), {"--disable-layers=net_namespace"});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto client = (*daemon)->Connect();
  auto session = (*client)->CreateSession();
  ASSERT_TRUE(session.ok()) << session.status();
  for (int i = 0; i < 2; ++i) {
    auto lib = (*session)->OpenLibrary("hostile", {"i32 healthy(i32)"});
    ASSERT_TRUE(lib.ok()) << lib.status();
    EXPECT_FALSE(InForce((*lib)->layers(), v1::LAYER_NET_NAMESPACE));
    const v1::RefusedLayer* r = Refused((*lib)->layers(), v1::LAYER_NET_NAMESPACE);
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->reason(), "disabled by --disable-layers");
    EXPECT_EQ(*(*lib)->Call<int32_t>("healthy", 1), 2);
  }
  std::string log = (*daemon)->ReadLog();
  const std::string warning =
      "confinement layer net_namespace is not in force: disabled by --disable-layers";
  EXPECT_THAT(log, HasSubstr(warning));
  EXPECT_EQ(log.find(warning), log.rfind(warning)) << "warned more than once";
}

TEST(ConfinementLayersTest, BadDisableLayersIsRefusedAtStart) {
  auto daemon = TestDaemon::StartWithPolicy(HostilePolicy(), {"--disable-layers=seccomp"});
  ASSERT_FALSE(daemon.ok());
  EXPECT_THAT(std::string(daemon.status().message()),
              HasSubstr("'seccomp' is not a namespace layer"));
}

TEST(ConfinementLayersTest, ARequiredLayerThatIsMissingStopsTheWorkerFromStarting) {
  auto daemon = TestDaemon::StartWithPolicy(
      HostilePolicy("", "require_layers: [LAYER_SECCOMP, LAYER_NET_NAMESPACE]\n"),
      {"--disable-layers=net_namespace"});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto client = (*daemon)->Connect();
  auto session = (*client)->CreateSession();
  ASSERT_TRUE(session.ok()) << session.status();
  absl::Status opened = (*session)->OpenLibrary("hostile", {"i32 healthy(i32)"}).status();
  EXPECT_EQ(opened.code(), absl::StatusCode::kFailedPrecondition) << opened;
  EXPECT_THAT(std::string(opened.message()),
              HasSubstr("the policy requires the net_namespace layer, which a worker cannot "
                        "get here: disabled by --disable-layers"));
  EXPECT_TRUE((*daemon)->Children().empty()) << "a worker was started";
  // The status still answers, listing what is required.
  absl::StatusOr<v1::GetStatusResponse> status = (*client)->GetStatus();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->required_layers_size(), 2);
}

TEST(ConfinementLayersTest, RequiredLayersInForceLetWorkersStart) {
  auto daemon = TestDaemon::StartWithPolicy(
      HostilePolicy("", "require_layers: [LAYER_SECCOMP, LAYER_RLIMITS, LAYER_NO_NEW_PRIVS]\n"));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto client = (*daemon)->Connect();
  auto session = (*client)->CreateSession();
  ASSERT_TRUE(session.ok()) << session.status();
  auto lib = (*session)->OpenLibrary("hostile", {"i32 healthy(i32)"});
  ASSERT_TRUE(lib.ok()) << lib.status();
  EXPECT_EQ(*(*lib)->Call<int32_t>("healthy", 1), 2);
}

TEST(ConfinementLayersTest, UnknownProfilesAreRefusedAtStartAndOnReload) {
  const std::string bad = absl::StrCat(
      "principals { name: \"tester\" uids: ", ::getuid(),
      " permission { confinement_profile: \"no-such-profile\" } }\n");
  auto refused = TestDaemon::StartWithPolicy(bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("no-such-profile"));

  auto daemon = TestDaemon::StartWithPolicy(HostilePolicy());
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  {
    FILE* f = std::fopen((*daemon)->policy_path().c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(bad.c_str(), f);
    std::fclose(f);
  }
  ASSERT_EQ(::kill((*daemon)->pid(), SIGHUP), 0);
  absl::Time end = absl::Now() + absl::Seconds(5);
  while (!absl::StrContains((*daemon)->ReadLog(), "NOT reloaded") && absl::Now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_THAT((*daemon)->ReadLog(), HasSubstr("no-such-profile"));
  // The old policy is still in force.
  auto client = (*daemon)->Connect();
  auto session = (*client)->CreateSession();
  ASSERT_TRUE(session.ok()) << session.status();
  EXPECT_TRUE((*session)->OpenLibrary("hostile", {"i32 healthy(i32)"}).ok());
}

// Constructors run inside dlopen, under the loading filter.
TEST(ConfinementLayersTest, HostileConstructorsAreConfinedAndCaught) {
  auto daemon = TestDaemon::StartWithPolicy(absl::StrCat(
      "libraries { name: \"ctor-socket\" path: \"", FFIBROKER_HOSTILE_CTOR_SOCKET_LIB, "\" }\n",
      "libraries { name: \"ctor-filter\" path: \"", FFIBROKER_HOSTILE_CTOR_FILTER_LIB, "\" }\n",
      "principals { name: \"tester\" uids: ", ::getuid(),
      " permission { libraries { library: \"ctor-socket\" }"
      " libraries { library: \"ctor-filter\" } } }\n"));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto client = (*daemon)->Connect();
  auto session = (*client)->CreateSession();
  ASSERT_TRUE(session.ok()) << session.status();

  absl::Status socket = (*session)->OpenLibrary("ctor-socket", {"i32 healthy(i32)"}).status();
  EXPECT_EQ(socket.code(), absl::StatusCode::kPermissionDenied) << socket;
  EXPECT_THAT(std::string(socket.message()),
              HasSubstr("worker was stopped for the forbidden system call socket (#41)"));

  absl::Status filter = (*session)->OpenLibrary("ctor-filter", {"i32 healthy(i32)"}).status();
  EXPECT_EQ(filter.code(), absl::StatusCode::kUnavailable) << filter;
  EXPECT_THAT(std::string(filter.message()),
              HasSubstr("claimed the seccomp layer, but the kernel shows Seccomp_filters: '3'"));
  EXPECT_TRUE((*daemon)->alive());
  EXPECT_TRUE(Eventually([&] { return (*daemon)->Children().empty(); }));
}

// A profile's readable path (noexec) that contains the library must not
// hide the library's own (exec) bind, and must be readable.
TEST(ConfinementLayersTest, ReadablePathsAroundTheLibraryKeepItLoadable) {
  std::string dir = std::filesystem::path(FFIBROKER_HOSTILE_LIB).parent_path().string();
  ProfilesDir profiles(std::map<std::string, std::string>{
      {"wide", absl::StrCat("include: \"files-readonly\"\nreadable_paths: \"", dir, "\"\n")}});
  auto daemon = TestDaemon::StartWithPolicy(HostilePolicy("confinement_profile: \"wide\""),
                                            {profiles.flag()});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto client = (*daemon)->Connect();
  auto session = (*client)->CreateSession();
  ASSERT_TRUE(session.ok()) << session.status();
  auto lib = (*session)->OpenLibrary("hostile", {"i32 healthy(i32)"});
  ASSERT_TRUE(lib.ok()) << lib.status();
  EXPECT_TRUE(InForce((*lib)->layers(), v1::LAYER_MOUNT_NAMESPACE) ||
              Refused((*lib)->layers(), v1::LAYER_MOUNT_NAMESPACE) != nullptr);
  EXPECT_EQ(*(*lib)->Call<int32_t>("healthy", 1), 2);
}

TEST(ConfinementLayersTest, WorkersAreBoundedPerSessionAndInTotal) {
  auto daemon = TestDaemon::StartWithPolicy(
      HostilePolicy("", "limits { max_libraries_per_session: 2 max_workers: 3 }\n"));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto client = (*daemon)->Connect();
  auto s1 = (*client)->CreateSession();
  auto s2 = (*client)->CreateSession();
  ASSERT_TRUE(s1.ok() && s2.ok());
  auto a = (*s1)->OpenLibrary("hostile", {"i32 healthy(i32)"});
  auto b = (*s1)->OpenLibrary("hostile", {"i32 healthy(i32)"});
  ASSERT_TRUE(a.ok() && b.ok());
  absl::Status per_session = (*s1)->OpenLibrary("hostile", {"i32 healthy(i32)"}).status();
  EXPECT_EQ(per_session.code(), absl::StatusCode::kResourceExhausted) << per_session;
  EXPECT_THAT(std::string(per_session.message()), HasSubstr("limit is 2"));
  auto c = (*s2)->OpenLibrary("hostile", {"i32 healthy(i32)"});
  ASSERT_TRUE(c.ok()) << c.status();
  absl::Status total = (*s2)->OpenLibrary("hostile", {"i32 healthy(i32)"}).status();
  EXPECT_EQ(total.code(), absl::StatusCode::kResourceExhausted) << total;
  EXPECT_THAT(std::string(total.message()), HasSubstr("3"));
  EXPECT_EQ((*daemon)->Children().size(), 3u);
  // Closing one frees its slot.
  ASSERT_TRUE((*a)->Close().ok());
  EXPECT_TRUE((*s2)->OpenLibrary("hostile", {"i32 healthy(i32)"}).ok());
}

}  // namespace
}  // namespace ffibroker::testing
