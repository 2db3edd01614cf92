#include "daemon/token_journal.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"

namespace ffibroker {
namespace {

constexpr char kMagic[] = "FFBTJ001";  // without its NUL
constexpr size_t kMagicBytes = sizeof kMagic - 1;
constexpr size_t kKeyIdBytes = 16;
constexpr size_t kMacBytes = 32;
constexpr size_t kHeaderBytes = kMagicBytes + kKeyIdBytes + kMacBytes;
constexpr size_t kFrameBytes = 8;  // length and its complement

std::string Hmac(absl::string_view key, absl::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  ::HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

bool MacEqual(absl::string_view a, absl::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// Writes all of `data` at the current offset, retrying on EINTR and short
// writes; errno on failure.
bool WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

absl::Status Unavailable(const std::string& path, absl::string_view what, int err) {
  return absl::UnavailableError(absl::StrCat("token journal ", path, ": ", what, ": ",
                                             std::strerror(err)));
}

std::string Directory(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

absl::Status PrepareStateDirectory(const std::string& dir) {
  if (dir.empty() || dir[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("--state-dir: '", dir, "' is not an absolute path"));
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create the state directory ", dir, ": ", std::strerror(errno)));
  }
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("state directory ", dir, " is not a directory"));
  }
  if (st.st_uid != ::geteuid() || (st.st_mode & 022) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "state directory ", dir, " must be owned by uid ", ::geteuid(),
        " and writable by nobody else (it is mode ", absl::StrFormat("%04o", st.st_mode & 07777),
        " owned by uid ", st.st_uid, ")"));
  }
  return absl::OkStatus();
}

std::string TokenJournal::Header() const {
  std::string header(kMagic, kMagicBytes);
  header += key_id_;
  header += Hmac(key_, header);
  return header;
}

absl::StatusOr<std::string> TokenJournal::Frame(const daemon::v1::TokenJournalRecord& record,
                                                std::string* mac) const {
  std::string payload = record.SerializeAsString();
  if (payload.empty() || payload.size() > kMaxJournalRecordBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "token journal record of ", payload.size(), " bytes (must be 1..",
        kMaxJournalRecordBytes, ")"));
  }
  std::string framed;
  PutU32(&framed, static_cast<uint32_t>(payload.size()));
  PutU32(&framed, ~static_cast<uint32_t>(payload.size()));
  framed += payload;
  *mac = Hmac(key_, absl::StrCat(*mac, framed));
  framed += *mac;
  return framed;
}

namespace {

std::string JournalKey(absl::string_view secret) {
  return Hmac(secret, "ffibroker-token-journal-v1");
}

std::string JournalKeyId(absl::string_view secret) {
  return Hmac(secret, "ffibroker-token-journal-id").substr(0, kKeyIdBytes);
}

}  // namespace

absl::StatusOr<std::unique_ptr<TokenJournal>> TokenJournal::Open(
    const std::string& path, absl::string_view secret,
    std::vector<daemon::v1::TokenJournalRecord>* records, std::string* warning) {
  return Open(path, std::vector<std::string>{std::string(secret)}, records, warning);
}

absl::Status TokenJournal::Rekey(absl::string_view secret,
                                 const std::vector<daemon::v1::TokenJournalRecord>& records) {
  std::string old_key = std::move(key_);
  std::string old_key_id = std::move(key_id_);
  key_ = JournalKey(secret);
  key_id_ = JournalKeyId(secret);
  absl::Status rewritten = Rewrite(records);
  if (!rewritten.ok()) {
    key_ = std::move(old_key);  // the old file, under the old key, stays
    key_id_ = std::move(old_key_id);
  }
  return rewritten;
}

absl::StatusOr<std::unique_ptr<TokenJournal>> TokenJournal::Open(
    const std::string& path, const std::vector<std::string>& secrets,
    std::vector<daemon::v1::TokenJournalRecord>* records, std::string* warning) {
  warning->clear();
  if (secrets.empty()) return absl::InvalidArgumentError("token journal: no secret");
  std::unique_ptr<TokenJournal> journal(
      new TokenJournal(path, JournalKey(secrets[0]), JournalKeyId(secrets[0])));
  auto refuse = [&path](uint64_t offset, absl::string_view problem) {
    return absl::FailedPreconditionError(absl::StrCat(
        "token journal ", path, " is damaged at offset ", offset, ": ", problem,
        "; the daemon will not start without its token state (restore the file, or "
        "remove it to forget every revocation and quota use)"));
  };
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid() && errno == ENOENT) {
    RETURN_IF_ERROR(journal->Rewrite({}));  // a new, empty journal
    return journal;
  }
  if (!fd.valid()) return Unavailable(path, "open", errno);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid() ||
      (st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "token journal ", path, " must be a regular file owned by uid ", ::geteuid(),
        " with mode 0600 or stricter"));
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxJournalBytes) {
    return refuse(0, absl::StrCat("the file has ", st.st_size, " bytes, more than the ",
                                  kMaxJournalBytes, " a journal may have"));
  }
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < data.size()) {
    ssize_t n = ::pread(fd.get(), data.data() + got, data.size() - got,
                        static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Unavailable(path, "read", errno);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  data.resize(got);

  if (data.size() < kHeaderBytes) {
    return refuse(data.size(), absl::StrCat("the header needs ", kHeaderBytes,
                                            " bytes, the file has ", data.size()));
  }
  if (data.compare(0, kMagicBytes, kMagic) != 0) {
    return refuse(0, "not a token journal (bad magic)");
  }
  // Written under whichever key was active then: any key of the keyring.
  for (const std::string& secret : secrets) {
    std::string id = JournalKeyId(secret);
    if (MacEqual(absl::string_view(data).substr(kMagicBytes, kKeyIdBytes), id)) {
      journal->key_ = JournalKey(secret);
      journal->key_id_ = std::move(id);
      break;
    }
  }
  const std::string header = journal->Header();
  if (!MacEqual(absl::string_view(data).substr(kMagicBytes, kKeyIdBytes),
                absl::string_view(header).substr(kMagicBytes, kKeyIdBytes))) {
    return refuse(kMagicBytes,
                  "it was written under another token secret, neither token_secret_file "
                  "nor a key of the token keyring (or its header is damaged); tokens of "
                  "another secret are not valid here");
  }
  if (!MacEqual(absl::string_view(data).substr(0, kHeaderBytes), header)) {
    return refuse(kMagicBytes + kKeyIdBytes, "the header's MAC does not match");
  }
  std::string mac = header.substr(kHeaderBytes - kMacBytes);
  size_t offset = kHeaderBytes;
  while (offset < data.size()) {
    size_t left = data.size() - offset;
    std::string torn;
    if (left < kFrameBytes) {
      torn = absl::StrCat("its length field has only ", left, " of ", kFrameBytes, " bytes");
    } else {
      uint32_t length = GetU32(data.data() + offset);
      if (GetU32(data.data() + offset + 4) != ~length) {
        return refuse(offset, "the record's length field is damaged");
      }
      if (length == 0 || length > kMaxJournalRecordBytes) {
        return refuse(offset, absl::StrCat("a record of ", length, " bytes (must be 1..",
                                           kMaxJournalRecordBytes, ")"));
      }
      size_t need = kFrameBytes + length + kMacBytes;
      if (left < need) {
        torn = absl::StrCat("the record needs ", need, " bytes, the file ends after ", left);
      } else {
        absl::string_view framed(data.data() + offset, kFrameBytes + length);
        std::string expected = Hmac(journal->key_, absl::StrCat(mac, framed));
        if (!MacEqual(absl::string_view(data).substr(offset + kFrameBytes + length, kMacBytes),
                      expected)) {
          return refuse(offset, "the record's MAC does not match (altered, reordered or "
                                "a record before it was removed)");
        }
        daemon::v1::TokenJournalRecord record;
        if (!record.ParseFromArray(data.data() + offset + kFrameBytes,
                                   static_cast<int>(length))) {
          return refuse(offset, "the record does not parse");
        }
        records->push_back(std::move(record));
        mac = std::move(expected);
        offset += need;
        continue;
      }
    }
    // A torn last record: never acknowledged (see the file comment).
    if (::ftruncate(fd.get(), static_cast<off_t>(offset)) != 0 || ::fsync(fd.get()) != 0) {
      return Unavailable(path, absl::StrCat("truncate a torn record at offset ", offset), errno);
    }
    *warning = absl::StrCat("token journal ", path, ": the last record, at offset ", offset,
                            ", is torn (", torn, "; a crash during an append); dropped ",
                            left, " bytes — that operation had not been acknowledged");
    data.resize(offset);
    break;
  }
  if (::lseek(fd.get(), 0, SEEK_END) < 0) return Unavailable(path, "seek", errno);
  journal->fd_ = std::move(fd);
  journal->size_ = data.size();
  journal->last_mac_ = std::move(mac);
  return journal;
}

absl::Status TokenJournal::Append(const daemon::v1::TokenJournalRecord& record) {
  if (broken_) {
    return absl::UnavailableError(absl::StrCat(
        "token journal ", path_, " could not be repaired after a failed write; restart "
        "the daemon"));
  }
  std::string mac = last_mac_;
  ASSIGN_OR_RETURN(std::string framed, Frame(record, &mac));
  if (WriteAll(fd_.get(), framed) && ::fdatasync(fd_.get()) == 0) {
    size_ += framed.size();
    last_mac_ = std::move(mac);
    return absl::OkStatus();
  }
  int err = errno;
  // Cut back to the last good record so later appends stay readable.
  if (::ftruncate(fd_.get(), static_cast<off_t>(size_)) != 0 ||
      ::lseek(fd_.get(), static_cast<off_t>(size_), SEEK_SET) < 0) {
    broken_ = true;
  }
  return Unavailable(path_, "write", err);
}

absl::Status TokenJournal::Rewrite(
    const std::vector<daemon::v1::TokenJournalRecord>& records) {
  std::string data = Header();
  std::string mac = data.substr(kHeaderBytes - kMacBytes);
  for (const daemon::v1::TokenJournalRecord& record : records) {
    ASSIGN_OR_RETURN(std::string framed, Frame(record, &mac));
    data += framed;
  }
  const std::string tmp = path_ + ".tmp";
  ::unlink(tmp.c_str());
  UniqueFd fd(::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) return Unavailable(tmp, "create", errno);
  if (!WriteAll(fd.get(), data) || ::fsync(fd.get()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Unavailable(tmp, "write", err);
  }
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Unavailable(path_, "rename", err);
  }
  UniqueFd dir(::open(Directory(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid() || ::fsync(dir.get()) != 0) {
    return Unavailable(path_, "fsync its directory", errno);
  }
  fd_ = std::move(fd);
  size_ = data.size();
  last_mac_ = std::move(mac);
  broken_ = false;
  return absl::OkStatus();
}

}  // namespace ffibroker
