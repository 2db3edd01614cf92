// FlagSet: a small command-line parser shared by ffibrokerd, the worker and
// the ffibroker CLI.
//
// Flags are "--name=value" or "--name value"; booleans also "--name".
// Anything not starting with "--" is positional (so "-1" is a positional
// argument, not a flag); "--" ends flag parsing. "--help" and "-h" set
// help_requested(). Not thread-safe; use from main().
//
//   FlagSet flags("ffibrokerd [flags]");
//   std::string listen = "unix:/run/ffibroker/ffibrokerd.sock";
//   flags.String("listen", &listen, "where to listen");
//   ASSIGN_OR_RETURN(std::vector<std::string> rest, flags.Parse(argc, argv));
#ifndef FFIBROKER_COMMON_FLAGS_H_
#define FFIBROKER_COMMON_FLAGS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace ffibroker {

class FlagSet {
 public:
  // `synopsis` is the first line of Usage(), e.g. "ffibrokerd [flags]".
  explicit FlagSet(std::string synopsis) : synopsis_(std::move(synopsis)) {}

  // Registers a flag writing into `*target` (borrowed; must outlive Parse).
  // The target's current value is shown as the default in Usage().
  void String(std::string name, std::string* target, std::string help);
  void Int(std::string name, int64_t* target, std::string help);
  void Bool(std::string name, bool* target, std::string help);
  // Durations like "500ms", "30s", "5m".
  void Duration(std::string name, absl::Duration* target, std::string help);

  // Parses argv[start..argc). Returns the positional arguments in order, or
  // INVALID_ARGUMENT naming the unknown flag or the bad value.
  absl::StatusOr<std::vector<std::string>> Parse(int argc, char** argv,
                                                 int start = 1);
  bool help_requested() const { return help_requested_; }
  // The synopsis followed by one line per flag with its help and default.
  std::string Usage() const;

 private:
  struct Flag {
    std::string name;
    std::string help;
    std::string default_text;
    bool is_bool;
    std::function<bool(absl::string_view)> set;  // false on a bad value
  };
  void Add(std::string name, std::string help, std::string default_text,
           bool is_bool, std::function<bool(absl::string_view)> set);

  std::string synopsis_;
  std::vector<Flag> flags_;
  bool help_requested_ = false;
};

}  // namespace ffibroker

#endif  // FFIBROKER_COMMON_FLAGS_H_
