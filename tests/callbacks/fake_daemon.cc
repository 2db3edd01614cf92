#include "tests/callbacks/fake_daemon.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/signature.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "daemon/profiles.h"

namespace ffibroker {
namespace {

uint64_t FreshId() {
  static std::mt19937_64 random(std::random_device{}());
  uint64_t id = 0;
  while (id == 0) id = random();
  return id;
}

absl::Time Deadline() { return absl::Now() + absl::Seconds(60); }

}  // namespace

std::string I32(int32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); }
std::string U64(uint64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); }
std::string F64(double v) { return std::string(reinterpret_cast<const char*>(&v), 8); }
int32_t AsI32(const std::string& bytes) {
  int32_t v = 0;
  std::memcpy(&v, bytes.data(), std::min<size_t>(bytes.size(), 4));
  return v;
}
double AsF64(const std::string& bytes) {
  double v = 0;
  std::memcpy(&v, bytes.data(), std::min<size_t>(bytes.size(), 8));
  return v;
}

absl::StatusOr<std::unique_ptr<FakeDaemon>> FakeDaemon::Start() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    return ErrnoStatus("socketpair", errno);
  }
  UniqueFd ours(fds[0]);
  UniqueFd theirs(fds[1]);
  const pid_t parent = ::getpid();
  const std::string parent_flag = absl::StrCat("--parent-pid=", parent);
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus("fork", errno);
  if (pid == 0) {
    ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    if (::dup2(theirs.get(), 3) != 3) ::_exit(120);
    ::execl(FFIBROKER_WORKER_PATH, "ffibroker-worker", parent_flag.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(121);
  }
  theirs = UniqueFd();
  std::unique_ptr<FakeDaemon> daemon(
      new FakeDaemon(pid, std::make_unique<SeqpacketTransport>(std::move(ours))));
  worker::v1::WorkerToDaemon hello;
  RETURN_IF_ERROR(daemon->Receive(&hello));
  if (!hello.has_hello()) {
    return absl::InternalError(absl::StrCat("expected Hello, got ", hello.ShortDebugString()));
  }
  return daemon;
}

FakeDaemon::~FakeDaemon() {
  channel_.reset();
  if (!reaped_) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status_, 0);
  }
}

int FakeDaemon::Wait() {
  if (!reaped_) {
    ::waitpid(pid_, &status_, 0);
    reaped_ = true;
  }
  return status_;
}

absl::Status FakeDaemon::Send(const worker::v1::DaemonToWorker& request) {
  return channel_->Send(request, Deadline());
}

absl::Status FakeDaemon::Receive(worker::v1::WorkerToDaemon* message) {
  return channel_->Receive(message, Deadline(), -1);
}

absl::Status FakeDaemon::Answer(uint64_t invocation_id, const std::string& value) {
  worker::v1::DaemonToWorker answer;
  answer.mutable_callback_answer()->set_invocation_id(invocation_id);
  answer.mutable_callback_answer()->set_value(value);
  return Send(answer);
}

absl::StatusOr<worker::v1::WorkerToDaemon> FakeDaemon::Open(
    const std::string& library, const std::vector<std::string>& declarations,
    const std::string& profile_name, uint32_t closures) {
  ASSIGN_OR_RETURN(ProfileSet profiles, ProfileSet::LoadDirectory(FFIBROKER_PROFILES_DIR));
  ASSIGN_OR_RETURN(const Profile* profile, profiles.Find(profile_name));
  SeccompContext context;
  context.self_pid = pid_;  // no pid namespace here
  worker::v1::DaemonToWorker request;
  request.set_request_id(FreshId());
  worker::v1::Open* open = request.mutable_open();
  open->set_path(library);
  open->set_callback_closures(closures);
  worker::v1::Lockdown* lockdown = open->mutable_lockdown();
  lockdown->set_address_space_bytes(uint64_t{4} << 30);
  lockdown->set_cpu_seconds(60);
  lockdown->set_open_files(64);
  lockdown->set_processes(profile->processes());
  lockdown->set_profile(profile_name);
  lockdown->set_profile_syscalls(static_cast<uint32_t>(profile->syscall_count()));
  ASSIGN_OR_RETURN(*lockdown->mutable_seccomp_bpf(), profile->Compile(context, false));
  ASSIGN_OR_RETURN(*lockdown->mutable_seccomp_bpf_loading(), profile->Compile(context, true));
  v1::ClassDefinition* point = open->add_classes();
  point->set_name("Point");
  for (const char* f : {"x", "y"}) {
    v1::FieldDefinition* field = point->add_fields();
    field->set_name(f);
    field->mutable_type()->set_scalar(v1::SCALAR_F64);
  }
  for (const std::string& text : declarations) {
    ASSIGN_OR_RETURN(Declaration decl, ParseDeclaration(text, {"Point"}));
    worker::v1::Symbol* symbol = open->add_symbols();
    symbol->set_name(decl.name);
    *symbol->mutable_signature() = decl.signature;
  }
  RETURN_IF_ERROR(Send(request));
  worker::v1::WorkerToDaemon reply;
  RETURN_IF_ERROR(Receive(&reply));
  if (reply.request_id() != request.request_id()) {
    return absl::InternalError(absl::StrCat("Open answered by ", reply.ShortDebugString()));
  }
  return reply;
}

worker::v1::DaemonToWorker FakeDaemon::Call(uint32_t index, std::vector<std::string> args,
                                            std::vector<uint64_t> persistent) {
  worker::v1::DaemonToWorker request;
  request.set_request_id(FreshId());
  request.mutable_call()->set_symbol_index(index);
  for (std::string& a : args) request.mutable_call()->add_args(std::move(a));
  for (uint64_t id : persistent) request.mutable_call()->add_persistent_callbacks(id);
  return request;
}

absl::StatusOr<worker::v1::WorkerToDaemon> FakeDaemon::Run(worker::v1::DaemonToWorker request,
                                                           const Handler& handler) {
  if (request.request_id() == 0) request.set_request_id(FreshId());
  RETURN_IF_ERROR(Send(request));
  while (true) {
    worker::v1::WorkerToDaemon message;
    RETURN_IF_ERROR(Receive(&message));
    if (message.has_fatal()) return message;
    if (message.has_callback_invoke()) {
      if (!handler) return absl::InternalError("an invocation nobody expected");
      const worker::v1::CallbackInvoke invoke = message.callback_invoke();
      std::string value = handler(invoke);
      RETURN_IF_ERROR(Answer(invoke.invocation_id(), value));
      continue;
    }
    if (message.request_id() != request.request_id()) {
      return absl::InternalError(absl::StrCat("expected the reply to ", request.request_id(),
                                              ", got ", message.ShortDebugString()));
    }
    return message;
  }
}

}  // namespace ffibroker
