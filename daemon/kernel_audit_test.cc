// Unit tests of reading the kernel's seccomp audit records (issue 9,
// finding 18: name a forbidden call even when the worker's reporter could
// not run).
#include "daemon/kernel_audit.h"

#include <linux/audit.h>
#include <unistd.h>

#include "gtest/gtest.h"

namespace ffibroker {
namespace {

constexpr char kRecord[] =
    "5,812,5005495799,-;audit: type=1326 audit(1796578039.534:1): auid=4294967295 uid=0 "
    "gid=0 ses=4294967295 pid=7160 comm=\"t\" exe=\"/tmp/kx/t\" sig=0 arch=c000003e "
    "syscall=41 compat=0 ip=0x7f9a0b489dc7 code=0x30000\n";

TEST(KernelAuditTest, ParsesTheSeccompRecordOfThePid) {
  std::optional<SeccompAuditRecord> r = ParseSeccompAuditRecord(kRecord, 7160, 0);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->arch, AUDIT_ARCH_X86_64);
  EXPECT_EQ(r->syscall, 41);
}

TEST(KernelAuditTest, IgnoresOtherPidsOlderRecordsUserWritesErrnoAnswersAndOtherTypes) {
  EXPECT_FALSE(ParseSeccompAuditRecord(kRecord, 716, 0).has_value());   // pid=7160, not 716
  EXPECT_FALSE(ParseSeccompAuditRecord(kRecord, 71600, 0).has_value());
  EXPECT_FALSE(ParseSeccompAuditRecord(kRecord, 7160, 5005495800).has_value());  // older
  std::string user = kRecord;
  user.replace(0, 1, "13");  // facility user (1 << 3 | 5): written by a process, not the kernel
  EXPECT_FALSE(ParseSeccompAuditRecord(user, 7160, 0).has_value());
  std::string other = kRecord;
  other.replace(other.find("1326"), 4, "1300");
  EXPECT_FALSE(ParseSeccompAuditRecord(other, 7160, 0).has_value());
  std::string errno_answer = kRecord;  // a fail_with_errno rule's answer: no violation
  errno_answer.replace(errno_answer.find("code=0x30000"), 12, "code=0x50026");
  EXPECT_FALSE(ParseSeccompAuditRecord(errno_answer, 7160, 0).has_value());
  EXPECT_FALSE(ParseSeccompAuditRecord("garbage", 7160, 0).has_value());
  EXPECT_FALSE(ParseSeccompAuditRecord("0,1,2,-;audit: type=1326 pid=7160 arch=zz syscall=1",
                                       7160, 0).has_value());
}

TEST(KernelAuditTest, FindingARecordOfAProcessWithNoneIsNothing) {
  EXPECT_FALSE(FindSeccompAuditRecord(::getpid(), KernelLogClockMicros()).has_value());
}

}  // namespace
}  // namespace ffibroker
