// Command-line flags for every ffibroker program, on CLI11 (Debian's
// libcli11-dev): this header only adds what CLI11 does not know, our
// duration type, and the one way our programs end on --help or a bad flag.
//
// Flags are "--name=value" or "--name value"; CLI11 rejects unknown flags,
// values of the wrong type and values outside a declared set or range, and
// writes --help from the declarations (with each default).
//
//   CLI::App app{"ffibrokerd: serves ffibroker.v1.Broker", "ffibrokerd"};
//   AddDurationFlag(app, "--shutdown-grace", &grace, "how long calls may finish");
//   if (std::optional<int> exit_code = ParseFlags(app, argc, argv)) return *exit_code;
//
// Not thread-safe; use from main(). Needs exceptions (CLI11 reports with them;
// ParseFlags catches every one).
#ifndef FFIBROKER_COMMON_CLI_FLAGS_H_
#define FFIBROKER_COMMON_CLI_FLAGS_H_

#include <cstdio>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/time/time.h"

namespace ffibroker {

// Exit status of every program for a usage error (bad or unknown flag).
inline constexpr int kExitUsageError = 2;

// Registers `name` ("--timeout") taking a non-negative duration like "500ms",
// "30s", "5m" (absl::ParseDuration) into `*target` (borrowed; must outlive
// parsing); with kPositive, zero is refused too (a deadline of 0 would
// fail everything it bounds). The target's current value is shown as the
// default in --help.
enum class DurationRange { kNonNegative, kPositive };
inline CLI::Option* AddDurationFlag(CLI::App& app, const std::string& name,
                                    absl::Duration* target, const std::string& help,
                                    DurationRange range = DurationRange::kNonNegative) {
  CLI::Option* option = app.add_option_function<std::string>(
      name,
      [name, target, range](const std::string& text) {
        absl::Duration parsed;
        const bool positive = range == DurationRange::kPositive;
        if (!absl::ParseDuration(text, &parsed) || parsed < absl::ZeroDuration() ||
            (positive && parsed == absl::ZeroDuration())) {
          throw CLI::ValidationError(
              name, "'" + text + "' is not a " + (positive ? "positive" : "non-negative") +
                        " duration such as 500ms, 30s or 5m");
        }
        *target = parsed;
      },
      help);
  option->type_name("DURATION")->default_str(absl::FormatDuration(*target));
  return option;
}

// Parses argv. Returns nothing when the program should go on; otherwise the
// exit status to end with, having printed --help on stdout (0) or
// "PROGRAM: message (see --help)" on stderr (kExitUsageError).
inline std::optional<int> ParseFlags(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s: %s (see --help)\n", app.get_name().c_str(), e.what());
    return kExitUsageError;
  }
  return std::nullopt;
}

}  // namespace ffibroker

#endif  // FFIBROKER_COMMON_CLI_FLAGS_H_
