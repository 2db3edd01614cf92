// The CLI's `token` and `policy` verbs (see kTokenSynopsis).
//
// Each returns the process exit status (0 ok, 1 the daemon or the check
// failed, 2 usage, 3 unreachable), printing results on stdout and errors on
// stderr. Token values are printed only where the user asked for them
// (`token grant` on stdout) and never in error messages.
#ifndef FFIBROKER_CLIENT_CLI_TOKEN_COMMANDS_H_
#define FFIBROKER_CLIENT_CLI_TOKEN_COMMANDS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ffibroker/client.h"

namespace ffibroker::cli {

inline constexpr char kTokenSynopsis[] =
    "  token grant [LIB[:SYM,SYM...]]... [ttl=DURATION] [quota=N] [no-grant]\n"
    "              [audience=PRINCIPAL]...\n"
    "      Grant a capability token from a new session of the caller's principal\n"
    "      (the whole permission, or only the LIBs/SYMs given; no-grant: the\n"
    "      token cannot be exchanged; audience: the principals that may use it,\n"
    "      default the caller's own). Prints the token on stdout (redirect it to\n"
    "      a file only you can read), its id and expiry on stderr.\n"
    "  token inspect           verify the token (see below) and print its claims\n"
    "  token revoke TOKEN_ID   revoke a token the caller's identity granted\n"
    "  whoami                  print the principal the daemon sees\n"
    "  policy check FILE       validate a policy file; every mistake is reported\n"
    "      as FILE:LINE:COLUMN: message (exit 1). Needs no daemon.\n";

// How the CLI takes a token: never on the command line, which every local
// user can read in /proc/PID/cmdline.
inline constexpr char kTokenSources[] =
    "--token-file=PATH, --token-file=- (standard input) or the FFIBROKER_TOKEN "
    "environment variable";

// The usage message for a token put on the command line (--token=...).
std::string TokenOnCommandLineMessage();

// The token from `token_file` (a path, or "-" for standard input) if not
// empty, else from the FFIBROKER_TOKEN environment variable, else "".
// Surrounding whitespace is dropped. INVALID_ARGUMENT (for a usage error)
// if the file cannot be read, is empty or longer than 64 KiB; a file that
// other users may read gets a warning on stderr.
absl::StatusOr<std::string> LoadToken(const std::string& token_file);

// args[0] == "token"; `token` from LoadToken (used by `token inspect`).
int RunToken(const std::string& address, const ConnectOptions& options,
             const std::string& token, const std::vector<std::string>& args);
// args[0] == "whoami".
int RunWhoami(const std::string& address, const ConnectOptions& options);
// `metrics`: prints the daemon's metrics (GetMetrics) on stdout.
int RunMetrics(const std::string& address, const ConnectOptions& options);
// args[0] == "policy".
int RunPolicy(const std::vector<std::string>& args);

}  // namespace ffibroker::cli

#endif  // FFIBROKER_CLIENT_CLI_TOKEN_COMMANDS_H_
