#include "daemon/token_signer.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/random.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/error_reason.h"
#include "daemon/private_file.h"

namespace ffibroker {
namespace {

constexpr char kMacContextV1[] = "ffibroker-token-v1";  // and its NUL
constexpr char kMacContextV2[] = "ffibroker-token-v2";  // and its NUL
// A secret file is a few dozen bytes; anything near this is not one.
constexpr size_t kMaxSecretFileBytes = 64 * 1024;

absl::Status Malformed() {
  return absl::UnauthenticatedError("token is malformed");
}

absl::Status NotOurs() {
  return absl::UnauthenticatedError("token was not issued by this daemon or was altered");
}

std::string Hmac(const std::string& secret, absl::string_view input) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  ::HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string MacV2(const TokenKey& key, absl::string_view claims) {
  std::string input(kMacContextV2, sizeof kMacContextV2);  // includes the NUL
  input += key.id;
  input.push_back('\0');
  input.append(claims.data(), claims.size());
  return Hmac(key.secret, input);
}

std::string MacV1(const TokenKey& key, absl::string_view claims) {
  std::string input(kMacContextV1, sizeof kMacContextV1);  // includes the NUL
  input.append(claims.data(), claims.size());
  return Hmac(key.secret, input);
}

// The raw claims || mac of a base64url body, if canonical and long enough.
bool DecodeBody(absl::string_view body, std::string* raw) {
  return absl::WebSafeBase64Unescape(body, raw) && absl::WebSafeBase64Escape(*raw) == body &&
         raw->size() > kTokenMacBytes;
}

bool MacMatches(const std::string& expected, const std::string& raw, size_t claims_size) {
  return CRYPTO_memcmp(expected.data(), raw.data() + claims_size, kTokenMacBytes) == 0;
}

}  // namespace

absl::StatusOr<std::string> LoadOrGenerateTokenSecret(const std::string& path) {
  if (path.empty()) {
    std::string secret(kTokenSecretBytes, '\0');
    if (::getrandom(secret.data(), secret.size(), 0) !=
        static_cast<ssize_t>(secret.size())) {
      return absl::InternalError("getrandom failed for the token secret");
    }
    return secret;
  }
  absl::StatusOr<std::string> secret =
      ReadPrivateFile(path, "token secret file", kMaxSecretFileBytes);
  if (!secret.ok()) return secret.status();
  if (secret->size() < kTokenSecretBytes) {
    return absl::FailedPreconditionError(absl::StrCat(
        "token secret file ", path, " holds ", secret->size(), " bytes, needs at least ",
        kTokenSecretBytes));
  }
  return secret;
}

TokenSigner::TokenSigner(TokenKeyring keyring) : keyring_(std::move(keyring)) {}

TokenSigner::TokenSigner(std::string secret)
    : keyring_(TokenKeyring::Single(std::move(secret))) {}

std::string TokenSigner::Sign(const v1::TokenClaims& claims) const {
  const TokenKey& key = keyring_.active();
  v1::TokenClaims signed_claims = claims;
  signed_claims.set_key_id(key.id);
  std::string payload = signed_claims.SerializeAsString();
  payload += MacV2(key, payload);
  return absl::StrCat(kTokenPrefix, key.id, ".", absl::WebSafeBase64Escape(payload));
}

absl::StatusOr<v1::TokenClaims> TokenSigner::Verify(absl::string_view token) const {
  if (token.size() > kMaxTokenChars) return Malformed();
  std::string raw;
  size_t claims_size = 0;
  if (absl::StartsWith(token, kTokenPrefix)) {
    absl::string_view rest = token.substr(sizeof kTokenPrefix - 1);
    size_t dot = rest.find('.');
    if (dot == absl::string_view::npos) return Malformed();
    absl::string_view id = rest.substr(0, dot);
    if (!ValidKeyId(id)) return Malformed();
    if (!DecodeBody(rest.substr(dot + 1), &raw)) return Malformed();
    const TokenKey* key = keyring_.Find(id);
    if (key == nullptr) {
      return WithReason(
          absl::UnauthenticatedError(absl::StrCat(
              "token was signed with key '", id,
              "', which is not in this daemon's token keyring (retired, or never added)")),
          "TOKEN_KEY_UNKNOWN", {{"key_id", std::string(id)}});
    }
    claims_size = raw.size() - kTokenMacBytes;
    absl::string_view claims(raw.data(), claims_size);
    if (!MacMatches(MacV2(*key, claims), raw, claims_size)) return NotOurs();
    v1::TokenClaims parsed;
    if (!parsed.ParseFromArray(claims.data(), static_cast<int>(claims.size())) ||
        parsed.token_id().empty() || parsed.key_id() != id) {
      return Malformed();  // only if our own encoder broke: the MAC matched
    }
    return parsed;
  }
  if (!absl::StartsWith(token, kLegacyTokenPrefix)) return Malformed();
  if (!DecodeBody(token.substr(sizeof kLegacyTokenPrefix - 1), &raw)) return Malformed();
  claims_size = raw.size() - kTokenMacBytes;
  absl::string_view claims(raw.data(), claims_size);
  for (const TokenKey& key : keyring_.keys()) {
    if (!MacMatches(MacV1(key, claims), raw, claims_size)) continue;
    v1::TokenClaims parsed;
    if (!parsed.ParseFromArray(claims.data(), static_cast<int>(claims.size())) ||
        parsed.token_id().empty() || !parsed.key_id().empty()) {
      return Malformed();
    }
    return parsed;
  }
  return NotOurs();
}

}  // namespace ffibroker
