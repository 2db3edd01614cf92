// The CLI's `status` verb: the daemon's confinement as a worker started now
// gets it (profiles with their syscall counts, layers in force and refused,
// rlimits, uid), from the GetStatus RPC.
#ifndef FFIBROKER_CLIENT_CLI_STATUS_COMMAND_H_
#define FFIBROKER_CLIENT_CLI_STATUS_COMMAND_H_

#include <string>

#include "ffibroker/client.h"

namespace ffibroker::cli {

inline constexpr char kStatusSynopsis[] =
    "  status                  print the daemon's confinement: profiles and their\n"
    "      syscall counts, and which layers a worker started now has in force\n";

// Returns the exit status (0, 1 the daemon failed, 3 unreachable).
int RunStatus(const std::string& address, const ConnectOptions& options);

// The report `status` prints, one item per line (exposed for tests).
std::string FormatStatus(const v1::GetStatusResponse& status);

}  // namespace ffibroker::cli

#endif  // FFIBROKER_CLIENT_CLI_STATUS_COMMAND_H_
