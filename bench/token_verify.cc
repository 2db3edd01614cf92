// token_verify: the size of a typical capability token and the median cost
// of verifying it (TokenAuthority::Verify: base64 decode, HMAC-SHA256,
// constant-time compare, claims parse, expiry and revocation checks).
//
//   build/bench/token_verify [--batches=N]   (no daemon needed)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "absl/strings/escaping.h"
#include "common/cli_flags.h"
#include "daemon/permission.h"
#include "daemon/token_authority.h"

int main(int argc, char** argv) {
  using namespace ffibroker;
  int64_t batches = 101, per_batch = 1000;
  CLI::App app("Token verifications per second.", "token_verify");
  app.add_option("--batches", batches, "batches to take the median of")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--per-batch", per_batch, "verifications per batch")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  if (std::optional<int> exit_code = ParseFlags(app, argc, argv)) return *exit_code;

  absl::StatusOr<std::string> secret = LoadOrGenerateTokenSecret("");
  if (!secret.ok()) return 1;
  TokenAuthority authority(*secret);
  // A typical token: one library, two symbols, both operations, a quota.
  v1::TokenClaims claims;
  claims.set_principal("plugin-host");
  claims.set_owner("uid:1000");
  claims.set_session_serial(12);
  v1::PermissionLibrary* lib = claims.mutable_permission()->add_libraries();
  lib->set_library("/usr/lib/x86_64-linux-gnu/libm.so.6");
  lib->add_allow_symbols("cos");
  lib->add_allow_symbols("sin");
  ApplyPermissionDefaults(claims.mutable_permission());
  claims.set_call_quota(1000);
  absl::StatusOr<IssuedToken> issued = authority.Issue(claims, absl::Hours(1));
  if (!issued.ok()) return 1;
  Caller caller;
  caller.principal = "plugin-host";
  caller.identity = "uid:1000";
  std::string raw;
  absl::WebSafeBase64Unescape(issued->token.substr(6), &raw);

  std::vector<double> ns;
  for (int64_t b = 0; b < batches; ++b) {
    auto start = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < per_batch; ++i) {
      if (!authority.Verify(issued->token, caller).ok()) return 1;
    }
    std::chrono::duration<double, std::nano> took = std::chrono::steady_clock::now() - start;
    ns.push_back(took.count() / static_cast<double>(per_batch));
  }
  std::sort(ns.begin(), ns.end());
  std::printf("token: %zu chars on the wire, %zu bytes decoded = %zu bytes claims + 32 bytes "
              "HMAC-SHA256\n",
              issued->token.size(), raw.size(), raw.size() - 32);
  std::printf("verify: median %.0f ns (min %.0f, max %.0f) over %lld batches of %lld\n",
              ns[ns.size() / 2], ns.front(), ns.back(), static_cast<long long>(batches),
              static_cast<long long>(per_batch));
  return 0;
}
