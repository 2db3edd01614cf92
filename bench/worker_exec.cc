// worker_exec: what exec of the worker costs, up to its handshake (issue 15
// item 4), without the sandbox: fork + exec of ffibroker-worker with its
// channel on fd 3 until its Hello packet arrives, next to fork + exec of a
// program that does nothing (/bin/true, until it exits), which is the floor
// any executable pays here. The difference is the worker's own start:
// dynamic linking of its shared libraries (-z now binds every symbol),
// static initializers (protobuf descriptors, absl), flag parsing, early
// confinement and the Hello itself. The sandbox (namespaces, the root) is
// measured by worker_lifecycle.
//
// Usage: worker_exec [--iterations=N] [--worker=PATH]
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/median.h"
#include "common/cli_flags.h"

namespace {

using ffibroker::Of;
using ffibroker::Stats;

double Since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
      .count();
}

// fork + exec `argv` with `fd` (if >= 0) as its fd 3; returns the pid.
pid_t Start(const std::vector<std::string>& args, int fd) {
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  if (fd >= 0 && ::dup2(fd, 3) != 3) ::_exit(127);
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  char* envp[] = {nullptr};
  ::execve(argv[0], argv.data(), envp);
  ::_exit(127);
}

double CpuUs(const rusage& r) {
  return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1e6 + r.ru_utime.tv_usec + r.ru_stime.tv_usec;
}

// One start of the worker until its first packet (the Hello); -1 on failure.
// `*cpu` gets the CPU time (user + system) the worker used in all, which
// the load of the machine does not inflate as it does the wall time.
double WorkerUntilHello(const std::string& worker, double* cpu) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return -1;
  auto start = std::chrono::steady_clock::now();
  pid_t pid = Start({worker, "--parent-pid=" + std::to_string(::getpid())}, sv[1]);
  ::close(sv[1]);
  char buf[4096];
  ssize_t n = ::recv(sv[0], buf, sizeof buf, 0);
  double us = Since(start);
  ::close(sv[0]);  // the worker leaves when its channel closes
  int status = 0;
  rusage used = {};
  ::wait4(pid, &status, 0, &used);
  *cpu = CpuUs(used);
  return n > 0 ? us : -1;
}

double TrueUntilExit(double* cpu) {
  auto start = std::chrono::steady_clock::now();
  pid_t pid = Start({"/bin/true"}, -1);
  int status = 0;
  rusage used = {};
  ::wait4(pid, &status, 0, &used);
  *cpu = CpuUs(used);
  return Since(start);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("fork + exec of the worker until its Hello, next to /bin/true.", "worker_exec");
  int iterations = 200;
  std::string worker = FFIBROKER_WORKER_PATH;
  app.add_option("--iterations", iterations, "starts per measurement")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--worker", worker, "the worker executable")->capture_default_str();
  if (std::optional<int> exit_code = ffibroker::ParseFlags(app, argc, argv)) return *exit_code;
  std::vector<double> hello, floor, hello_cpu, floor_cpu;
  for (int i = 0; i < iterations; ++i) {
    double cpu = 0;
    double us = WorkerUntilHello(worker, &cpu);
    if (us < 0) return std::fprintf(stderr, "the worker did not say hello\n"), 1;
    hello.push_back(us);
    hello_cpu.push_back(cpu);
    floor.push_back(TrueUntilExit(&cpu));
    floor_cpu.push_back(cpu);
  }
  Stats h = Of(hello), f = Of(floor), hc = Of(hello_cpu), fc = Of(floor_cpu);
  std::printf("%-42s wall p50 %8.1f us  p99 %8.1f us | cpu p50 %8.1f us\n",
              "fork+exec ffibroker-worker until Hello", h.median_us, h.p99_us, hc.median_us);
  std::printf("%-42s wall p50 %8.1f us  p99 %8.1f us | cpu p50 %8.1f us\n",
              "fork+exec /bin/true until exit", f.median_us, f.p99_us, fc.median_us);
  std::printf("%-42s wall p50 %8.1f us                  | cpu p50 %8.1f us\n",
              "the worker's own start (difference)", h.median_us - f.median_us, hc.median_us - fc.median_us);
  return 0;
}
