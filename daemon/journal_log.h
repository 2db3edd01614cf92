// Logging to the systemd journal with structured fields.
//
// Under systemd, ffibrokerd's stderr is a stream to journald and systemd
// sets JOURNAL_STREAM to its "DEVICE:INODE". When that matches stderr (or
// --log-target=journal says so), every log line goes to journald with
// sd_journal_sendv instead, as one entry with
//
//   MESSAGE=the text      PRIORITY=3 (error), 4 (warning), 6 (info), 7 (debug)
//   SYSLOG_IDENTIFIER=ffibrokerd
//   FFIBROKER_PRINCIPAL, FFIBROKER_SESSION ("s12"), FFIBROKER_LIBRARY (its
//   canonical path), FFIBROKER_SYMBOL, FFIBROKER_SYSCALL (name), FFIBROKER_SIGNAL
//   (name), FFIBROKER_WORKER_PID, FFIBROKER_EVENT — those the call site knows
//   (common/log.h LogFields)
//
// so `journalctl -o verbose FFIBROKER_LIBRARY=/usr/lib/libfoo.so` filters.
// Otherwise the plain lines of common/log.h go to stderr, as before.
//
// Thread-safe once installed.
//
//   InstallLogTarget(LogTarget::kAuto, "ffibrokerd");
#ifndef FFIBROKER_DAEMON_JOURNAL_LOG_H_
#define FFIBROKER_DAEMON_JOURNAL_LOG_H_

#include <string>
#include <vector>

#include "common/log_event.h"

namespace ffibroker {

enum class LogTarget {
  kAuto,     // the journal if JOURNAL_STREAM names stderr, else stderr
  kJournal,  // the journal
  kStderr,   // plain lines on stderr
};

// True if `journal_stream` (the JOURNAL_STREAM value, may be null) is
// "DEVICE:INODE" of the open file `fd`.
bool JournalStreamMatches(const char* journal_stream, int fd);

// Whether `target` means the journal, given JOURNAL_STREAM and stderr.
bool ChooseJournal(LogTarget target, const char* journal_stream, int stderr_fd);

// The fields of one journal entry, each "NAME=value" (values may hold any
// bytes, newlines included: sd_journal_sendv takes them as they are).
std::vector<std::string> JournalFields(LogLevel level, const LogFields& fields,
                                       const std::string& message, const char* program);

// Chooses (ChooseJournal with the environment and STDERR_FILENO) and, for
// the journal, installs the sink (SetLogSink). Returns whether the journal
// was chosen.
bool InstallLogTarget(LogTarget target, const char* program);

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_JOURNAL_LOG_H_
