#include "daemon/policy.h"

#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace ffibroker {
namespace {

class CollectErrors : public google::protobuf::io::ErrorCollector {
 public:
  explicit CollectErrors(absl::string_view source) : source_(source) {}
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    errors_.push_back(absl::StrCat(source_, ":", line + 1, ":", column + 1, ": ", message));
  }
  void AddWarning(int line, google::protobuf::io::ColumnNumber column,
                  const std::string& message) override {
    AddError(line, column, message);
  }
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::string source_;
  std::vector<std::string> errors_;
};

// realpath() as a StatusOr: NOT_FOUND if the path does not exist.
absl::StatusOr<std::string> Canonical(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) == nullptr) {
    return absl::NotFoundError(absl::StrCat("library '", path, "' does not exist"));
  }
  return std::string(buf);
}

// Applies `value` when the field is unset (0).
void Default(v1::Limits* limits, uint32_t (v1::Limits::*get)() const,
             void (v1::Limits::*set)(uint32_t), uint32_t value) {
  if ((limits->*get)() == 0) (limits->*set)(value);
}

}  // namespace

absl::StatusOr<Policy> Policy::LoadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read policy file ", path));
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str(), path);
}

absl::StatusOr<Policy> Policy::Parse(absl::string_view text,
                                     absl::string_view source) {
  v1::Policy proto;
  CollectErrors errors(source);
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(std::string(text), &proto)) {
    return absl::InvalidArgumentError(absl::StrJoin(errors.errors(), "\n"));
  }
  Policy policy;
  policy.listen_ = proto.listen().empty() ? kDefaultListenAddress : proto.listen();
  for (int i = 0; i < proto.libraries_size(); ++i) {
    const v1::LibraryRule& rule = proto.libraries(i);
    std::string where = absl::StrCat(source, ": libraries[", i, "]");
    if (!absl::StartsWith(rule.path(), "/")) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": path '", rule.path(), "' must be absolute"));
    }
    if (absl::StrContains(rule.name(), "/")) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": name '", rule.name(), "' must not contain '/'"));
    }
    if (!rule.name().empty() && policy.path_by_name_.count(rule.name())) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": name '", rule.name(), "' is listed twice"));
    }
    absl::StatusOr<std::string> canonical = Canonical(rule.path());
    if (!canonical.ok()) {
      policy.warnings_.push_back(
          absl::StrCat(where, ": ", canonical.status().message(), "; rule ignored"));
      continue;
    }
    policy.allowed_paths_.insert(*canonical);
    if (!rule.profile().empty()) policy.profile_by_path_[*canonical] = rule.profile();
    if (!rule.name().empty()) policy.path_by_name_[rule.name()] = *canonical;
  }
  policy.default_profile_ = proto.default_profile().empty() ? "strict" : proto.default_profile();
  for (int layer : proto.require_layers()) {
    if (layer == v1::LAYER_UNSPECIFIED || !v1::Layer_IsValid(layer)) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": require_layers: ", layer, " is not a layer"));
    }
    policy.required_layers_.push_back(static_cast<v1::Layer>(layer));
  }
  policy.limits_ = proto.limits();
  Default(&policy.limits_, &v1::Limits::max_sessions, &v1::Limits::set_max_sessions, 256);
  Default(&policy.limits_, &v1::Limits::max_libraries_per_session, &v1::Limits::set_max_libraries_per_session, 16);
  Default(&policy.limits_, &v1::Limits::max_workers, &v1::Limits::set_max_workers, 64);
  Default(&policy.limits_, &v1::Limits::max_call_millis, &v1::Limits::set_max_call_millis, 30000);
  Default(&policy.limits_, &v1::Limits::default_session_idle_seconds, &v1::Limits::set_default_session_idle_seconds, 300);
  Default(&policy.limits_, &v1::Limits::max_session_idle_seconds, &v1::Limits::set_max_session_idle_seconds, 3600);
  if (policy.limits_.default_session_idle_seconds() >
      policy.limits_.max_session_idle_seconds()) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": limits.default_session_idle_seconds exceeds limits.max_session_idle_seconds"));
  }
  return policy;
}

absl::StatusOr<std::string> Policy::ResolveLibrary(
    absl::string_view requested) const {
  if (requested.empty()) {
    return absl::InvalidArgumentError("library is empty: give a name from the policy or an absolute path");
  }
  if (!absl::StartsWith(requested, "/")) {
    if (absl::StrContains(requested, "/")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "library '", requested, "' is a relative path; give an absolute path"));
    }
    auto it = path_by_name_.find(std::string(requested));
    if (it == path_by_name_.end()) {
      return absl::NotFoundError(absl::StrCat(
          "no library named '", requested, "' in the policy"));
    }
    return it->second;
  }
  absl::StatusOr<std::string> canonical = Canonical(std::string(requested));
  if (!canonical.ok()) return canonical.status();
  if (!allowed_paths_.count(*canonical)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "library '", requested, "' is not allowed by the policy"));
  }
  return *canonical;
}

}  // namespace ffibroker

namespace ffibroker {

std::string Policy::ProfileFor(const std::string& canonical_path) const {
  auto it = profile_by_path_.find(canonical_path);
  return it != profile_by_path_.end() ? it->second : default_profile_;
}

std::vector<std::string> Policy::ReferencedProfiles() const {
  std::vector<std::string> names = {default_profile_};
  for (const auto& [path, profile] : profile_by_path_) names.push_back(profile);
  return names;
}

}  // namespace ffibroker
