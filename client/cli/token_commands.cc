#include "client/cli/cli_output.h"
#include "client/cli/token_commands.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/token_id.h"
#include "daemon/policy.h"
#include "google/protobuf/text_format.h"

namespace ffibroker::cli {
namespace {

constexpr size_t kMaxTokenFileBytes = 64 * 1024;

std::string Text(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::TextFormat::PrintToString(message, &out);
  return out;
}

int Grant(Session& session, const std::vector<std::string>& args) {
  v1::GrantTokenRequest scope;
  for (size_t i = 2; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (absl::ConsumePrefix(&arg, "ttl=")) {
      absl::Duration ttl;
      if (!absl::ParseDuration(arg, &ttl) || ttl < absl::Seconds(1)) {
        return Usage(absl::StrCat("ttl: '", arg, "' is not a duration of at least 1s"));
      }
      scope.set_ttl_seconds(static_cast<uint32_t>(absl::ToInt64Seconds(ttl)));
    } else if (absl::ConsumePrefix(&arg, "quota=")) {
      uint64_t quota;
      if (!absl::SimpleAtoi(arg, &quota)) return Usage("quota: not a number");
      scope.set_call_quota(quota);
    } else if (absl::ConsumePrefix(&arg, "audience=")) {
      if (arg.empty()) return Usage("audience: needs a principal name");
      scope.add_audience(std::string(arg));
    } else if (arg == "no-grant") {
      scope.add_operations(v1::OPEN_LIBRARY);
    } else {
      std::vector<std::string> parts = absl::StrSplit(arg, absl::MaxSplits(':', 1));
      v1::GrantTokenLibrary* lib = scope.add_libraries();
      lib->set_library(parts[0]);
      if (parts.size() == 2) {
        for (absl::string_view sym : absl::StrSplit(parts[1], ',', absl::SkipEmpty())) {
          lib->add_symbols(std::string(sym));
        }
      }
    }
  }
  absl::StatusOr<v1::GrantTokenResponse> granted = session.GrantToken(scope);
  if (!granted.ok()) return Fail(kExitFailed, granted.status());
  std::printf("%s\n", granted->token().c_str());
  std::fprintf(stderr, "token id %s, expires %s\n", granted->claims().token_id().c_str(),
               absl::FormatTime(absl::RFC3339_sec,
                                absl::FromUnixSeconds(granted->claims().expires_unix_seconds()),
                                absl::UTCTimeZone())
                   .c_str());
  return 0;
}

}  // namespace

std::string TokenOnCommandLineMessage() {
  return absl::StrCat(
      "a token on the command line is refused: every local user can read a command "
      "line (/proc/PID/cmdline, ps), so the token would leak; pass it with ",
      kTokenSources);
}

absl::StatusOr<std::string> LoadToken(const std::string& token_file) {
  std::string text;
  std::string source;
  if (!token_file.empty()) {
    source = token_file == "-" ? "standard input" : "--token-file " + token_file;
    int fd = token_file == "-" ? STDIN_FILENO
                               : ::open(token_file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot read ", source, ": ", std::strerror(errno)));
    }
    struct stat st;
    if (fd != STDIN_FILENO && ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
        (st.st_mode & 077) != 0) {
      std::fprintf(stderr,
                   "ffibroker: warning: token file %s may be read by other users (mode "
                   "0%o); chmod 600 it\n",
                   token_file.c_str(), static_cast<unsigned>(st.st_mode & 0777));
    }
    char buf[4096];
    while (text.size() <= kMaxTokenFileBytes) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      text.append(buf, static_cast<size_t>(n));
    }
    if (fd != STDIN_FILENO) ::close(fd);
  } else if (const char* env = std::getenv("FFIBROKER_TOKEN"); env != nullptr) {
    source = "FFIBROKER_TOKEN";
    text = env;
  } else {
    return std::string();
  }
  if (text.size() > kMaxTokenFileBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, " holds more than ", kMaxTokenFileBytes, " bytes: not a token"));
  }
  std::string token(absl::StripAsciiWhitespace(text));
  if (token.empty()) return absl::InvalidArgumentError(absl::StrCat(source, " is empty"));
  return token;
}

int RunToken(const std::string& address, const ConnectOptions& options,
             const std::string& token, const std::vector<std::string>& args) {
  if (args.size() < 2) return Usage("token needs grant, inspect or revoke");
  const std::string& verb = args[1];
  if (verb != "grant" && verb != "inspect" && verb != "revoke") {
    return Usage(absl::StrCat("unknown token command '", verb, "'"));
  }
  if (verb == "inspect" && args.size() != 2) {
    return Usage(absl::StrCat("token inspect takes no argument: ",
                              TokenOnCommandLineMessage()));
  }
  if (verb == "inspect" && token.empty()) {
    return Usage(absl::StrCat("token inspect needs a token: ", kTokenSources));
  }
  if (verb == "revoke" && args.size() != 3) {
    return Usage("token revoke takes exactly one argument, the token id");
  }
  if (verb == "revoke" && !IsTokenId(args[2])) {
    return Usage(absl::StrCat("token revoke: ", kNotATokenIdMessage,
                              "; if it was a token, every local user could read it on this "
                              "command line (ps): revoke it by its id (token inspect shows it)"));
  }
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(address, options);
  if (!client.ok()) return Fail(kExitUnreachable, client.status());
  absl::StatusOr<std::unique_ptr<Session>> session = (*client)->CreateSession();
  if (!session.ok()) return Fail(kExitFailed, session.status());
  if (verb == "grant") return Grant(**session, args);
  if (verb == "inspect") {
    absl::StatusOr<v1::InspectTokenResponse> r = (*session)->InspectToken(token);
    if (!r.ok()) return Fail(kExitFailed, r.status());
    std::fputs(Text(*r).c_str(), stdout);
    return 0;
  }
  absl::Status revoked = (*session)->RevokeToken(args[2]);
  if (!revoked.ok()) return Fail(kExitFailed, revoked);
  std::printf("revoked %s\n", args[2].c_str());
  return 0;
}

int RunWhoami(const std::string& address, const ConnectOptions& options) {
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(address, options);
  if (!client.ok()) return Fail(kExitUnreachable, client.status());
  absl::StatusOr<v1::WhoamiResponse> who = (*client)->Whoami();
  if (!who.ok()) return Fail(kExitFailed, who.status());
  std::printf("%s (%s)\n", who->principal().c_str(), who->authenticated_by().c_str());
  return 0;
}

int RunMetrics(const std::string& address, const ConnectOptions& options) {
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(address, options);
  if (!client.ok()) return Fail(kExitUnreachable, client.status());
  absl::StatusOr<std::string> text = (*client)->GetMetrics();
  if (!text.ok()) return Fail(kExitFailed, text.status());
  std::fputs(text->c_str(), stdout);
  return 0;
}

// The names of the confinement profiles in `directory` (NAME.textproto;
// the daemon refuses a file whose name field differs from NAME).
absl::StatusOr<std::set<std::string>> ProfileNames(const std::string& directory) {
  std::error_code ec;
  std::set<std::string> names;
  for (std::filesystem::directory_iterator it(directory, ec), end; !ec && it != end;
       it.increment(ec)) {
    if (it->path().extension() == ".textproto") names.insert(it->path().stem().string());
  }
  if (ec) {
    return absl::NotFoundError(absl::StrCat(
        "cannot read the profile directory ", directory, ": ", ec.message(),
        " (ffibrokerd loads its confinement profiles from there; name another with "
        "--profiles=DIR, as given to ffibrokerd)"));
  }
  return names;
}

int RunPolicy(const std::vector<std::string>& args) {
  constexpr char kUsage[] = "usage: policy check FILE [--profiles=DIR]";
  if (args.size() < 3 || args.size() > 4 || args[1] != "check") return Usage(kUsage);
  const std::string& file = args[2];
  // Where ffibrokerd looks by default: profiles/ beside the policy.
  const size_t slash = file.rfind('/');
  std::string profiles = (slash == std::string::npos ? std::string(".") : file.substr(0, slash)) +
                         "/profiles";
  if (args.size() == 4) {
    if (!absl::StartsWith(args[3], "--profiles=")) return Usage(kUsage);
    profiles = args[3].substr(sizeof "--profiles=" - 1);
  }
  absl::StatusOr<Policy> policy = Policy::LoadFile(file);
  absl::Status checked = policy.status();
  if (checked.ok()) {
    absl::StatusOr<std::set<std::string>> known = ProfileNames(profiles);
    checked = known.ok() ? policy->CheckProfiles(*known) : known.status();
  }
  if (!checked.ok()) {
    std::fprintf(stderr, "%s\n", std::string(checked.message()).c_str());
    return kExitFailed;
  }
  for (const std::string& warning : policy->warnings()) {
    std::fprintf(stderr, "warning: %s\n", warning.c_str());
  }
  std::printf("%s: OK (%zu principals)\n", args[2].c_str(), policy->principal_count());
  return 0;
}

}  // namespace ffibroker::cli
