#include "daemon/token_keyring.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "daemon/private_file.h"

namespace ffibroker {
namespace {

absl::Status LineError(absl::string_view path, size_t line, absl::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat("token keyring ", path, " line ", line, ": ", problem));
}

bool IsHex(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

bool ValidKeyId(absl::string_view id) {
  if (id.empty() || id.size() > kMaxKeyIdChars) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  }
  return true;
}

std::string DerivedKeyId(absl::string_view secret) {
  static constexpr char kContext[] = "ffibroker-token-key-id";
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  ::HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(kContext), sizeof kContext - 1, out, &len);
  return absl::StrCat("secret-",
                      absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(out), 6)));
}

TokenKeyring TokenKeyring::Single(std::string secret) {
  std::string id = DerivedKeyId(secret);
  return TokenKeyring({TokenKey{std::move(id), std::move(secret)}});
}

const TokenKey* TokenKeyring::Find(absl::string_view id) const {
  for (const TokenKey& key : keys_) {
    if (key.id == id) return &key;
  }
  return nullptr;
}

std::string TokenKeyring::Describe() const {
  std::string out = absl::StrCat(keys_[0].id, " (active)");
  for (size_t i = 1; i < keys_.size(); ++i) absl::StrAppend(&out, ", ", keys_[i].id);
  return out;
}

absl::StatusOr<TokenKeyring> ParseTokenKeyring(absl::string_view text, absl::string_view path) {
  std::vector<TokenKey> keys;
  std::vector<size_t> key_lines;
  size_t active_line = 0;
  size_t line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    // The text of a bad line is never quoted: a secret may be in it.
    if (fields.size() != 3) {
      return LineError(path, line_number,
                       absl::StrCat("has ", fields.size(),
                                    " fields; a key line is KEY_ID ROLE SECRET"));
    }
    if (!ValidKeyId(fields[0])) {
      return LineError(path, line_number,
                       absl::StrCat("the key id (field 1) must be 1..", kMaxKeyIdChars,
                                    " characters of A-Z a-z 0-9 - _"));
    }
    const std::string id(fields[0]);
    if (fields[1] != "active" && fields[1] != "verify") {
      return LineError(path, line_number,
                       absl::StrCat("key '", id, "': the role (field 2) must be active or verify"));
    }
    const absl::string_view hex = fields[2];
    if (!IsHex(hex) || hex.size() % 2 != 0) {
      return LineError(path, line_number,
                       absl::StrCat("key '", id,
                                    "': the secret (field 3) must be an even number of hex digits"));
    }
    if (hex.size() < 2 * kTokenSecretBytes) {
      return LineError(path, line_number,
                       absl::StrCat("key '", id, "': the secret has ", hex.size() / 2,
                                    " bytes, needs at least ", kTokenSecretBytes));
    }
    std::string secret = absl::HexStringToBytes(hex);
    for (size_t i = 0; i < keys.size(); ++i) {
      if (keys[i].id == id) {
        return LineError(path, line_number,
                         absl::StrCat("key id '", id, "' is already used on line ", key_lines[i]));
      }
      if (keys[i].secret == secret) {
        return LineError(path, line_number,
                         absl::StrCat("key '", id, "' has the same secret as key '", keys[i].id,
                                      "' on line ", key_lines[i]));
      }
    }
    if (keys.size() == kMaxKeyringKeys) {
      return LineError(path, line_number,
                       absl::StrCat("more than ", kMaxKeyringKeys, " keys"));
    }
    if (fields[1] == "active") {
      if (active_line != 0) {
        return LineError(path, line_number,
                         absl::StrCat("key '", id, "' is active, but so is the key on line ",
                                      active_line, "; exactly one key signs"));
      }
      active_line = line_number;
      keys.insert(keys.begin(), TokenKey{id, std::move(secret)});
      key_lines.insert(key_lines.begin(), line_number);
    } else {
      keys.push_back(TokenKey{id, std::move(secret)});
      key_lines.push_back(line_number);
    }
  }
  if (keys.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("token keyring ", path, " holds no keys"));
  }
  if (active_line == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "token keyring ", path, " has no active key (one line must have the role active)"));
  }
  return TokenKeyring(std::move(keys));
}

absl::StatusOr<TokenKeyring> LoadTokenKeyring(const std::string& path) {
  absl::StatusOr<std::string> text = ReadPrivateFile(path, "token keyring", kMaxKeyringBytes);
  if (!text.ok()) return text.status();
  return ParseTokenKeyring(*text, path);
}

}  // namespace ffibroker
