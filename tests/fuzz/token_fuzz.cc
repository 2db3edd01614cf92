// Fuzz target: the token decoder and verifier (daemon/token_signer.h,
// daemon/token_authority.h) on random strings and on mutations of a real
// token.
//
// Input: a selector byte; then either the token text, or edits (position,
// byte, operation) applied to a token the authority issued.
// Invariants: every input gets a Status (UNAUTHENTICATED or
// PERMISSION_DENIED); no string other than an issued token's verifies to
// claims other than that token's; a caller outside the audience never
// gets claims.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/time/clock.h"
#include "daemon/token_authority.h"
#include "daemon/token_signer.h"
#include "tests/fuzz/fuzz_values.h"

namespace ffibroker {
namespace {

const std::string kSecret(kTokenSecretBytes, 's');

struct Issued {
  TokenAuthority authority{kSecret};
  TokenSigner signer{kSecret};
  IssuedToken token;
  Caller alice, bob;
};

const Issued& Token() {
  static Issued* issued = [] {
    auto* i = new Issued();
    i->alice.principal = "alice";
    i->alice.identity = "uid 1000";
    i->bob.principal = "bob";
    i->bob.identity = "uid 1001";
    v1::TokenClaims claims;
    claims.set_principal("alice");
    claims.set_owner("uid 1000");
    claims.add_audience("alice");
    claims.set_call_quota(5);
    claims.mutable_permission()->add_libraries()->set_library("/lib/x86_64-linux-gnu/libm.so.6");
    absl::StatusOr<IssuedToken> token = i->authority.Issue(claims, absl::Hours(1));
    FUZZ_CHECK(token.ok(), token.status().ToString());
    i->token = *std::move(token);
    return i;
  }();
  return *issued;
}

void Check(const std::string& token) {
  const Issued& t = Token();
  bool same = token == t.token.token;
  absl::StatusOr<v1::TokenClaims> signed_claims = t.signer.Verify(token);
  if (!signed_claims.ok()) {
    FUZZ_CHECK(signed_claims.status().code() == absl::StatusCode::kUnauthenticated,
               signed_claims.status().ToString());
    FUZZ_CHECK(!same, "the issued token does not verify");
  } else {
    FUZZ_CHECK(signed_claims->SerializeAsString() == t.token.claims.SerializeAsString(),
               "a forged token verified: " + token);
  }
  absl::StatusOr<v1::TokenClaims> claims = t.authority.Verify(token, t.alice);
  if (claims.ok()) {
    FUZZ_CHECK(claims->SerializeAsString() == t.token.claims.SerializeAsString(),
               "a forged token verified: " + token);
  } else {
    FUZZ_CHECK(claims.status().code() == absl::StatusCode::kUnauthenticated ||
                   claims.status().code() == absl::StatusCode::kPermissionDenied,
               claims.status().ToString());
  }
  absl::StatusOr<v1::TokenClaims> foreign = t.authority.Verify(token, t.bob);
  FUZZ_CHECK(!foreign.ok(), "a caller outside the audience got claims");
  (void)t.authority.VerifyForInspect(token, t.bob);
}

}  // namespace
}  // namespace ffibroker

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ffibroker;
  if (size == 0) return 0;
  if (data[0] % 2 == 0) {
    Check(std::string(reinterpret_cast<const char*>(data) + 1, size - 1));
    return 0;
  }
  std::string token = Token().token.token;
  for (size_t i = 1; i + 2 < size && !token.empty(); i += 3) {
    size_t at = (data[i] | (data[i + 1] & 0x7f) << 8) % (token.size() + 1);
    char c = static_cast<char>(data[i + 2]);
    switch (data[i + 1] >> 7 | (data[i + 2] & 1) << 1) {
      case 0: if (at < token.size()) token[at] = c; break;
      case 1: token.insert(at, 1, c); break;
      case 2: token.erase(at, 1); break;
      default: token.resize(at); break;
    }
  }
  Check(token);
  return 0;
}
