#include "client/cli/batch_command.h"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/cli/cli_output.h"
#include "client/cli/typed_call.h"
#include "common/limits.h"
#include "common/literal.h"
#include "common/signature.h"
#include "common/type_table.h"
#include "common/utf8.h"
#include "common/value_codec.h"

namespace ffibroker {
namespace {

constexpr uint64_t kMaxBatchInputBytes = 2 * kMaxGrpcMessageBytes;

}  // namespace

int RunBatch(const std::string& address, const ConnectOptions& options, const std::string& token,
             absl::Duration timeout, const std::vector<std::string>& args) {
  if (args.size() < 4) return Usage("batch needs LIBRARY, FILE ('-': stdin) and 'DECLARATION's");
  ClassTable none;
  std::map<std::string, ResolvedSignature> signatures;
  std::vector<std::string> declarations(args.begin() + 3, args.end());
  for (const std::string& text : declarations) {
    absl::StatusOr<Declaration> decl = ParseDeclaration(text);
    if (!decl.ok()) return Fail(kExitUsage, decl.status());
    absl::StatusOr<ResolvedSignature> sig = ResolveSignature(decl->signature, none);
    if (!sig.ok()) return Fail(kExitUsage, sig.status());
    signatures.emplace(decl->name, *std::move(sig));
  }
  const std::string source = args[2] == "-" ? "standard input" : args[2];
  std::ifstream file;
  if (args[2] != "-") {
    file.open(args[2]);
    if (!file) return Usage(absl::StrCat("cannot read ", args[2], ": ", std::strerror(errno)));
  }
  std::istream& in = args[2] == "-" ? std::cin : file;
  std::vector<v1::BatchCall> calls;
  std::string line;
  uint64_t total = 0;
  for (int number = 1;; ++number) {
    // Bounded: a batch is one request, so input past twice its largest
    // size (hex doubles a buffer) can never be sent.
    line.clear();
    char c;
    while (total < kMaxBatchInputBytes && in.get(c) && c != '\n') {
      line.push_back(c);
      ++total;
    }
    if (total >= kMaxBatchInputBytes) {
      return Usage(absl::StrCat(source, " holds more than ", kMaxBatchInputBytes,
                                " bytes, more than one batch request can carry (line ", number,
                                ")"));
    }
    if (in.bad()) {
      return Usage(absl::StrCat("cannot read ", source, " (line ", number, "): ",
                                std::strerror(errno)));
    }
    if (line.empty() && in.eof()) break;
    ++total;  // the newline
    if (line.find('\0') != std::string::npos) {
      return Usage(absl::StrCat("line ", number, " of ", source, " holds a NUL byte"));
    }
    absl::string_view text = absl::StripAsciiWhitespace(line);
    if (text.empty() || text[0] == '#') continue;
    std::vector<std::string> words = absl::StrSplit(text, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    auto it = signatures.find(words[0]);
    if (it == signatures.end()) {
      return Usage(absl::StrCat("line ", number, ": '", BoundedStatusText(words[0], 200),
                                "' is not declared"));
    }
    const ResolvedSignature& sig = it->second;
    if (words.size() - 1 != sig.params.size()) {
      return Usage(absl::StrCat("line ", number, ": ", words[0], " takes ", sig.params.size(),
                                " argument(s), ", words.size() - 1, " given"));
    }
    v1::BatchCall call;
    call.set_symbol(words[0]);
    for (size_t i = 0; i < sig.params.size(); ++i) {
      absl::StatusOr<v1::Value> value = ParsePlainArg(*sig.params[i], words[i + 1]);
      if (!value.ok()) {
        return Usage(absl::StrCat(
            "line ", number, ", ",
            DescribeArgument(static_cast<int>(i), sig.proto.params(static_cast<int>(i))), ": ",
            value.status().message()));
      }
      *call.add_args() = *std::move(value);
    }
    calls.push_back(std::move(call));
  }
  if (calls.empty()) return Usage(absl::StrCat(source, " holds no call"));

  absl::StatusOr<std::unique_ptr<Client>> client =
      Client::Connect(address, options, std::min(timeout, absl::Seconds(5)));
  if (!client.ok()) return Fail(kExitUnreachable, client.status());
  absl::StatusOr<std::unique_ptr<Session>> session = (*client)->CreateSession();
  if (!session.ok()) return Fail(kExitFailed, session.status());
  absl::StatusOr<std::unique_ptr<Library>> lib =
      (*session)->OpenLibrary(args[1], declarations, token);
  if (!lib.ok()) return Fail(kExitFailed, lib.status());
  absl::StatusOr<v1::CallBatchResponse> response = (*lib)->CallBatch(calls, timeout);
  if (!response.ok()) return Fail(kExitFailed, response.status());
  int failed = 0;
  for (int i = 0; i < response->outcomes_size(); ++i) {
    const v1::CallBatchResponse::Outcome& outcome = response->outcomes(i);
    if (outcome.status().code() != 0) {
      ++failed;
      std::printf("%d: error %s: %s\n", i,
                  absl::StatusCodeToString(static_cast<absl::StatusCode>(outcome.status().code()))
                      .c_str(),
                  outcome.status().message().c_str());
    } else if (outcome.response().has_result()) {
      std::printf("%d: %s\n", i, FormatValue(outcome.response().result()).c_str());
    } else {
      std::printf("%d:\n", i);
    }
  }
  return failed == 0 ? 0 : kExitFailed;
}

}  // namespace ffibroker
