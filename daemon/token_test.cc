// Unit tests of the token format, the authority's state and the permission
// narrowing rules.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/escaping.h"
#include "daemon/permission.h"
#include "daemon/token_authority.h"
#include "daemon/token_signer.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

v1::TokenClaims Claims() {
  v1::TokenClaims c;
  c.set_token_id("00112233445566778899aabbccddeeff");
  c.set_principal("p");
  v1::PermissionLibrary* lib = c.mutable_permission()->add_libraries();
  lib->set_library("/lib/libm.so.6");
  lib->add_allow_symbols("cos");
  ApplyPermissionDefaults(c.mutable_permission());
  return c;
}

TEST(TokenSignerTest, RoundTripsAndRejectsOtherSecretsAndEncodings) {
  TokenSigner signer(std::string(32, 'a'));
  std::string token = signer.Sign(Claims());
  auto back = signer.Verify(token);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->principal(), "p");
  EXPECT_TRUE(absl::IsUnauthenticated(TokenSigner(std::string(32, 'b')).Verify(token).status()));
  // Padding or stray characters make another string for the same bytes.
  EXPECT_TRUE(absl::IsUnauthenticated(signer.Verify(token + "=").status()));
  EXPECT_TRUE(absl::IsUnauthenticated(signer.Verify(token + "A").status()));
  EXPECT_TRUE(absl::IsUnauthenticated(signer.Verify("ffbt2" + token.substr(5)).status()));
  // The message never contains the token.
  std::string message(signer.Verify(token + "x").status().message());
  EXPECT_EQ(message.find(token.substr(6, 20)), std::string::npos);
}

TEST(TokenSignerTest, SecretFileMustBePrivateAndLongEnough) {
  std::string path = ::testing::TempDir() + "/token-secret";
  std::ofstream(path) << std::string(40, 'k');
  ::chmod(path.c_str(), 0644);
  EXPECT_TRUE(absl::IsFailedPrecondition(LoadOrGenerateTokenSecret(path).status()));
  ::chmod(path.c_str(), 0600);
  auto secret = LoadOrGenerateTokenSecret(path);
  ASSERT_TRUE(secret.ok()) << secret.status();
  EXPECT_EQ(secret->size(), 40u);
  std::ofstream(path) << "short";
  EXPECT_TRUE(absl::IsFailedPrecondition(LoadOrGenerateTokenSecret(path).status()));
  ::unlink(path.c_str());
  auto generated = LoadOrGenerateTokenSecret("");
  ASSERT_TRUE(generated.ok());
  EXPECT_EQ(generated->size(), kTokenSecretBytes);
}

TEST(TokenAuthorityTest, ExpiryRevocationAndQuota) {
  absl::Time now = absl::FromUnixSeconds(1000000);
  TokenAuthority authority(std::string(32, 's'), [&now] { return now; });
  v1::TokenClaims claims = Claims();
  claims.set_call_quota(2);
  auto issued = authority.Issue(claims, absl::Seconds(60));
  ASSERT_TRUE(issued.ok());
  EXPECT_TRUE(authority.Verify(issued->token).ok());
  EXPECT_TRUE(authority.ConsumeCall(issued->claims).ok());
  EXPECT_TRUE(authority.ConsumeCall(issued->claims).ok());
  EXPECT_TRUE(absl::IsResourceExhausted(authority.ConsumeCall(issued->claims)));
  EXPECT_TRUE(absl::IsPermissionDenied(authority.Revoke(issued->claims.token_id(), "other")));
  EXPECT_TRUE(absl::IsNotFound(authority.Revoke("nope", "p")));

  v1::TokenClaims child = Claims();
  child.add_ancestor_ids(issued->claims.token_id());
  auto issued_child = authority.Issue(child, absl::Seconds(30));
  ASSERT_TRUE(issued_child.ok());
  ASSERT_TRUE(authority.Revoke(issued->claims.token_id(), "p").ok());
  EXPECT_TRUE(absl::IsPermissionDenied(authority.Verify(issued->token).status()));
  EXPECT_TRUE(absl::IsPermissionDenied(authority.Verify(issued_child->token).status()));

  auto later = authority.Issue(Claims(), absl::Seconds(60));
  ASSERT_TRUE(later.ok());
  now += absl::Seconds(61);
  EXPECT_TRUE(absl::IsUnauthenticated(authority.Verify(later->token).status()));
}

TEST(PermissionTest, NarrowNeverWidens) {
  v1::Permission parent = Claims().permission();
  parent.mutable_libraries(0)->add_deny_symbols("sin");
  auto same = Narrow(parent, {}, {});
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(IsSubset(*same, parent));
  EXPECT_TRUE(absl::IsPermissionDenied(
      Narrow(parent, {{"/lib/other.so", "other", {}}}, {}).status()));
  EXPECT_TRUE(absl::IsPermissionDenied(
      Narrow(parent, {{"/lib/libm.so.6", "libm", {"sin"}}}, {}).status()));
  auto narrower = Narrow(parent, {{"/lib/libm.so.6", "libm", {"cos"}}}, {v1::OPEN_LIBRARY});
  ASSERT_TRUE(narrower.ok()) << narrower.status();
  EXPECT_TRUE(IsSubset(*narrower, parent));
  EXPECT_FALSE(IsSubset(parent, *narrower));  // parent can GRANT_TOKEN
  EXPECT_TRUE(CheckOpen(*narrower, "t", "/lib/libm.so.6", {"cos"}).ok());
  EXPECT_TRUE(absl::IsPermissionDenied(CheckOpen(*narrower, "t", "/lib/libm.so.6", {"sin"})));
  v1::Permission wide = parent;
  wide.mutable_libraries(0)->clear_allow_symbols();
  EXPECT_FALSE(IsSubset(wide, parent));
}

}  // namespace
}  // namespace ffibroker
