#include "daemon/policy.h"

#include "common/type_table.h"

#include <grp.h>
#include <openssl/sha.h>
#include <pwd.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/signature.h"
#include "common/utf8.h"
#include "daemon/permission.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace ffibroker {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::TextFormat;

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

// A position in the parsed text: turns "field F (index I) of this message"
// into "FILE:LINE:COLUMN: path.F[I]" for schema errors.
class Where {
 public:
  Where(std::string source, const TextFormat::ParseInfoTree* tree,
        const Descriptor* type, std::string path, std::string fallback)
      : source_(std::move(source)), tree_(tree), type_(type),
        path_(std::move(path)), fallback_(std::move(fallback)) {}

  // "FILE:L:C: path.name[index]" (the message's own position if the field
  // is absent from the text).
  std::string At(const char* name, int index = -1) const {
    std::string pos = fallback_;
    const FieldDescriptor* field = type_->FindFieldByName(name);
    if (tree_ != nullptr && field != nullptr) {
      TextFormat::ParseLocation loc = tree_->GetLocation(field, index);
      if (loc.line >= 0) pos = absl::StrCat(source_, ":", loc.line + 1, ":", loc.column + 1);
    }
    return absl::StrCat(pos, ": ", path_, path_.empty() ? "" : ".", name,
                        index >= 0 ? absl::StrCat("[", index, "]") : "");
  }
  Where Nested(const char* name, int index = -1) const {
    const FieldDescriptor* field = type_->FindFieldByName(name);
    const TextFormat::ParseInfoTree* nested =
        tree_ == nullptr ? nullptr : tree_->GetTreeForNested(field, index);
    std::string here = At(name, index);
    std::string pos = here.substr(0, here.find(": "));
    return Where(source_, nested, field->message_type(),
                 absl::StrCat(path_, path_.empty() ? "" : ".", name,
                              index >= 0 ? absl::StrCat("[", index, "]") : ""),
                 pos);
  }

 private:
  std::string source_;
  const TextFormat::ParseInfoTree* tree_;
  const Descriptor* type_;
  std::string path_;
  std::string fallback_;
};

// Every string in `message` (at `where`) must be UTF-8: they reach
// clients in protobuf messages, whose parsers refuse anything else.
void CheckUtf8(const google::protobuf::Message& message, const Where& where,
               std::vector<std::string>* errors) {
  const google::protobuf::Reflection* reflection = message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    const int n = field->is_repeated() ? reflection->FieldSize(message, field) : 1;
    for (int i = 0; i < n; ++i) {
      const int index = field->is_repeated() ? i : -1;
      if (field->type() == FieldDescriptor::TYPE_STRING) {
        const std::string value = field->is_repeated()
                                      ? reflection->GetRepeatedString(message, field, i)
                                      : reflection->GetString(message, field);
        if (!IsValidUtf8(value)) {
          errors->push_back(absl::StrCat(where.At(field->name().c_str(), index),
                                         ": is not valid UTF-8"));
        }
      } else if (field->type() == FieldDescriptor::TYPE_MESSAGE) {
        CheckUtf8(field->is_repeated() ? reflection->GetRepeatedMessage(message, field, i)
                                       : reflection->GetMessage(message, field),
                  where.Nested(field->name().c_str(), index), errors);
      }
    }
  }
}

// realpath() as a StatusOr: NOT_FOUND if the path does not exist;
// INVALID_ARGUMENT if it resolves (through a link) to a path that is not
// UTF-8, which no client could be sent.
absl::StatusOr<std::string> Canonical(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) == nullptr) {
    return absl::NotFoundError(absl::StrCat("library '", path, "' does not exist"));
  }
  if (!IsValidUtf8(buf)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "library '", path, "' resolves to '", BoundedStatusText(buf, 256),
        "', which is not UTF-8"));
  }
  return std::string(buf);
}

// `path` (absolute) with "//", "." and ".." removed as strings (like Go's
// path.Clean), without touching the file system.
std::string LexicallyClean(absl::string_view path) {
  std::vector<absl::string_view> parts;
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  return absl::StrCat("/", absl::StrJoin(parts, "/"));
}

bool IsSha256Hex(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(c) && !(c >= 'a' && c <= 'f')) return false;
  }
  return true;
}

bool IsPrincipalName(absl::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

// Applies `value` when the field is unset (0).
template <typename Message>
void Default(Message* limits, uint32_t (Message::*get)() const,
             void (Message::*set)(uint32_t), uint32_t value) {
  if ((limits->*get)() == 0) (limits->*set)(value);
}

}  // namespace

std::string Sha256Hex(absl::string_view bytes) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  ::SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<char*>(digest), sizeof digest));
}

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
  CollectErrors collect(source);
  TextFormat::Parser parser;
  TextFormat::ParseInfoTree tree;
  parser.RecordErrorsTo(&collect);
  parser.WriteLocationsTo(&tree);
  if (!parser.ParseFromString(std::string(text), &proto)) {
    return absl::InvalidArgumentError(absl::StrJoin(collect.errors(), "\n"));
  }
  std::vector<std::string> errors;
  Where top(std::string(source), &tree, v1::Policy::descriptor(), "",
            absl::StrCat(source, ":1:1"));
  CheckUtf8(proto, top, &errors);
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
  Policy policy;
  policy.proto_ = proto;
  policy.listen_ = proto.listen().empty() ? kDefaultListenAddress : proto.listen();
  std::set<std::string> names;

  // The catalogue.
  for (int i = 0; i < proto.libraries_size(); ++i) {
    const v1::LibraryRule& rule = proto.libraries(i);
    Where where = top.Nested("libraries", i);
    if (!absl::StartsWith(rule.path(), "/")) {
      errors.push_back(absl::StrCat(where.At("path"), ": '", rule.path(), "' must be absolute"));
      continue;
    }
    if (absl::StrContains(rule.name(), "/")) {
      errors.push_back(absl::StrCat(where.At("name"), ": '", rule.name(), "' must not contain '/'"));
      continue;
    }
    // Checked before the file: a duplicate is a mistake even when the first
    // rule's library is missing on this machine.
    if (!rule.name().empty() && !names.insert(rule.name()).second) {
      errors.push_back(absl::StrCat(where.At("name"), ": '", rule.name(), "' is listed twice"));
      continue;
    }
    absl::StatusOr<std::string> canonical = Canonical(rule.path());
    if (!canonical.ok()) {
      policy.warnings_.push_back(
          absl::StrCat(where.At("path"), ": ", canonical.status().message(), "; rule ignored"));
      continue;
    }
    if (!rule.name().empty()) policy.path_by_name_[rule.name()] = *canonical;
    policy.path_by_spelling_[LexicallyClean(rule.path())] = *canonical;
    policy.path_by_spelling_[*canonical] = *canonical;
  }

  // The principals.
  names.clear();
  std::set<std::string> key_ids;
  for (int i = 0; i < proto.principals_size(); ++i) {
    const v1::Principal& p = proto.principals(i);
    Where where = top.Nested("principals", i);
    ResolvedPrincipal r;
    r.name = p.name();
    r.read_metrics = p.read_metrics();
    if (!IsPrincipalName(p.name())) {
      errors.push_back(absl::StrCat(where.At("name"), ": '", p.name(),
                                    "' is not a valid name (letters, digits, '-', '_', '.')"));
    } else if (!names.insert(p.name()).second) {
      errors.push_back(absl::StrCat(where.At("name"), ": '", p.name(), "' is listed twice"));
    }
    r.uids.insert(p.uids().begin(), p.uids().end());
    r.gids.insert(p.gids().begin(), p.gids().end());
    for (int j = 0; j < p.users_size(); ++j) {
      struct passwd* pw = ::getpwnam(p.users(j).c_str());
      if (pw == nullptr) {
        errors.push_back(absl::StrCat(where.At("users", j), ": no local user '", p.users(j), "'"));
      } else {
        r.uids.insert(pw->pw_uid);
      }
    }
    for (int j = 0; j < p.groups_size(); ++j) {
      struct group* gr = ::getgrnam(p.groups(j).c_str());
      if (gr == nullptr) {
        errors.push_back(absl::StrCat(where.At("groups", j), ": no local group '", p.groups(j), "'"));
      } else {
        r.gids.insert(gr->gr_gid);
      }
    }
    r.any_local_user = p.any_local_user();
    for (int j = 0; j < p.tls_identities_size(); ++j) {
      if (p.tls_identities(j).empty()) {
        errors.push_back(absl::StrCat(where.At("tls_identities", j), ": empty identity"));
      }
      r.tls_names.insert(p.tls_identities(j));
    }
    for (int j = 0; j < p.api_keys_size(); ++j) {
      const v1::ApiKey& key = p.api_keys(j);
      Where kw = where.Nested("api_keys", j);
      if (key.id().empty() || !key_ids.insert(key.id()).second) {
        errors.push_back(absl::StrCat(kw.At("id"), ": '", key.id(), "' is empty or not unique"));
      }
      if (!IsSha256Hex(key.sha256())) {
        errors.push_back(absl::StrCat(kw.At("sha256"),
                                      ": must be 64 lowercase hex digits (a SHA-256 of the key)"));
      } else if (policy.key_owners_.count(key.sha256())) {
        errors.push_back(absl::StrCat(kw.At("sha256"), ": the same key is listed twice"));
      } else {
        policy.key_owners_[key.sha256()] = KeyOwner{policy.principals_.size(), key.id()};
      }
    }
    // The permission, with canonical paths.
    Where pw = where.Nested("permission");
    r.profile_at = pw.At("confinement_profile");
    r.permission = p.permission();
    r.permission.clear_libraries();
    for (int j = 0; j < p.permission().libraries_size(); ++j) {
      const v1::PermissionLibrary& lib = p.permission().libraries(j);
      Where lw = pw.Nested("libraries", j);
      std::string path;
      auto named = policy.path_by_name_.find(lib.library());
      if (named != policy.path_by_name_.end()) {
        path = named->second;
      } else if (absl::StartsWith(lib.library(), "/")) {
        absl::StatusOr<std::string> canonical = Canonical(lib.library());
        if (!canonical.ok()) {
          policy.warnings_.push_back(absl::StrCat(lw.At("library"), ": ",
                                                  canonical.status().message(),
                                                  "; entry ignored"));
          continue;
        }
        path = *canonical;
        policy.path_by_spelling_[LexicallyClean(lib.library())] = path;
        policy.path_by_spelling_[path] = path;
      } else {
        errors.push_back(absl::StrCat(lw.At("library"), ": '", lib.library(),
                                      "' is neither a catalogue name nor an absolute path"));
        continue;
      }
      if (!lib.sha256().empty() && !IsSha256Hex(lib.sha256())) {
        errors.push_back(absl::StrCat(lw.At("sha256"), ": must be 64 lowercase hex digits"));
      }
      for (int k = 0; k < lib.allow_symbols_size(); ++k) {
        if (!IsIdentifier(lib.allow_symbols(k))) {
          errors.push_back(absl::StrCat(lw.At("allow_symbols", k), ": '", lib.allow_symbols(k),
                                        "' is not a C identifier"));
        }
      }
      for (int k = 0; k < lib.deny_symbols_size(); ++k) {
        if (!IsIdentifier(lib.deny_symbols(k))) {
          errors.push_back(absl::StrCat(lw.At("deny_symbols", k), ": '", lib.deny_symbols(k),
                                        "' is not a C identifier"));
        }
      }
      if (FindLibrary(r.permission, path) != nullptr) {
        errors.push_back(absl::StrCat(lw.At("library"), ": '", lib.library(),
                                      "' is listed twice (as ", path, ")"));
        continue;
      }
      v1::PermissionLibrary* entry = r.permission.add_libraries();
      *entry = lib;
      entry->set_library(path);
    }
    for (int j = 0; j < p.permission().operations_size(); ++j) {
      if (p.permission().operations(j) == v1::PERMISSION_OPERATION_UNSPECIFIED) {
        errors.push_back(absl::StrCat(pw.At("operations", j), ": must not be UNSPECIFIED"));
      }
    }
    ApplyPermissionDefaults(&r.permission);
    policy.principals_.push_back(std::move(r));
  }

  for (int i = 0; i < proto.require_layers_size(); ++i) {
    int layer = proto.require_layers(i);
    if (layer == v1::LAYER_UNSPECIFIED || !v1::Layer_IsValid(layer)) {
      errors.push_back(absl::StrCat(top.At("require_layers", i), ": ", layer,
                                    " is not a confinement layer"));
      continue;
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
  Default(&policy.limits_, &v1::Limits::default_token_ttl_seconds, &v1::Limits::set_default_token_ttl_seconds, 3600);
  Default(&policy.limits_, &v1::Limits::max_token_ttl_seconds, &v1::Limits::set_max_token_ttl_seconds, 86400);
  Default(&policy.limits_, &v1::Limits::max_buffer_bytes, &v1::Limits::set_max_buffer_bytes, kMaxBufferLength);
  Default(&policy.limits_, &v1::Limits::max_string_bytes, &v1::Limits::set_max_string_bytes, kDefaultMaxStringLength);
  Default(&policy.limits_, &v1::Limits::max_instances, &v1::Limits::set_max_instances, 65536);
  v1::PrincipalLimits* each = policy.limits_.mutable_per_principal();
  using PL = v1::PrincipalLimits;
  Default(each, &PL::max_sessions, &PL::set_max_sessions, 32);
  Default(each, &PL::max_workers, &PL::set_max_workers, 16);
  Default(each, &PL::max_calls_in_flight, &PL::set_max_calls_in_flight, 8);
  Default(each, &PL::max_instances, &PL::set_max_instances, 8192);
  Default(each, &PL::max_classes, &PL::set_max_classes, 1024);
  Default(each, &PL::max_unread_answers_mib, &PL::set_max_unread_answers_mib, 128);
  Default(each, &PL::max_streams, &PL::set_max_streams, 64);
  // A principal's own limits replace the fields it sets (proto3 MergeFrom
  // copies exactly the non-zero ones).
  for (size_t i = 0; i < policy.principals_.size(); ++i) {
    policy.principals_[i].limits = *each;
    policy.principals_[i].limits.MergeFrom(proto.principals(static_cast<int>(i)).limits());
    // Allowed (the daemon-wide limit caps it), but then that principal
    // alone can use up what every principal shares.
    const v1::PrincipalLimits& mine = policy.principals_[i].limits;
    const std::pair<const char*, std::pair<uint32_t, uint32_t>> shared[] = {
        {"max_sessions", {mine.max_sessions(), policy.limits_.max_sessions()}},
        {"max_workers", {mine.max_workers(), policy.limits_.max_workers()}},
        {"max_instances", {mine.max_instances(), policy.limits_.max_instances()}}};
    for (const auto& [name, values] : shared) {
      if (values.first >= values.second) {
        policy.warnings_.push_back(absl::StrCat(
            source, ": principal '", policy.principals_[i].name, "' may hold ", values.first,
            " for ", name, " (per principal), not fewer than limits.", name, " (",
            values.second, "): it alone can take them all"));
      }
    }
  }
  // Bounds on the waits of the worker lifecycle (see policy.proto).
  Default(&policy.limits_, &v1::Limits::max_open_millis, &v1::Limits::set_max_open_millis, 10000);
  Default(&policy.limits_, &v1::Limits::max_release_millis, &v1::Limits::set_max_release_millis, 5000);
  // Pools and batches (see policy.proto).
  Default(&policy.limits_, &v1::Limits::max_pool_size, &v1::Limits::set_max_pool_size, 4);
  Default(&policy.limits_, &v1::Limits::max_batch_calls, &v1::Limits::set_max_batch_calls, 10000);
  if (policy.limits_.max_batch_calls() > kMaxBatchCalls) {
    errors.push_back(absl::StrCat(source, ": limits.max_batch_calls is at most ", kMaxBatchCalls));
  }
  if (policy.limits_.max_pool_size() > kMaxPoolSize) {
    errors.push_back(absl::StrCat(source, ": limits.max_pool_size is at most ", kMaxPoolSize));
  }
  if (policy.limits_.max_buffer_bytes() > kMaxBufferLength ||
      policy.limits_.max_string_bytes() > kDefaultMaxStringLength) {
    errors.push_back(absl::StrCat(source, ": limits.max_buffer_bytes is at most ", kMaxBufferLength,
                                  " and limits.max_string_bytes at most ", kDefaultMaxStringLength));
  }
  Where lim = top.Nested("limits");
  if (policy.limits_.default_session_idle_seconds() >
      policy.limits_.max_session_idle_seconds()) {
    errors.push_back(absl::StrCat(lim.At("default_session_idle_seconds"),
                                  ": exceeds limits.max_session_idle_seconds"));
  }
  if (policy.limits_.default_token_ttl_seconds() > policy.limits_.max_token_ttl_seconds()) {
    errors.push_back(absl::StrCat(lim.At("default_token_ttl_seconds"),
                                  ": exceeds limits.max_token_ttl_seconds"));
  }
  if (proto.has_tls()) {
    Where tw = top.Nested("tls");
    const char* required[] = {"listen", "cert_file", "key_file", "client_ca_file"};
    const std::string* values[] = {&proto.tls().listen(), &proto.tls().cert_file(),
                                   &proto.tls().key_file(), &proto.tls().client_ca_file()};
    for (int k = 0; k < 4; ++k) {
      if (values[k]->empty()) errors.push_back(absl::StrCat(tw.At(required[k]), ": required"));
    }
  }
  if (!proto.token_secret_file().empty() && !proto.token_keyring_file().empty()) {
    errors.push_back(absl::StrCat(top.At("token_keyring_file"),
                                  ": token_secret_file is set too; give one of them (a "
                                  "keyring may hold the old secret as a verify key)"));
  }
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
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
  // Strings only: a path the policy does not spell is returned as it is
  // (cleaned), and matches no permission entry unless it is canonical.
  std::string clean = LexicallyClean(requested);
  auto it = path_by_spelling_.find(clean);
  return it != path_by_spelling_.end() ? it->second : clean;
}

absl::StatusOr<Caller> Policy::Authenticate(const PeerIdentity& id) const {
  auto caller = [&](size_t index, std::string how) {
    return Caller{principals_[index].name, std::move(how), principals_[index].permission, "",
                  principals_[index].limits, principals_[index].name,
                  principals_[index].read_metrics};
  };
  if (!id.api_key_sha256.empty()) {
    auto it = key_owners_.find(id.api_key_sha256);
    if (it == key_owners_.end()) {
      return absl::UnauthenticatedError("the API key presented is not valid");
    }
    return caller(it->second.principal, absl::StrCat("api key ", it->second.key_id));
  }
  for (size_t i = 0; i < principals_.size(); ++i) {
    const ResolvedPrincipal& p = principals_[i];
    if (id.transport == PeerIdentity::Transport::kUnix) {
      if (p.uids.count(id.uid)) return caller(i, absl::StrCat("uid ", id.uid));
      if (p.gids.count(id.gid)) return caller(i, absl::StrCat("gid ", id.gid));
      for (gid_t g : id.groups) {
        if (p.gids.count(g)) return caller(i, absl::StrCat("group ", g));
      }
      if (p.any_local_user) {
        // Each local user is its own holder of the principal's limits, so
        // one user cannot use them up for every other.
        Caller c = caller(i, absl::StrCat("local uid ", id.uid));
        c.limits_holder = absl::StrCat(c.principal, " (uid ", id.uid, ")");
        return c;
      }
    } else if (id.transport == PeerIdentity::Transport::kTls) {
      for (const std::string& name : id.tls_names) {
        if (p.tls_names.count(name)) return caller(i, absl::StrCat("tls ", name));
      }
    }
  }
  switch (id.transport) {
    case PeerIdentity::Transport::kUnix:
      return absl::PermissionDeniedError(absl::StrCat(
          "uid ", id.uid, " (gid ", id.gid, ") is not a principal of the policy"));
    case PeerIdentity::Transport::kTls:
      return absl::PermissionDeniedError(absl::StrCat(
          "TLS client '", id.tls_names.empty() ? "" : id.tls_names.front(),
          "' is not a principal of the policy"));
    default:
      return absl::UnauthenticatedError(
          "the connection carries no identity: use the unix socket, a TLS client "
          "certificate or an API key");
  }
}

std::vector<std::pair<std::string, std::string>> Policy::PrincipalProfiles() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const ResolvedPrincipal& p : principals_) {
    out.emplace_back(p.name, p.permission.confinement_profile());
  }
  return out;
}

bool Policy::HasPrincipal(absl::string_view name) const {
  for (const ResolvedPrincipal& p : principals_) {
    if (p.name == name) return true;
  }
  return false;
}

absl::Status Policy::CheckProfiles(const std::set<std::string>& known) const {
  std::vector<std::string> errors;
  for (const ResolvedPrincipal& p : principals_) {
    const std::string& name = p.permission.confinement_profile();
    if (known.count(name) == 0) {
      errors.push_back(absl::StrCat(p.profile_at, ": no confinement profile named '", name,
                                    "' (loaded: ", absl::StrJoin(known, ", "), ")"));
    }
  }
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
}

std::set<std::string> Policy::ReferencedProfiles() const {
  std::set<std::string> names;
  for (const ResolvedPrincipal& p : principals_) {
    names.insert(p.permission.confinement_profile());
  }
  return names;
}

}  // namespace ffibroker
