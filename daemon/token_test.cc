// Unit tests of the token format, the authority's state and the permission
// narrowing rules.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/escaping.h"
#include "daemon/identity.h"
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
  EXPECT_TRUE(absl::IsUnauthenticated(signer.Verify("ffbt3" + token.substr(5)).status()));
  // The key id belongs to the v2 format: with the v1 prefix it is not base64.
  EXPECT_TRUE(absl::IsUnauthenticated(signer.Verify("ffbt1" + token.substr(5)).status()));
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

Caller CallerP(const std::string& identity = "uid:1") {
  Caller caller;
  caller.principal = "p";
  caller.identity = identity;
  return caller;
}

TEST(TokenAuthorityTest, ExpiryRevocationAndQuota) {
  absl::Time now = absl::FromUnixSeconds(1000000);
  TokenAuthority authority(std::string(32, 's'), [&now] { return now; });
  const Caller p = CallerP();
  v1::TokenClaims claims = Claims();
  claims.set_owner(p.identity);
  claims.set_call_quota(2);
  auto issued = authority.Issue(claims, absl::Seconds(60));
  ASSERT_TRUE(issued.ok());
  EXPECT_TRUE(authority.Verify(issued->token, p).ok());
  EXPECT_TRUE(authority.ConsumeCall(issued->claims).ok());
  EXPECT_TRUE(authority.ConsumeCall(issued->claims).ok());
  EXPECT_TRUE(absl::IsResourceExhausted(authority.ConsumeCall(issued->claims)));
  // Another identity, even of the same principal, cannot revoke it and
  // cannot tell it from a token that does not exist.
  EXPECT_TRUE(absl::IsNotFound(authority.Revoke(issued->claims.token_id(), CallerP("uid:2"))));
  EXPECT_TRUE(absl::IsNotFound(authority.Revoke("nope", p)));

  v1::TokenClaims child = Claims();
  child.set_owner(p.identity);
  child.add_ancestor_ids(issued->claims.token_id());
  child.add_ancestor_call_quotas(0);
  auto issued_child = authority.Issue(child, absl::Seconds(30));
  ASSERT_TRUE(issued_child.ok());
  ASSERT_TRUE(authority.Revoke(issued->claims.token_id(), p).ok());
  EXPECT_TRUE(absl::IsPermissionDenied(authority.Verify(issued->token, p).status()));
  EXPECT_TRUE(absl::IsPermissionDenied(authority.Verify(issued_child->token, p).status()));

  auto later = authority.Issue(Claims(), absl::Seconds(60));
  ASSERT_TRUE(later.ok());
  now += absl::Seconds(61);
  EXPECT_TRUE(absl::IsUnauthenticated(authority.Verify(later->token, p).status()));
}

TEST(TokenAuthorityTest, AnExchangeTreeSharesItsQuotas) {
  TokenAuthority authority(std::string(32, 's'));
  v1::TokenClaims root = Claims();
  root.set_call_quota(3);
  auto issued_root = authority.Issue(root, absl::Seconds(60));
  ASSERT_TRUE(issued_root.ok());
  std::vector<v1::TokenClaims> children;
  for (int i = 0; i < 5; ++i) {
    v1::TokenClaims child = Claims();
    child.set_call_quota(2);  // narrower than the root's, but five of them
    child.add_ancestor_ids(issued_root->claims.token_id());
    child.add_ancestor_call_quotas(3);
    auto issued = authority.Issue(child, absl::Seconds(60));
    ASSERT_TRUE(issued.ok());
    children.push_back(issued->claims);
  }
  int calls = 0;
  for (const v1::TokenClaims& child : children) {
    while (authority.ConsumeCall(child).ok()) ++calls;
  }
  EXPECT_EQ(calls, 3);
  absl::Status exhausted = authority.ConsumeCall(children[4]);
  EXPECT_TRUE(absl::IsResourceExhausted(exhausted)) << exhausted;
  EXPECT_NE(exhausted.message().find(issued_root->claims.token_id()), absl::string_view::npos);
  EXPECT_EQ(authority.CallsRemaining(children[4]), 0u);
  EXPECT_TRUE(absl::IsResourceExhausted(authority.ConsumeCall(issued_root->claims)));
  // A child's own narrower quota holds too.
  v1::TokenClaims wide = Claims();
  auto issued_wide = authority.Issue(wide, absl::Seconds(60));
  v1::TokenClaims narrow = Claims();
  narrow.set_call_quota(1);
  narrow.add_ancestor_ids(issued_wide->claims.token_id());
  narrow.add_ancestor_call_quotas(0);
  auto issued_narrow = authority.Issue(narrow, absl::Seconds(60));
  EXPECT_TRUE(authority.ConsumeCall(issued_narrow->claims).ok());
  EXPECT_TRUE(absl::IsResourceExhausted(authority.ConsumeCall(issued_narrow->claims)));
}

TEST(TokenAuthorityTest, OnlyTheAudienceMayUseAndOnlyTheOwnerInspect) {
  TokenAuthority authority(std::string(32, 's'));
  Caller q;
  q.principal = "q";
  q.identity = "key:0123456789abcdef";
  v1::TokenClaims claims = Claims();
  claims.set_owner("uid:1");
  auto mine = authority.Issue(claims, absl::Seconds(60));
  ASSERT_TRUE(mine.ok());
  absl::Status denied = authority.Verify(mine->token, q).status();
  EXPECT_TRUE(absl::IsPermissionDenied(denied)) << denied;
  EXPECT_EQ(denied.message().find("libm"), absl::string_view::npos) << denied;
  EXPECT_TRUE(absl::IsPermissionDenied(authority.VerifyForInspect(mine->token, q).status()));
  // Same principal, another identity: may use, may not inspect.
  EXPECT_TRUE(authority.Verify(mine->token, CallerP("uid:2")).ok());
  EXPECT_TRUE(absl::IsPermissionDenied(
      authority.VerifyForInspect(mine->token, CallerP("uid:2")).status()));
  EXPECT_TRUE(authority.VerifyForInspect(mine->token, CallerP("uid:1")).ok());
  claims.add_audience("q");
  auto theirs = authority.Issue(claims, absl::Seconds(60));
  EXPECT_TRUE(authority.Verify(theirs->token, q).ok());
  EXPECT_TRUE(authority.VerifyForInspect(theirs->token, q).ok());
  // The audience replaces the default: "p" is no longer in it.
  EXPECT_TRUE(absl::IsPermissionDenied(authority.Verify(theirs->token, CallerP()).status()));
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
  auto function = [](const char* name) {
    return std::vector<NameToResolve>{{name, NameToResolve::Use::kFunction, "", ""}};
  };
  EXPECT_TRUE(AuthorizeOpen(*narrower, "t", "/lib/libm.so.6", function("cos"), false).ok());
  EXPECT_TRUE(absl::IsPermissionDenied(
      AuthorizeOpen(*narrower, "t", "/lib/libm.so.6", function("sin"), false)));
  v1::Permission wide = parent;
  wide.mutable_libraries(0)->clear_allow_symbols();
  EXPECT_FALSE(IsSubset(wide, parent));
}

}  // namespace
}  // namespace ffibroker
