// ffibroker: command-line client of ffibrokerd.
//
//   ffibroker call libm.so.6 'f64 cos(f64)' 0.5
//
// Exit status: 0 success; 1 the daemon answered with an error (printed on
// stderr as CODE: message); 2 usage error; 3 cannot reach the daemon.
#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/flags.h"
#include "common/literal.h"
#include "common/signature.h"
#include "client/cli/token_commands.h"
#include "ffibroker/client.h"

namespace ffibroker {
namespace {

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;

constexpr char kSynopsis[] =
    "ffibroker [flags] COMMAND ...\n"
    "\n"
    "commands:\n"
    "  call LIBRARY 'DECLARATION' [ARG...]\n"
    "      Open LIBRARY (a name from the daemon's policy, or an absolute path),\n"
    "      call the function DECLARATION describes with ARGs, print the result.\n"
    "      DECLARATION is C-like: 'f64 cos(f64)', 'i32 add(i32 a, i32 b)', 'void f()'.\n"
    "      Types: void bool i8 u8 i16 u16 i32 u32 i64 u64 isize usize f32 f64.\n"
    "      Literals: 42, -7, 0xff, 0.5, -0, nan, inf, 0x1p-1074, true, false.\n"
    "      With --token=TOKEN the library is opened with that capability token.\n"
    "{TOKEN_VERBS}"
    "\n"
    "authentication: the unix socket identifies your uid; FFIBROKER_API_KEY (env)\n"
    "is sent as an API key; --tls-ca/--tls-cert/--tls-key select mTLS.\n"
    "\n"
    "exit status: 0 ok, 1 the daemon returned an error, 2 usage error,\n"
    "3 cannot reach the daemon";

int Fail(int code, const absl::Status& status) {
  std::fprintf(stderr, "ffibroker: %s\n", status.ToString().c_str());
  return code;
}

int Usage(const std::string& message) {
  std::fprintf(stderr, "ffibroker: %s (see ffibroker --help)\n", message.c_str());
  return kExitUsage;
}

int RunCall(const std::string& address, const ConnectOptions& options,
            const std::string& token, absl::Duration timeout,
            const std::vector<std::string>& args) {
  if (args.size() < 3) return Usage("call needs LIBRARY and 'DECLARATION'");
  absl::StatusOr<Declaration> decl = ParseDeclaration(args[2]);
  if (!decl.ok()) return Fail(kExitUsage, decl.status());
  size_t given = args.size() - 3;
  if (given != static_cast<size_t>(decl->signature.params_size())) {
    return Usage(absl::StrCat(decl->name, " takes ", decl->signature.params_size(),
                              " argument(s), ", given, " given"));
  }
  std::vector<v1::Value> values;
  for (size_t i = 0; i < given; ++i) {
    const v1::Parameter& param = decl->signature.params(static_cast<int>(i));
    absl::StatusOr<v1::Value> value = ParseLiteral(param.type(), args[3 + i]);
    if (!value.ok()) {
      return Usage(absl::StrCat("argument ", i + 1, ": ", value.status().message()));
    }
    values.push_back(*std::move(value));
  }
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(address, options, std::min(timeout, absl::Seconds(5)));
  if (!client.ok()) return Fail(kExitUnreachable, client.status());
  absl::StatusOr<std::unique_ptr<Session>> session = (*client)->CreateSession();
  if (!session.ok()) return Fail(kExitFailed, session.status());
  absl::StatusOr<std::unique_ptr<Library>> lib =
      (*session)->OpenLibrary(args[1], {args[2]}, token);
  if (!lib.ok()) return Fail(kExitFailed, lib.status());
  absl::StatusOr<v1::CallResponse> response =
      (*lib)->CallValues(decl->name, values, timeout);
  if (!response.ok()) return Fail(kExitFailed, response.status());
  if (response->has_result()) {
    std::printf("%s\n", FormatValue(response->result()).c_str());
  }
  return 0;
}

}  // namespace
}  // namespace ffibroker

int main(int argc, char** argv) {
  using namespace ffibroker;
  const char* env_address = std::getenv("FFIBROKER_ADDRESS");
  std::string address = env_address != nullptr && *env_address
                            ? env_address
                            : "unix:/run/ffibroker/ffibrokerd.sock";
  absl::Duration timeout = absl::Seconds(60);
  std::string token, tls_ca, tls_cert, tls_key;
  FlagSet flags(absl::StrReplaceAll(kSynopsis, {{"{TOKEN_VERBS}", cli::kTokenSynopsis}}));
  flags.String("address", &address,
               "daemon address, unix:/ABS/PATH or tcp:HOST:PORT (env FFIBROKER_ADDRESS)");
  flags.Duration("timeout", &timeout, "deadline for the call");
  flags.String("token", &token, "call: open the library with this capability token");
  flags.String("tls-ca", &tls_ca, "PEM CA file to verify the daemon (mTLS)");
  flags.String("tls-cert", &tls_cert, "PEM client certificate chain file (mTLS)");
  flags.String("tls-key", &tls_key, "PEM client private key file (mTLS)");
  absl::StatusOr<std::vector<std::string>> args = flags.Parse(argc, argv);
  if (flags.help_requested()) {
    std::fputs(flags.Usage().c_str(), stdout);
    return 0;
  }
  if (!args.ok()) return Usage(std::string(args.status().message()));
  if (args->empty()) return Usage("no command given");
  ConnectOptions options;
  const char* api_key = std::getenv("FFIBROKER_API_KEY");
  if (api_key != nullptr) options.api_key = api_key;
  for (auto [path, out] : {std::pair{&tls_ca, &options.tls_root_certs},
                           std::pair{&tls_cert, &options.tls_cert_chain},
                           std::pair{&tls_key, &options.tls_private_key}}) {
    if (path->empty()) continue;
    std::ifstream in(*path);
    if (!in) return Usage(absl::StrCat("cannot read ", *path));
    std::stringstream text;
    text << in.rdbuf();
    *out = text.str();
  }
  const std::string& verb = (*args)[0];
  if (verb == "call") return RunCall(address, options, token, timeout, *args);
  if (verb == "token") return cli::RunToken(address, options, *args);
  if (verb == "whoami") return cli::RunWhoami(address, options);
  if (verb == "policy") return cli::RunPolicy(*args);
  return Usage(absl::StrCat("unknown command '", (*args)[0], "'"));
}
