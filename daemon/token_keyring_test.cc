// Unit tests of the token keyring file, key ids in tokens and key rotation
// in the authority (issue 14 item 7).
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/error_reason.h"
#include "daemon/identity.h"
#include "daemon/token_authority.h"
#include "daemon/token_keyring.h"
#include "daemon/token_signer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::string kHexA(64, 'a');
const std::string kHexB = std::string(62, 'b') + "0b";
const std::string kHexC(80, 'c');

std::string Message(const absl::Status& status) { return std::string(status.message()); }

TEST(TokenKeyringTest, ParsesKeysActiveFirst) {
  auto ring = ParseTokenKeyring(absl::StrCat("# rotated 2026-12\n\n", "old verify ", kHexA,
                                             "\n", "  new\tactive  ", kHexB, "  \n",
                                             "older verify ", kHexC, "\n"),
                                "k");
  ASSERT_TRUE(ring.ok()) << ring.status();
  ASSERT_EQ(ring->keys().size(), 3u);
  EXPECT_EQ(ring->active().id, "new");
  EXPECT_EQ(ring->active().secret, absl::HexStringToBytes(kHexB));
  EXPECT_EQ(ring->keys()[1].id, "old");
  EXPECT_EQ(ring->keys()[2].secret.size(), 40u);
  ASSERT_NE(ring->Find("older"), nullptr);
  EXPECT_EQ(ring->Find("gone"), nullptr);
  EXPECT_EQ(ring->Describe(), "new (active), old, older");
}

TEST(TokenKeyringTest, BadFilesGetAPreciseErrorWithoutTheSecret) {
  struct Case {
    std::string text;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"", "/etc/k holds no keys"},
      {"# only a comment\n", "/etc/k holds no keys"},
      {absl::StrCat("a verify ", kHexA, "\n"), "/etc/k has no active key"},
      {absl::StrCat("a active\n"), "/etc/k line 1: has 2 fields; a key line is KEY_ID ROLE SECRET"},
      {absl::StrCat("\na active ", kHexA, " extra\n"), "/etc/k line 2: has 4 fields"},
      {absl::StrCat("a.b active ", kHexA, "\n"), "line 1: the key id (field 1) must be 1..32"},
      {absl::StrCat(std::string(33, 'x'), " active ", kHexA, "\n"), "line 1: the key id"},
      {absl::StrCat("a signing ", kHexA, "\n"), "line 1: key 'a': the role (field 2) must be active or verify"},
      {absl::StrCat("a active ", kHexA, "z\n"), "key 'a': the secret (field 3) must be an even number of hex digits"},
      {absl::StrCat("a active ", kHexA, "a\n"), "an even number of hex digits"},
      {"a active 00112233\n", "line 1: key 'a': the secret has 4 bytes, needs at least 32"},
      {absl::StrCat("a active ", kHexA, "\na verify ", kHexB, "\n"), "line 2: key id 'a' is already used on line 1"},
      {absl::StrCat("a active ", kHexA, "\nb verify ", kHexA, "\n"), "line 2: key 'b' has the same secret as key 'a' on line 1"},
      {absl::StrCat("a active ", kHexA, "\nb active ", kHexB, "\n"), "line 2: key 'b' is active, but so is the key on line 1"},
  };
  for (const Case& c : cases) {
    auto ring = ParseTokenKeyring(c.text, "/etc/k");
    ASSERT_FALSE(ring.ok()) << c.text;
    EXPECT_EQ(ring.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(Message(ring.status()), HasSubstr(c.expected)) << c.text;
    EXPECT_THAT(Message(ring.status()), HasSubstr("/etc/k")) << c.text;
    // No secret, nor any part of a line's text that may be one.
    EXPECT_THAT(Message(ring.status()), Not(HasSubstr("aaaaaaaa"))) << c.text;
    EXPECT_THAT(Message(ring.status()), Not(HasSubstr("bbbbbbbb"))) << c.text;
    EXPECT_THAT(Message(ring.status()), Not(HasSubstr("00112233"))) << c.text;
  }
  // A secret written where the id belongs is not echoed either.
  auto swapped = ParseTokenKeyring(absl::StrCat(kHexA, " active a\n"), "/etc/k");
  EXPECT_THAT(Message(swapped.status()), Not(HasSubstr("aaaaaaaa")));
  std::string many;
  for (size_t i = 0; i <= kMaxKeyringKeys; ++i) {
    absl::StrAppend(&many, "k", i, i == 0 ? " active " : " verify ",
                    absl::StrCat(absl::Hex(i, absl::kZeroPad8)), std::string(56, 'e'), "\n");
  }
  auto too_many = ParseTokenKeyring(many, "/etc/k");
  EXPECT_THAT(Message(too_many.status()), HasSubstr("line 65: more than 64 keys"));
}

TEST(TokenKeyringTest, FileMustBePrivate) {
  std::string path = ::testing::TempDir() + "/token-keyring";
  ::unlink(path.c_str());
  EXPECT_TRUE(absl::IsNotFound(LoadTokenKeyring(path).status()));
  std::ofstream(path) << "a active " << kHexA << "\n";
  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);
  auto open = LoadTokenKeyring(path);
  EXPECT_TRUE(absl::IsFailedPrecondition(open.status())) << open.status();
  EXPECT_THAT(Message(open.status()), HasSubstr("mode 0600 or stricter (it is mode 0640"));
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  auto ring = LoadTokenKeyring(path);
  ASSERT_TRUE(ring.ok()) << ring.status();
  EXPECT_EQ(ring->active().id, "a");
  std::string link = path + ".link";
  ::unlink(link.c_str());
  ASSERT_EQ(::symlink(path.c_str(), link.c_str()), 0);
  EXPECT_TRUE(absl::IsNotFound(LoadTokenKeyring(link).status()));  // O_NOFOLLOW
  std::ofstream(path) << std::string(kMaxKeyringBytes + 1, '#');
  EXPECT_TRUE(absl::IsFailedPrecondition(LoadTokenKeyring(path).status()));
  ::unlink(link.c_str());
  ::unlink(path.c_str());
}

TEST(TokenKeyringTest, DerivedIdsAreStableAndSayNothingOfTheSecret) {
  std::string secret(32, 's');
  EXPECT_EQ(DerivedKeyId(secret), DerivedKeyId(secret));
  EXPECT_NE(DerivedKeyId(secret), DerivedKeyId(std::string(32, 't')));
  EXPECT_THAT(DerivedKeyId(secret), ::testing::MatchesRegex("secret-[0-9a-f]{12}"));
  EXPECT_TRUE(ValidKeyId(DerivedKeyId(secret)));
  EXPECT_EQ(TokenKeyring::Single(secret).active().id, DerivedKeyId(secret));
}

v1::TokenClaims Claims() {
  v1::TokenClaims c;
  c.set_token_id("00112233445566778899aabbccddeeff");
  c.set_principal("p");
  return c;
}

TokenKeyring Ring(const std::string& text) {
  auto ring = ParseTokenKeyring(text, "test");
  EXPECT_TRUE(ring.ok()) << ring.status();
  return *std::move(ring);
}

TEST(TokenKeyIdTest, TokensNameTheirKeyAndVerifyWithAnyKeyOfTheRing) {
  TokenSigner first(Ring(absl::StrCat("k1 active ", kHexA, "\n")));
  std::string token = first.Sign(Claims());
  EXPECT_THAT(token, ::testing::StartsWith("ffbt2.k1."));
  // Rotated: k2 signs, k1 still verifies.
  TokenSigner rotated(Ring(absl::StrCat("k2 active ", kHexB, "\nk1 verify ", kHexA, "\n")));
  auto old = rotated.Verify(token);
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->key_id(), "k1");
  std::string fresh = rotated.Sign(Claims());
  EXPECT_THAT(fresh, ::testing::StartsWith("ffbt2.k2."));
  EXPECT_EQ(rotated.Verify(fresh)->key_id(), "k2");
  // Retired: k1 gone.
  TokenSigner retired(Ring(absl::StrCat("k2 active ", kHexB, "\n")));
  absl::Status unknown = retired.Verify(token).status();
  EXPECT_TRUE(absl::IsUnauthenticated(unknown)) << unknown;
  EXPECT_EQ(ErrorReason(unknown), "TOKEN_KEY_UNKNOWN");
  EXPECT_THAT(Message(unknown), HasSubstr("signed with key 'k1', which is not in this daemon's "
                                          "token keyring"));
  EXPECT_TRUE(retired.Verify(fresh).ok());
  // Another key of the same id does not verify it (the MAC covers the id).
  TokenSigner impostor(Ring(absl::StrCat("k1 active ", kHexC, "\n")));
  EXPECT_THAT(Message(impostor.Verify(token).status()), HasSubstr("not issued by this daemon"));
  // Ids that are not ids are malformed, and never echoed.
  EXPECT_THAT(Message(rotated.Verify("ffbt2.k/1." + token.substr(9)).status()),
              HasSubstr("malformed"));
  EXPECT_THAT(Message(rotated.Verify("ffbt2." + token.substr(9)).status()),
              HasSubstr("malformed"));
}

// A token of the format before key ids ("ffbt1.", MAC over the claims with
// the v1 context), as an older single-key ffibrokerd signed it.
std::string LegacyToken(const std::string& secret, const v1::TokenClaims& claims) {
  std::string payload = claims.SerializeAsString();
  std::string input("ffibroker-token-v1", sizeof "ffibroker-token-v1");
  input += payload;
  unsigned char out[64];
  unsigned int len = 0;
  ::HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), out, &len);
  payload.append(reinterpret_cast<char*>(out), len);
  return "ffbt1." + absl::WebSafeBase64Escape(payload);
}

TEST(TokenKeyIdTest, TokensOfTheFormatBeforeKeyIdsStillVerify) {
  std::string secret = absl::HexStringToBytes(kHexA);
  std::string legacy = LegacyToken(secret, Claims());
  // The same secret file as before the upgrade.
  EXPECT_TRUE(TokenSigner(secret).Verify(legacy).ok());
  // That secret moved into a keyring as a verify key.
  TokenSigner ring(Ring(absl::StrCat("k2 active ", kHexB, "\nold verify ", kHexA, "\n")));
  auto claims = ring.Verify(legacy);
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->key_id(), "");
  // Retired: no key verifies it.
  TokenSigner retired(Ring(absl::StrCat("k2 active ", kHexB, "\n")));
  EXPECT_THAT(Message(retired.Verify(legacy).status()), HasSubstr("not issued by this daemon"));
}

TEST(TokenKeyIdTest, AuthorityRotatesAndRetiresKeys) {
  TokenAuthority authority(Ring(absl::StrCat("k1 active ", kHexA, "\n")));
  Caller caller;
  caller.principal = "p";
  caller.identity = "uid:1";
  v1::TokenClaims claims;
  claims.set_principal("p");
  auto first = authority.Issue(claims, absl::Minutes(5));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->claims.key_id(), "k1");
  ASSERT_TRUE(
      authority.SetKeyring(Ring(absl::StrCat("k2 active ", kHexB, "\nk1 verify ", kHexA, "\n")))
          .ok());
  EXPECT_EQ(authority.DescribeKeys(), "k2 (active), k1");
  auto second = authority.Issue(claims, absl::Minutes(5));
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->claims.key_id(), "k2");
  EXPECT_TRUE(authority.Verify(first->token, caller).ok());
  EXPECT_TRUE(authority.Verify(second->token, caller).ok());
  ASSERT_TRUE(authority.SetKeyring(Ring(absl::StrCat("k2 active ", kHexB, "\n"))).ok());
  absl::Status retired = authority.Verify(first->token, caller).status();
  EXPECT_EQ(ErrorReason(retired), "TOKEN_KEY_UNKNOWN") << retired;
  EXPECT_TRUE(authority.Verify(second->token, caller).ok());
}

}  // namespace
}  // namespace ffibroker
