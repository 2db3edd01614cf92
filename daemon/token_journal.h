// TokenJournal: the append-only file that makes token state durable.
//
// Revocations, quota use and who owns each token are written here, and
// fsync'd, before the RPC that changed them answers; the daemon replays the
// file at start, so a restart (even after kill -9) revives nothing. The
// records are ffibroker.daemon.v1.TokenJournalRecord messages; this file
// pair knows only the framing, not what the records mean (TokenAuthority).
//
// Format (all integers little-endian):
//
//   header := "FFBTJ001" | key_id[16] | mac0[32]
//   record := length:u32 | ~length:u32 | payload[length] | mac[32]
//
// key     = HMAC-SHA256(token secret, "ffibroker-token-journal-v1")
// key_id  = first 16 bytes of HMAC-SHA256(token secret, "ffibroker-token-journal-id")
//
// The token secret is the token_secret_file's, or with a keyring the
// active key's when the journal was last rewritten: it is opened under
// whichever key of the keyring its key_id names and rewritten under the
// active key at start and after every rotation (Rekey).
// mac0    = HMAC-SHA256(key, magic | key_id)
// mac_i   = HMAC-SHA256(key, mac_{i-1} | length | ~length | payload)
//
// 1 <= length <= kMaxJournalRecordBytes. The MACs form a chain, so a record
// cannot be altered, dropped or moved without the secret. OpenSSL provides
// the HMAC (it already signs the tokens); a CRC would catch accidents but
// not tampering by someone who can write the file but not read the secret.
//
// Reading (Open) checks everything and refuses — FAILED_PRECONDITION naming
// the file, the byte offset and the problem — a bad header, a journal of
// another secret, a length out of bounds or whose complement does not
// match, a MAC mismatch, a payload that does not parse. One case is
// repaired instead: a last record cut short by the end of the file (a
// crash in the middle of an append). Such a record was never fsync'd in
// full, so its RPC never answered and dropping it loses nothing that was
// promised; Open truncates it and returns a warning naming the file, the
// offset and the bytes dropped, which the daemon logs.
//
// Growth is bounded by Rewrite: the caller writes a snapshot of the live
// state to "PATH.tmp", fsyncs it, renames it over PATH and fsyncs the
// directory (done at every start and whenever the file has doubled).
//
// Not thread-safe: TokenAuthority calls it under its own lock.
//
//   std::vector<daemon::v1::TokenJournalRecord> records;
//   std::string warning;
//   ASSIGN_OR_RETURN(auto journal, TokenJournal::Open(path, secret, &records, &warning));
//   RETURN_IF_ERROR(journal->Append(record));   // durable on return
#ifndef FFIBROKER_DAEMON_TOKEN_JOURNAL_H_
#define FFIBROKER_DAEMON_TOKEN_JOURNAL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/unique_fd.h"
#include "ffibroker/daemon/v1/token_journal.pb.h"

namespace ffibroker {

inline constexpr size_t kMaxJournalRecordBytes = 64 * 1024;
// A journal larger than this is refused at start (it is compacted to the
// live tokens at every start and whenever it doubles, so only damage or a
// flood of live tokens can reach it).
inline constexpr uint64_t kMaxJournalBytes = uint64_t{256} << 20;
inline constexpr char kTokenJournalFile[] = "tokens.journal";

// Makes sure `dir` (the daemon's --state-dir) exists: creates it, mode
// 0700, if missing (its parent must exist). FAILED_PRECONDITION if it is not
// a directory owned by the daemon's user, or group or others may write it.
absl::Status PrepareStateDirectory(const std::string& dir);

class TokenJournal {
 public:
  // Opens the journal at `path` (creating an empty one, 0600, if there is
  // none) and appends its records to `*records`. A torn last record is
  // truncated and described in `*warning` (empty otherwise).
  // FAILED_PRECONDITION for a damaged journal, one written under another
  // secret, or a file that is not a private regular file of ours; the
  // message names the file, the offset and the problem.
  static absl::StatusOr<std::unique_ptr<TokenJournal>> Open(
      const std::string& path, absl::string_view secret,
      std::vector<daemon::v1::TokenJournalRecord>* records, std::string* warning);
  // The same with the keys of a keyring: the journal may have been written
  // under any of `secrets` (the one active when it was last rewritten); a
  // new journal is written under secrets[0]. Rekey to move it to the
  // active key.
  static absl::StatusOr<std::unique_ptr<TokenJournal>> Open(
      const std::string& path, const std::vector<std::string>& secrets,
      std::vector<daemon::v1::TokenJournalRecord>* records, std::string* warning);

  TokenJournal(const TokenJournal&) = delete;
  TokenJournal& operator=(const TokenJournal&) = delete;

  // Appends `record` and fsyncs. INVALID_ARGUMENT if it serializes to more
  // than kMaxJournalRecordBytes; UNAVAILABLE (naming the file) if the write
  // or fsync fails — the file is then cut back to its last good record, and
  // if even that fails every later Append fails too.
  absl::Status Append(const daemon::v1::TokenJournalRecord& record);

  // Replaces the whole file with `records` (a snapshot), atomically: a
  // crash leaves either the old file or the new one.
  absl::Status Rewrite(const std::vector<daemon::v1::TokenJournalRecord>& records);

  // Rewrite, under the key derived from `secret` from now on (a key
  // rotation). On failure the file and the key stay as they were.
  absl::Status Rekey(absl::string_view secret,
                     const std::vector<daemon::v1::TokenJournalRecord>& records);

  // Bytes in the file now.
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  TokenJournal(std::string path, std::string key, std::string key_id)
      : path_(std::move(path)), key_(std::move(key)), key_id_(std::move(key_id)) {}
  // The header and its MAC for this key.
  std::string Header() const;
  // `record` framed after `*mac` (updated to the new record's MAC).
  absl::StatusOr<std::string> Frame(const daemon::v1::TokenJournalRecord& record,
                                    std::string* mac) const;

  const std::string path_;
  std::string key_;
  std::string key_id_;
  UniqueFd fd_;
  uint64_t size_ = 0;
  std::string last_mac_;  // of the last record (mac0 if none)
  bool broken_ = false;   // a failed append could not be undone
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_TOKEN_JOURNAL_H_
