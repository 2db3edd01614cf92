#include "daemon/profile_guard.h"

#include <signal.h>
#include <string.h>
#include <sys/prctl.h>

#include <cstdint>
#include <iterator>
#include <vector>

#include "absl/strings/str_cat.h"
#include "daemon/worker/fatal_reporter.h"

namespace ffibroker {
namespace {

using Tree = google::protobuf::TextFormat::ParseInfoTree;

// PR_SET_SYSCALL_USER_DISPATCH is newer than bookworm's headers.
constexpr uint32_t kPrSetSyscallUserDispatch = 59;

// A syscall a profile may only allow with arguments that keep the reporter
// intact. `index` is the argument checked; `dangerous` its values that
// defeat a guarantee (compared on the low 32 bits, which is what the kernel
// reads of an int argument); empty: every call is dangerous.
struct Guarded {
  const char* name;
  uint32_t index;
  std::vector<uint32_t> dangerous;
  const char* what;  // "may <what> <value>"
  const char* why;
  bool signals = false;  // `dangerous` are signal numbers
};

std::vector<uint32_t> ReportedSignals() {
  return std::vector<uint32_t>(std::begin(kReportedSignals), std::end(kReportedSignals));
}

const std::vector<Guarded>& GuardedSyscalls() {
  static const std::vector<Guarded>* const guarded = new std::vector<Guarded>{
      {"rt_sigaction", 0, ReportedSignals(), "replace the handler of",
       "the worker's violation and crash reporter handles it (a library's own handler "
       "turns forbidden syscalls into silent no-ops and crashes into hangs); restrict "
       "argument 0, e.g. to the real-time signals 32..63 as strict does", true},
      {"sigaction", 0, ReportedSignals(), "replace the handler of",
       "the worker's violation and crash reporter handles it", true},
      {"signal", 0, ReportedSignals(), "replace the handler of",
       "the worker's violation and crash reporter handles it", true},
      {"prctl", 0,
       {PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_SECCOMP, PR_SET_MM, PR_SET_PTRACER,
        kPrSetSyscallUserDispatch},
       "use the option",
       "it would let the worker outlive the daemon, be traced, take another filter, "
       "rewrite its memory map or route syscalls past seccomp; restrict argument 0 with "
       "ARG_OP_EQ to the options the library needs"},
      {"seccomp", 0, {0 /* SET_MODE_STRICT */, 1 /* SET_MODE_FILTER */}, "use the operation",
       "a filter of the library's own could kill the worker before its report is sent"},
      {"ptrace", 0, {}, "",
       "one process of the worker could rewrite another's memory and registers, "
       "its reporter and its channel included"},
      {"process_vm_writev", 0, {}, "",
       "one process of the worker could rewrite another's memory, its reporter included"},
      {"execve", 0, {}, "",
       "a new program image has no violation reporter and does not speak to the daemon"},
      {"execveat", 0, {}, "",
       "a new program image has no violation reporter and does not speak to the daemon"},
  };
  return *guarded;
}

// True if `c` admits no register value whose low 32 bits are `v32`.
bool Excludes(const v1::ArgCondition& c, uint32_t v32) {
  if (c.value_from() != v1::ARG_VALUE_LITERAL) return false;  // known per worker only
  const uint64_t value = c.value();
  const uint64_t lowest = v32;                                  // upper bits all 0
  const uint64_t highest = (uint64_t{0xffffffff} << 32) | v32;  // upper bits all 1
  switch (c.op()) {
    case v1::ARG_OP_EQ: return static_cast<uint32_t>(value) != v32;
    case v1::ARG_OP_LT: return lowest >= value;
    case v1::ARG_OP_LE: return lowest > value;
    case v1::ARG_OP_GT: return highest <= value;
    case v1::ARG_OP_GE: return highest < value;
    case v1::ARG_OP_MASKED_EQ:
      return (value & ~c.mask()) != 0 ||
             (v32 & static_cast<uint32_t>(c.mask())) != static_cast<uint32_t>(value);
    default: return false;  // NE, or unspecified (refused elsewhere)
  }
}

// True if some condition on argument `index` excludes `v32` on its own.
// Conservative: conditions that exclude a value only together do not count.
bool RuleExcludes(const v1::SyscallRule& rule, uint32_t index, uint32_t v32) {
  for (const v1::ArgCondition& c : rule.args()) {
    if (c.index() == index && Excludes(c, v32)) return true;
  }
  return false;
}

// True if the rule allows the call only with argument `index` == 0 (all 64 bits).
bool RequiresZero(const v1::SyscallRule& rule, uint32_t index) {
  for (const v1::ArgCondition& c : rule.args()) {
    if (c.index() != index || c.value_from() != v1::ARG_VALUE_LITERAL) continue;
    if (c.op() == v1::ARG_OP_EQ && c.value() == 0) return true;
    if (c.op() == v1::ARG_OP_LE && c.value() == 0) return true;
    if (c.op() == v1::ARG_OP_LT && c.value() == 1) return true;
    if (c.op() == v1::ARG_OP_MASKED_EQ && c.mask() == ~uint64_t{0} && c.value() == 0) return true;
  }
  return false;
}

std::string Where(const std::string& file, const Tree* rule_tree) {
  const auto* name = v1::SyscallRule::descriptor()->FindFieldByName("name");
  google::protobuf::TextFormat::ParseLocation loc =
      rule_tree ? rule_tree->GetLocation(name, -1) : google::protobuf::TextFormat::ParseLocation();
  return absl::StrCat(file, ":", loc.line + 1, ":", loc.column + 1);
}

}  // namespace

absl::Status CheckProfileKeepsGuarantees(const std::string& file,
                                         const v1::ConfinementProfile& profile,
                                         const Tree& tree) {
  const auto* allow = v1::ConfinementProfile::descriptor()->FindFieldByName("allow");
  for (int i = 0; i < profile.allow_size(); ++i) {
    const v1::SyscallRule& rule = profile.allow(i);
    if (rule.fail_with_errno() != 0) continue;  // the call never happens
    auto refuse = [&](const std::string& detail) {
      return absl::InvalidArgumentError(absl::StrCat(Where(file, tree.GetTreeForNested(allow, i)),
                                                     ": '", rule.name(), "' ", detail));
    };
    if (rule.name() == "sigaltstack" && !RequiresZero(rule, 0)) {
      return refuse(
          "may set a new signal stack: the worker's reporter runs on its own (allow it only "
          "with argument 0 == 0, which reads the current one)");
    }
    for (const Guarded& g : GuardedSyscalls()) {
      if (rule.name() != g.name) continue;
      if (g.dangerous.empty()) return refuse(absl::StrCat("cannot be allowed: ", g.why));
      // rt_sigaction(sig, NULL, old) only reads a handler.
      if (g.signals && RequiresZero(rule, 1)) continue;
      for (uint32_t value : g.dangerous) {
        if (RuleExcludes(rule, g.index, value)) continue;
        const char* abbrev = g.signals ? ::sigabbrev_np(static_cast<int>(value)) : nullptr;
        return refuse(absl::StrCat("may ", g.what, " ",
                                   abbrev ? absl::StrCat("SIG", abbrev) : absl::StrCat(value),
                                   " (argument ", g.index, " is not restricted): ", g.why));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace ffibroker
