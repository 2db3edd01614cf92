#include "common/flags.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ffibroker {

void FlagSet::Add(std::string name, std::string help, std::string default_text,
                  bool is_bool, std::function<bool(absl::string_view)> set) {
  flags_.push_back(Flag{std::move(name), std::move(help),
                        std::move(default_text), is_bool, std::move(set)});
}

void FlagSet::String(std::string name, std::string* target, std::string help) {
  Add(std::move(name), std::move(help), *target, false,
      [target](absl::string_view v) {
        *target = std::string(v);
        return true;
      });
}

void FlagSet::Int(std::string name, int64_t* target, std::string help) {
  Add(std::move(name), std::move(help), absl::StrCat(*target), false,
      [target](absl::string_view v) { return absl::SimpleAtoi(v, target); });
}

void FlagSet::Bool(std::string name, bool* target, std::string help) {
  Add(std::move(name), std::move(help), *target ? "true" : "false", true,
      [target](absl::string_view v) {
        if (v == "true" || v == "1") {
          *target = true;
        } else if (v == "false" || v == "0") {
          *target = false;
        } else {
          return false;
        }
        return true;
      });
}

void FlagSet::Duration(std::string name, absl::Duration* target,
                       std::string help) {
  Add(std::move(name), std::move(help), absl::FormatDuration(*target), false,
      [target](absl::string_view v) {
        absl::Duration d;
        if (!absl::ParseDuration(v, &d) || d < absl::ZeroDuration()) return false;
        *target = d;
        return true;
      });
}

absl::StatusOr<std::vector<std::string>> FlagSet::Parse(int argc, char** argv,
                                                        int start) {
  std::vector<std::string> positional;
  for (int i = start; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") {
      for (++i; i < argc; ++i) positional.emplace_back(argv[i]);
      break;
    }
    if (arg == "--help" || arg == "-h") {
      help_requested_ = true;
      continue;
    }
    if (arg.size() < 3 || arg.substr(0, 2) != "--") {
      positional.emplace_back(arg);
      continue;
    }
    absl::string_view body = arg.substr(2);
    absl::string_view name = body;
    absl::string_view value;
    bool has_value = false;
    if (size_t eq = body.find('='); eq != absl::string_view::npos) {
      name = body.substr(0, eq);
      value = body.substr(eq + 1);
      has_value = true;
    }
    const Flag* flag = nullptr;
    for (const Flag& f : flags_) {
      if (f.name == name) flag = &f;
    }
    if (flag == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, " (see --help)"));
    }
    if (!has_value) {
      if (flag->is_bool) {
        value = "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("flag --", name, " needs a value"));
      }
    }
    if (!flag->set(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad value '", value, "' for flag --", name));
    }
  }
  return positional;
}

std::string FlagSet::Usage() const {
  std::string out = absl::StrCat("usage: ", synopsis_, "\n\nflags:\n");
  for (const Flag& f : flags_) {
    absl::StrAppendFormat(&out, "  --%s%s\n      %s", f.name,
                          f.is_bool ? "" : "=VALUE", f.help);
    if (!f.default_text.empty()) absl::StrAppend(&out, " (default: ", f.default_text, ")");
    absl::StrAppend(&out, "\n");
  }
  absl::StrAppend(&out, "  --help\n      print this help and exit\n");
  return out;
}

}  // namespace ffibroker
