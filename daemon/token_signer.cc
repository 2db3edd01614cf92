#include "daemon/token_signer.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/unique_fd.h"

namespace ffibroker {
namespace {

constexpr char kMacContext[] = "ffibroker-token-v1";  // and its NUL

absl::Status Malformed() {
  return absl::UnauthenticatedError("token is malformed");
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
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) {
    return absl::NotFoundError(absl::StrCat("cannot open token secret file ", path,
                                            ": ", std::strerror(errno)));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("token secret file ", path, " is not a regular file"));
  }
  if ((st.st_mode & 077) != 0 || st.st_uid != ::geteuid()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "token secret file ", path, " must be owned by uid ", ::geteuid(),
        " with mode 0600 or stricter (it is mode 0",
        absl::StrCat(absl::Hex(st.st_mode & 0777)), " owned by uid ", st.st_uid, ")"));
  }
  std::string secret;
  char buf[4096];
  while (secret.size() <= 65536) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(absl::StrCat("read ", path), errno);
    if (n == 0) break;
    secret.append(buf, static_cast<size_t>(n));
  }
  if (secret.size() < kTokenSecretBytes) {
    return absl::FailedPreconditionError(absl::StrCat(
        "token secret file ", path, " holds ", secret.size(), " bytes, needs at least ",
        kTokenSecretBytes));
  }
  return secret;
}

TokenSigner::TokenSigner(std::string secret) : secret_(std::move(secret)) {}

std::string TokenSigner::Mac(absl::string_view claims) const {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  std::string input(kMacContext, sizeof kMacContext);  // includes the NUL
  input.append(claims.data(), claims.size());
  ::HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string TokenSigner::Sign(const v1::TokenClaims& claims) const {
  std::string payload = claims.SerializeAsString();
  payload += Mac(payload);
  return absl::StrCat(kTokenPrefix, absl::WebSafeBase64Escape(payload));
}

absl::StatusOr<v1::TokenClaims> TokenSigner::Verify(absl::string_view token) const {
  if (token.size() > kMaxTokenChars || !absl::StartsWith(token, kTokenPrefix)) {
    return Malformed();
  }
  absl::string_view body = token.substr(sizeof kTokenPrefix - 1);
  std::string raw;
  if (!absl::WebSafeBase64Unescape(body, &raw) ||
      absl::WebSafeBase64Escape(raw) != body || raw.size() <= kTokenMacBytes) {
    return Malformed();
  }
  absl::string_view claims(raw.data(), raw.size() - kTokenMacBytes);
  std::string expected = Mac(claims);
  if (CRYPTO_memcmp(expected.data(), raw.data() + claims.size(), kTokenMacBytes) != 0) {
    return absl::UnauthenticatedError(
        "token was not issued by this daemon or was altered");
  }
  v1::TokenClaims parsed;
  if (!parsed.ParseFromArray(claims.data(), static_cast<int>(claims.size())) ||
      parsed.token_id().empty()) {
    return Malformed();  // only if our own encoder broke: the MAC matched
  }
  return parsed;
}

}  // namespace ffibroker
