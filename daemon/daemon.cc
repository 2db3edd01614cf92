#include "daemon/daemon.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <climits>
#include <fstream>
#include <sstream>
#include <optional>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/log_event.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "absl/strings/str_join.h"
#include "daemon/activated_listeners.h"
#include "daemon/listen_address.h"
#include "daemon/metrics.h"

namespace ffibroker {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// ffibroker-worker beside ffibrokerd (the build tree), else where it is
// installed (FFIBROKER_INSTALLED_WORKER: LIBEXECDIR/ffibroker).
std::string DefaultWorkerPath() {
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return "ffibroker-worker";
  std::string path(self, static_cast<size_t>(n));
  std::string beside = path.substr(0, path.rfind('/') + 1) + "ffibroker-worker";
#ifdef FFIBROKER_INSTALLED_WORKER
  if (::access(beside.c_str(), X_OK) != 0) return FFIBROKER_INSTALLED_WORKER;
#endif
  return beside;
}

// Prepares a unix socket path: creates the parent directory if missing and
// removes a stale socket left by a dead daemon. FAILED_PRECONDITION if a
// live daemon already listens there or the path is not a socket.
absl::Status PrepareUnixSocket(const std::string& path) {
  std::string dir = path.substr(0, path.rfind('/'));
  if (!dir.empty() && ::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return ErrnoStatus(absl::StrCat("mkdir ", dir), errno);
  }
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return absl::OkStatus();
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " exists and is not a socket; refusing to replace it"));
  }
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof addr.sun_path - 1);
  if (probe.valid() &&
      ::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("another daemon is already listening on ", path));
  }
  ::unlink(path.c_str());
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(
    const ListenAddress& address, const DaemonOptions& options) {
  bool tls = !options.tls_cert_path.empty() || !options.tls_key_path.empty();
  if (!tls) {
    if (address.kind == ListenAddress::Kind::kTcp && !address.loopback) {
      return absl::InvalidArgumentError(absl::StrCat(
          "refusing to listen on ", address.GrpcTarget(),
          " without TLS: give --tls-cert and --tls-key, or listen on loopback"));
    }
    return grpc::InsecureServerCredentials();
  }
  if (options.tls_cert_path.empty() || options.tls_key_path.empty()) {
    return absl::InvalidArgumentError("TLS needs both --tls-cert and --tls-key");
  }
  grpc::SslServerCredentialsOptions ssl;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  ASSIGN_OR_RETURN(pair.private_key, ReadFile(options.tls_key_path));
  ASSIGN_OR_RETURN(pair.cert_chain, ReadFile(options.tls_cert_path));
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

void BlockDaemonSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // A peer that goes away is an EPIPE result, never the daemon's death: a
  // worker killed between its clone and the start byte the daemon writes to
  // its sync pipe (sandbox_spawn) used to end the daemon with SIGPIPE (the
  // kill storm, tests/stress). Workers get SIG_DFL back before exec.
  ::signal(SIGPIPE, SIG_IGN);
}

namespace {

// The token keys: the keyring file, else the one secret of
// token_secret_file, else one generated now.
absl::StatusOr<TokenKeyring> LoadTokenKeys(const Policy& policy) {
  if (!policy.token_keyring_file().empty()) return LoadTokenKeyring(policy.token_keyring_file());
  ASSIGN_OR_RETURN(std::string secret, LoadOrGenerateTokenSecret(policy.token_secret_file()));
  return TokenKeyring::Single(std::move(secret));
}

// With persistent token keys, tokens outlive the daemon, so their state
// must too: replay and keep the journal in `state_dir`. A secret generated at
// start dies with the daemon, and so do its tokens: nothing to keep.
absl::Status OpenTokenJournal(const Policy& policy, const std::string& state_dir,
                              const TokenKeyring& keys, TokenAuthority* authority) {
  if (policy.token_secret_file().empty() && policy.token_keyring_file().empty()) {
    LOG_INFO("no token_secret_file or token_keyring_file: tokens last until the daemon "
             "stops; no token journal");
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(PrepareStateDirectory(state_dir));
  std::string path = absl::StrCat(state_dir, "/", kTokenJournalFile);
  std::vector<daemon::v1::TokenJournalRecord> records;
  std::string warning;
  std::vector<std::string> secrets;
  for (const TokenKey& key : keys.keys()) secrets.push_back(key.secret);
  ASSIGN_OR_RETURN(std::unique_ptr<TokenJournal> journal,
                   TokenJournal::Open(path, secrets, &records, &warning));
  if (!warning.empty()) LOG_WARNING("%s", warning);
  RETURN_IF_ERROR(authority->UseJournal(std::move(journal), records));
  LOG_INFO("token journal %s: replayed %d records", path, records.size());
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(const DaemonOptions& options) {
  std::unique_ptr<Daemon> d(new Daemon());
  d->options_ = options;
  if (d->options_.worker_path.empty()) d->options_.worker_path = DefaultWorkerPath();
  if (::access(d->options_.worker_path.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "worker executable ", d->options_.worker_path, " is missing or not executable"));
  }
  // Before anything is bound: a bad --worker-uids stops the start at once.
  ASSIGN_OR_RETURN(std::unique_ptr<WorkerUidPool> uids, MakeWorkerUidPool(options.worker_uids));
  ASSIGN_OR_RETURN(Policy policy, Policy::LoadFile(options.policy_path));
  for (const std::string& warning : policy.warnings()) LOG_WARNING("%s", warning);
  // Profiles are loaded once; a policy (at start or on SIGHUP) may only name
  // profiles that exist.
  std::string profiles_dir = options.profiles_dir;
  if (profiles_dir.empty()) {
    size_t slash = options.policy_path.rfind('/');
    profiles_dir = (slash == std::string::npos ? std::string(".")
                                               : options.policy_path.substr(0, slash)) +
                   "/profiles";
  }
  ASSIGN_OR_RETURN(ProfileSet profiles, ProfileSet::LoadDirectory(profiles_dir));
  d->profiles_ = std::make_unique<ProfileSet>(std::move(profiles));
  PolicyHolder::Validator validate = [profiles = d->profiles_.get()](const Policy& p) {
    return p.CheckProfiles(profiles->Names());
  };
  RETURN_IF_ERROR(validate(policy));
  d->policies_ =
      std::make_unique<PolicyHolder>(std::move(policy), options.policy_path, validate);
  std::shared_ptr<const Policy> current = d->policies_->Get();
  if (current->principal_count() == 0) {
    LOG_WARNING("the policy lists no principals: every client will be refused");
  }
  ASSIGN_OR_RETURN(TokenKeyring keys, LoadTokenKeys(*current));
  d->token_keyring_path_ = current->token_keyring_file();
  d->token_secret_path_ = current->token_secret_file();
  LOG_INFO("token keys: %s%s", keys.Describe(),
           d->token_keyring_path_.empty()
               ? (d->token_secret_path_.empty() ? " (generated at start)"
                                                : " (from token_secret_file)")
               : absl::StrCat(" (from token keyring ", d->token_keyring_path_, ")"));
  d->token_authority_ = std::make_unique<TokenAuthority>(keys);
  RETURN_IF_ERROR(OpenTokenJournal(*current, options.state_dir, keys,
                                   d->token_authority_.get()));
  ASSIGN_OR_RETURN(d->audit_, AuditLog::Open(current->audit()));
  ASSIGN_OR_RETURN(d->pins_, PinnedLibraries::Create());

  // Socket activation: listeners passed by systemd replace --listen and the
  // policy's listen.
  ASSIGN_OR_RETURN(ActivatedListeners activated, TakeActivatedListeners());
  const bool socket_activated = activated.broker_any();
  // The metrics listener first: a bad --metrics-listen stops the start
  // before the Broker's socket exists.
  if (activated.metrics_fd.valid()) {
    ASSIGN_OR_RETURN(d->metrics_server_, MetricsServer::Adopt(std::move(activated.metrics_fd),
                                                              activated.metrics_address));
  } else if (!options.metrics_listen.empty()) {
    ASSIGN_OR_RETURN(d->metrics_server_, MetricsServer::Listen(options.metrics_listen));
  }
  if (d->metrics_server_ != nullptr) {
    LOG_INFO("metrics on http://%s/metrics", d->metrics_server_->address());
  }
  grpc::ServerBuilder builder;
  ListenAddress address{};
  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (!socket_activated) {
    ASSIGN_OR_RETURN(address, ParseListenAddress(options.listen.empty() ? current->listen()
                                                                        : options.listen));
    ASSIGN_OR_RETURN(credentials, Credentials(address, options));
    if (address.kind == ListenAddress::Kind::kUnix) {
      RETURN_IF_ERROR(PrepareUnixSocket(address.path));
      // Accepted by us (peer credentials), handed to gRPC: see peer_acceptor.h.
      ASSIGN_OR_RETURN(d->acceptor_, PeerAcceptor::Listen(address.path));
      d->acceptor_->set_max_connections_per_user(options.max_connections_per_user);
    }
  } else {
    std::vector<std::string> where;
    if (activated.unix_fd.valid()) {
      ASSIGN_OR_RETURN(d->acceptor_, PeerAcceptor::Adopt(std::move(activated.unix_fd),
                                                         activated.unix_path));
      d->acceptor_->set_max_connections_per_user(options.max_connections_per_user);
      where.push_back(absl::StrCat("unix:", activated.unix_path));
    }
    if (activated.tcp_fd.valid()) {
      ListenAddress tcp;
      tcp.kind = ListenAddress::Kind::kTcp;
      tcp.host = activated.tcp_address;
      tcp.loopback = activated.tcp_loopback;
      ASSIGN_OR_RETURN(auto tcp_credentials, Credentials(tcp, options));
      ASSIGN_OR_RETURN(
          d->tcp_handover_,
          TcpHandover::Create(
              std::move(activated.tcp_fd),
              builder.experimental().AddExternalConnectionAcceptor(
                  grpc::ServerBuilder::experimental_type::ExternalConnectionType::FROM_FD,
                  tcp_credentials)));
      where.push_back(activated.tcp_address);
    }
    d->address_ = absl::StrJoin(where, " and ");
    LOG_INFO("socket activation: serving %s", d->address_);
  }

  ASSIGN_OR_RETURN(std::set<v1::Layer> disabled, ParseNamespaceLayers(options.disable_layers));
  ASSIGN_OR_RETURN(d->watcher_, WorkerWatcher::Create());
  d->launcher_ = std::make_unique<WorkerLauncher>(d->options_.worker_path, d->profiles_.get(),
                                                  disabled, std::move(uids));
  d->launcher_->set_watcher(d->watcher_.get());
  d->launcher_->set_ring_bytes(static_cast<uint32_t>(options.channel_ring_kib) * 1024);
  if (options.prestart_workers > 0) {
    PrestartOptions prestart;
    prestart.per_profile = options.prestart_workers;
    prestart.refill_parallel = options.prestart_refill;
    prestart.start_timeout = absl::Milliseconds(current->limits().max_open_millis());
    RETURN_IF_ERROR(d->launcher_->EnablePrestart(prestart));
    d->launcher_->PrestartProfiles(current->ReferencedProfiles());
    LOG_INFO("pre-starting %d workers per confinement profile in use", options.prestart_workers);
  }
  const int share = options.threads_per_principal > 0
                        ? std::min(options.threads_per_principal, options.threads)
                        : std::max(1, options.threads / 4);
  d->sessions_ = std::make_unique<SessionManager>(
      d->policies_.get(), d->token_authority_.get(), d->audit_.get(), d->pins_.get(),
      d->launcher_.get(), options.threads, share);
  d->token_service_ = std::make_unique<TokenService>(
      d->sessions_.get(), d->policies_.get(), d->token_authority_.get(), d->audit_.get());
  d->authenticator_ = std::make_unique<Authenticator>(d->acceptor_.get(), d->policies_.get());
  d->executor_ = std::make_unique<Executor>(options.threads, share);
  d->service_ = std::make_unique<BrokerService>(d->sessions_.get(), d->token_service_.get(),
                                                d->authenticator_.get(), d->executor_.get());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  int port = 0;
  if (!socket_activated && address.kind == ListenAddress::Kind::kTcp) {
    builder.AddListeningPort(address.GrpcTarget(), credentials, &port);
  }
  // The mTLS listener: only clients with a certificate from client_ca_file.
  int tls_port = 0;
  std::optional<ListenAddress> tls_address;
  if (current->tls().listen().size() > 0) {
    ASSIGN_OR_RETURN(ListenAddress parsed, ParseListenAddress(current->tls().listen()));
    if (parsed.kind != ListenAddress::Kind::kTcp) {
      return absl::InvalidArgumentError("tls.listen must be tcp:HOST:PORT");
    }
    grpc::SslServerCredentialsOptions ssl(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
    ASSIGN_OR_RETURN(pair.private_key, ReadFile(current->tls().key_file()));
    ASSIGN_OR_RETURN(pair.cert_chain, ReadFile(current->tls().cert_file()));
    ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadFile(current->tls().client_ca_file()));
    ssl.pem_key_cert_pairs.push_back(std::move(pair));
    builder.AddListeningPort(parsed.GrpcTarget(), grpc::SslServerCredentials(ssl), &tls_port);
    tls_address = parsed;
  }
  builder.RegisterService(d->service_.get());
  // Every value up to the documented limits fits (common/limits.h).
  builder.SetMaxReceiveMessageSize(static_cast<int>(kMaxGrpcMessageBytes));
  builder.SetMaxSendMessageSize(static_cast<int>(kMaxGrpcMessageBytes));
  // Requests are authenticated only once they have fully arrived, so what a
  // peer holds before that is bounded here: streams per connection (a
  // client that opens more waits for one to end, as HTTP/2 says), and the
  // memory gRPC may take for all connections together (under pressure it
  // shrinks its flow-control windows instead of growing).
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             static_cast<int>(kMaxStreamsPerConnection));
  grpc::ResourceQuota grpc_memory("ffibrokerd");
  grpc_memory.Resize(kMaxGrpcMemoryBytes);
  builder.SetResourceQuota(grpc_memory);
  d->server_ = builder.BuildAndStart();
  if (d->server_ == nullptr ||
      (!socket_activated && address.kind == ListenAddress::Kind::kTcp && port == 0) ||
      (tls_address.has_value() && tls_port == 0)) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address.GrpcTarget(),
                                               tls_address ? " or the tls listener" : ""));
  }
  if (address.kind == ListenAddress::Kind::kTcp) address.port = port;
  if (d->acceptor_ != nullptr) d->acceptor_->Start(d->server_.get());
  if (d->tcp_handover_ != nullptr) d->tcp_handover_->Start();
  if (tls_address.has_value()) {
    tls_address->port = tls_port;
    LOG_INFO("mTLS listener on tcp:%s", tls_address->GrpcTarget());
  }
  if (!socket_activated) {
    d->address_ = address.kind == ListenAddress::Kind::kUnix
                      ? address.GrpcTarget()
                      : absl::StrCat("tcp:", address.GrpcTarget());
  }
  // Health by service name: "" (the server) and ffibroker.v1.Broker, both
  // SERVING until Stop() begins.
  grpc::HealthCheckServiceInterface* health = d->server_->GetHealthCheckService();
  if (health != nullptr) {
    health->SetServingStatus(true);
    health->SetServingStatus(v1::Broker::service_full_name(), true);
  }
  LOG_INFO("listening on %s (policy %s, worker %s)", d->address_, options.policy_path,
           d->options_.worker_path);
  metrics::SetInUseSource([sessions = d->sessions_.get()] {
    const PrincipalQuota& quota = sessions->quota();
    return metrics::InUse{quota.Total(Resource::kSessions), quota.Total(Resource::kWorkers),
                          quota.Total(Resource::kCallsInFlight),
                          quota.Total(Resource::kInstances)};
  });
  // Only now: every listener accepts connections.
  d->notifier_.Ready(d->ServingStatus());
  return d;
}

void Daemon::RunUntilSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  timespec tick = {1, 0};
  while (true) {
    int sig = ::sigtimedwait(&set, nullptr, &tick);
    if (sig == SIGINT || sig == SIGTERM) {
      LOG_INFO("received %s, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
      notifier_.Stopping();
      break;
    }
    if (sig == SIGHUP) {
      notifier_.Reloading();
      ReloadPolicy();
      ReloadTokenKeys();
      notifier_.Ready(ServingStatus());
    }
    sessions_->ExpireIdleSessions();
  }
  Stop();
}

std::string Daemon::ServingStatus() const {
  return absl::StrCat("serving on ", address_, "; policy ", policies_->path(), " (",
                      policies_->Get()->principal_count(), " principals)");
}

void Daemon::ReloadPolicy() {
  absl::Status status = policies_->Reload();
  if (!status.ok()) {
    LOG_ERROR("SIGHUP: policy %s NOT reloaded, the old one stays in force:\n%s",
              policies_->path(), status.message());
    audit_->Record("reload_policy", {{"result", "rejected"},
                                     {"reason", std::string(status.message())}});
    return;
  }
  std::shared_ptr<const Policy> policy = policies_->Get();
  launcher_->PrestartProfiles(policy->ReferencedProfiles());
  for (const std::string& warning : policy->warnings()) LOG_WARNING("%s", warning);
  LOG_INFO("SIGHUP: policy %s reloaded (%d principals)", policies_->path(),
           policy->principal_count());
  audit_->Record("reload_policy", {{"result", "ok"},
                                   {"principals", absl::StrCat(policy->principal_count())}});
}

void Daemon::ReloadTokenKeys() {
  std::shared_ptr<const Policy> policy = policies_->Get();
  if (policy->token_keyring_file() != token_keyring_path_ ||
      policy->token_secret_file() != token_secret_path_) {
    LOG_WARNING("SIGHUP: the policy names other token key files than at start; they take "
                "effect at the next start");
  }
  if (token_keyring_path_.empty()) return;  // one secret: nothing to rotate
  absl::StatusOr<TokenKeyring> keys = LoadTokenKeyring(token_keyring_path_);
  absl::Status status = keys.status();
  if (keys.ok()) status = token_authority_->SetKeyring(*std::move(keys));
  if (!status.ok()) {
    LOG_ERROR("SIGHUP: token keyring NOT reloaded, the old keys stay in force: %s",
              status.message());
    audit_->Record("reload_token_keys", {{"result", "rejected"},
                                         {"reason", std::string(status.message())}});
    return;
  }
  std::string described = token_authority_->DescribeKeys();
  LOG_EVENT(LogLevel::kInfo, LogFields().Event("reload_token_keys"),
            "SIGHUP: token keyring %s reloaded: keys %s", token_keyring_path_, described);
  audit_->Record("reload_token_keys", {{"result", "ok"}, {"token_keys", described}});
}

void Daemon::Stop() {
  if (server_ == nullptr) return;
  // First of all, so health watchers learn of the shutdown before the
  // server stops answering.
  if (grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService()) {
    health->SetServingStatus(false);
  }
  if (acceptor_ != nullptr) acceptor_->Stop();
  if (tcp_handover_ != nullptr) tcp_handover_->Stop();
  launcher_->StopPrestart();  // no more pre-starts; the idle ones are killed
  // Stop accepting; in-flight RPCs get the grace period. Calls (and opens)
  // still stuck in a worker after it are ended by killing every worker, so
  // the daemon ends within the grace period plus about a second.
  const absl::Time grace_ends = absl::Now() + options_.shutdown_grace;
  // The backstop of the promise that SIGTERM ends the daemon within the
  // grace period plus 2 s: gRPC's own threads have been seen to hold up
  // the server's teardown. Every worker dies with the daemon (PDEATHSIG),
  // and durable state is fsync'd as it is written, so exiting is safe.
  auto stopped = std::make_shared<absl::Notification>();
  std::thread([stopped, grace_ends] {
    if (stopped->WaitForNotificationWithDeadline(grace_ends + absl::Milliseconds(1500))) return;
    LOG_WARNING("the server did not stop within the grace period plus 1.5 s; exiting now");
    ::_exit(0);
  }).detach();
  absl::Notification drained;
  std::thread shutdown([this, &drained, grace_ends] {
    server_->Shutdown(absl::ToChronoTime(grace_ends));
    drained.Notify();
  });
  if (!drained.WaitForNotificationWithTimeout(options_.shutdown_grace)) {
    LOG_WARNING("calls still running after %s; stopping their workers",
                absl::FormatDuration(options_.shutdown_grace));
    // Kill first: a call stuck in a worker would hold up its library's
    // release below.
    watcher_->Shutdown();
  }
  // Destructors of instances left behind get what remains of the grace
  // period (at least half a second, all together); then every worker is
  // killed, including those still starting or loading a library.
  sessions_->CloseAll(std::max(grace_ends, absl::Now() + absl::Milliseconds(500)));
  watcher_->Shutdown();
  shutdown.join();
  server_->Wait();
  server_.reset();
  stopped->Notify();
  LOG_INFO("stopped");
}

Daemon::~Daemon() {
  Stop();
  metrics_server_.reset();
  metrics::SetInUseSource(nullptr);  // before the sessions it reads go
  // Order matters: the executor drains before the sessions it calls into go.
  executor_.reset();
  service_.reset();
  token_service_.reset();
  sessions_.reset();
  launcher_.reset();
  watcher_.reset();  // after every owner of a worker
}

}  // namespace ffibroker
