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

#include "absl/time/time.h"
#include "ffibroker/client.h"

namespace ffibroker::cli {

inline constexpr char kTokenSynopsis[] =
    "  token grant [LIB[:SYM,SYM...]]... [ttl=DURATION] [quota=N] [no-grant]\n"
    "      Grant a capability token from a new session of the caller's principal\n"
    "      (the whole permission, or only the LIBs/SYMs given; no-grant: the\n"
    "      token cannot be exchanged). Prints the token on stdout, its id and\n"
    "      expiry on stderr.\n"
    "  token inspect TOKEN     verify TOKEN and print its claims\n"
    "  token revoke TOKEN_ID   revoke a token the caller's principal granted\n"
    "  whoami                  print the principal the daemon sees\n"
    "  policy check FILE       validate a policy file; every mistake is reported\n"
    "      as FILE:LINE:COLUMN: message (exit 1). Needs no daemon.\n";

// args[0] == "token".
int RunToken(const std::string& address, const ConnectOptions& options,
             const std::vector<std::string>& args);
// args[0] == "whoami".
int RunWhoami(const std::string& address, const ConnectOptions& options);
// args[0] == "policy".
int RunPolicy(const std::vector<std::string>& args);

}  // namespace ffibroker::cli

#endif  // FFIBROKER_CLIENT_CLI_TOKEN_COMMANDS_H_
