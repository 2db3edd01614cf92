// ffibroker: command-line client of ffibrokerd.
//
//   ffibroker call libm.so.6 'f64 cos(f64)' 0.5
//
// Exit status: 0 success; 1 the daemon answered with an error (printed on
// stderr as CODE: message); 2 usage error; 3 cannot reach the daemon.
#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <optional>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "client/cli/cli_output.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/cli_flags.h"
#include "common/literal.h"
#include "common/signature.h"
#include "client/cli/bindgen.h"
#include "client/cli/status_command.h"
#include "client/cli/token_commands.h"
#include "client/cli/batch_command.h"
#include "client/cli/typed_call.h"
#include "ffibroker/client.h"

namespace ffibroker {
namespace {

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
    "      With a token (--token-file=PATH, --token-file=- for stdin, or\n"
    "      FFIBROKER_TOKEN in the environment) the library is opened with that\n"
    "      capability token. --token=TOKEN is refused: command lines are public.\n"
    "      --class='Point { f64 x; mut f64 y; } ~point_free' (repeatable, before\n"
    "      the command) registers a class; then 'Point f(Point* p, cstr s)' etc.\n"
    "      Class values: {x=1, y=2}; a {..} for Point* makes a temporary instance\n"
    "      printed after the call; null; cstr: raw text; buffers: hex:0a0b; out: -.\n"
    "      See docs/classes.md.\n"
    "  batch LIBRARY FILE 'DECLARATION'...\n"
    "      Run the calls listed in FILE ('-': standard input), one per line as\n"
    "      SYMBOL ARG..., in one batch (one exchange with the worker); print\n"
    "      'N: RESULT' or 'N: error CODE: MESSAGE' per call. See docs/streams.md.\n"
    "  bindgen MANIFEST OUT_DIR\n"
    "      Write typed bindings, OUT_DIR/MODULE.h (C++) and OUT_DIR/MODULE.py, of\n"
    "      the library a manifest describes; see docs/bindings.md. No daemon needed.\n"
    "{TOKEN_VERBS}"
    "{STATUS_VERB}"
    "  metrics                 print the daemon's metrics (Prometheus text format)\n"
    "\n"
    "authentication: the unix socket identifies your uid; FFIBROKER_API_KEY (env)\n"
    "is sent as an API key; --tls-ca/--tls-cert/--tls-key select mTLS.\n"
    "\n"
    "exit status: 0 ok, 1 the daemon returned an error, 2 usage error,\n"
    "3 cannot reach the daemon";


}  // namespace
}  // namespace ffibroker

int main(int argc, char** argv) {
  using namespace ffibroker;
  std::string address = "unix:/run/ffibroker/ffibrokerd.sock";
  absl::Duration timeout = absl::Seconds(60);
  std::string token_file, tls_ca, tls_cert, tls_key, token_on_command_line;
  std::vector<std::string> classes;
  CLI::App app("Calls functions in native libraries through ffibrokerd.", "ffibroker");
  app.footer(absl::StrReplaceAll(kSynopsis, {{"{TOKEN_VERBS}", cli::kTokenSynopsis},
                                             {"{STATUS_VERB}", cli::kStatusSynopsis}}));
  // The flags come before the command; everything from the command on is
  // the command's own (so "-1" or "--x" there is an argument, not a flag).
  app.prefix_command();
  app.add_option("--address", address, "daemon address, unix:/ABS/PATH or tcp:HOST:PORT")
      ->envname("FFIBROKER_ADDRESS")
      ->capture_default_str();
  AddDurationFlag(app, "--timeout", &timeout, "deadline for the call", DurationRange::kPositive);
  app.add_option("--token-file", token_file,
                 "file holding a capability token ('-': standard input) for call and token "
                 "inspect (else env FFIBROKER_TOKEN)");
  app.add_option("--class", classes,
                 "a class for call, e.g. 'Point { f64 x; mut f64 y; } ~point_free' "
                 "(repeatable; see docs/classes.md)")
      ->allow_extra_args(false);  // one class per --class
  app.add_option("--tls-ca", tls_ca, "PEM CA file to verify the daemon (mTLS)");
  app.add_option("--tls-cert", tls_cert, "PEM client certificate chain file (mTLS)");
  app.add_option("--tls-key", tls_key, "PEM client private key file (mTLS)");
  // Declared only to refuse it with the reason (an empty group hides it).
  app.add_option("--token", token_on_command_line)->group("");
  if (std::optional<int> exit_code = ParseFlags(app, argc, argv)) return *exit_code;
  if (app.count("--token") > 0) return Usage(cli::TokenOnCommandLineMessage());
  const std::vector<std::string> args = app.remaining();
  if (args.empty()) return Usage("no command given");
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
  const std::string& verb = args[0];
  if (absl::StartsWith(verb, "-")) return Usage(absl::StrCat("unknown flag '", verb, "'"));
  // No command's first argument starts with "--": this is a flag written
  // after the command (`call --class=... LIB`), which CLI11 leaves here.
  // (`policy check FILE --profiles=DIR` has a flag of its own, later.)
  if (verb != "policy" && args.size() > 1 && absl::StartsWith(args[1], "--")) {
    const std::string flag = args[1].substr(0, args[1].find('='));
    return Usage(absl::StrCat("flags go before the command: ffibroker ", flag, "=... ", verb,
                              " ..., not ffibroker ", verb, " ", flag, "=..."));
  }
  absl::StatusOr<std::string> token = cli::LoadToken(token_file);
  if (!token.ok()) return Usage(std::string(token.status().message()));
  if (verb == "call") return RunTypedCall(address, options, *token, timeout, classes, args);
  if (verb == "batch") {
    if (token_file == "-" && args.size() > 2 && args[2] == "-") {
      return Usage("--token-file=- and a batch FILE of - cannot both read standard input");
    }
    return RunBatch(address, options, *token, timeout, args);
  }
  if (verb == "token") return cli::RunToken(address, options, *token, args);
  if (verb == "whoami") return cli::RunWhoami(address, options);
  if (verb == "status") return cli::RunStatus(address, options);
  if (verb == "metrics") return cli::RunMetrics(address, options);
  if (verb == "policy") return cli::RunPolicy(args);
  if (verb == "bindgen") return cli::RunBindgen(args);
  return Usage(absl::StrCat("unknown command '", args[0], "'"));
}
