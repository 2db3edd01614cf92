// The one table of size limits (documented in docs/limits.md).
//
// Every bound on a size, count or nesting that the daemon, the worker and
// the client enforce is defined here, once; the message-size limits of the
// gRPC API and of the worker channel are derived from the data limits, so
// every value up to a documented maximum fits every hop. A request past a
// limit gets INVALID_ARGUMENT (a definition that can never be valid) or
// RESOURCE_EXHAUSTED (a size or an amount used up), naming the limit.
//
// The policy may lower some of these per daemon (limits.max_buffer_bytes,
// limits.max_string_bytes in policy.proto); it can never raise them.
#ifndef FFIBROKER_COMMON_LIMITS_H_
#define FFIBROKER_COMMON_LIMITS_H_

#include <cstddef>
#include <cstdint>

namespace ffibroker {

inline constexpr uint64_t kKiB = uint64_t{1} << 10;
inline constexpr uint64_t kMiB = uint64_t{1} << 20;

// --- data ---

// The largest byte buffer one argument may carry (in, out or inout); the
// default and the maximum of the policy's limits.max_buffer_bytes.
inline constexpr uint32_t kMaxBufferLength = 16 * kMiB;
// The default and the largest length of a C string argument or result
// (the policy's limits.max_string_bytes; a declared cstr[N] may lower it).
inline constexpr uint32_t kDefaultMaxStringLength = 64 * kKiB;
// The most bytes of arguments one call may carry in total (buffers,
// strings, classes by value, scalars, in their native encoding), and the
// most bytes its reply may carry (the result plus out and inout buffers):
// one maximal buffer plus 1 MiB of everything else.
inline constexpr uint64_t kMaxCallPayloadBytes = kMaxBufferLength + kMiB;

// --- classes (per session) ---

inline constexpr int kMaxClasses = 256;
// What one OpenLibraryRequest may declare.
inline constexpr int kMaxSymbolsPerOpen = 256;
inline constexpr int kMaxStaticsPerOpen = 64;
// One declaration written as text (a function, a static, or a class of up
// to kMaxFields fields).
inline constexpr size_t kMaxDeclarationTextBytes = 64 * kKiB;
inline constexpr int kMaxFields = 256;
// Elements of one array dimension.
inline constexpr uint32_t kMaxArrayLength = 4096;
// Arrays of arrays: u8[2][2] nests 2 deep.
inline constexpr int kMaxArrayNesting = 8;
// Values of one enum type.
inline constexpr int kMaxEnumValues = 4096;
// The largest class (its C size); no larger than a buffer.
inline constexpr uint64_t kMaxClassBytes = kMaxBufferLength;
// The most scalar values one class (or one inline value: a field, a static)
// holds, counting every array element: bounds what one ReadFields answer or
// one class argument costs the daemon to encode and decode.
inline constexpr uint64_t kMaxInlineValues = 64 * kKiB;
// Memory the type descriptors of one session's classes may use (every
// TypeDesc, its names and its libffi element arrays, and the stored
// definitions).
inline constexpr uint64_t kMaxDescriptorBytesPerSession = 4 * kMiB;

// --- messages (derived) ---

// Room for everything in a message but its payload: field tags and
// lengths, names, up to kMaxParams small arguments, a result, errno.
inline constexpr uint64_t kMessageEnvelopeBytes = 1 * kMiB;
// The largest gRPC message the daemon and the C++ client send or accept.
// A class or array value travels as one Value per element, so it is
// bounded by kMaxInlineValues (at most ~12 bytes each) rather than by its
// C size.
inline constexpr uint64_t kMaxGrpcMessageBytes =
    kMaxCallPayloadBytes + kMaxInlineValues * 16 + kMessageEnvelopeBytes;
// HTTP/2 streams (RPCs) one connection to the daemon may have open at once
// (SETTINGS_MAX_CONCURRENT_STREAMS): a client past it waits for one to end.
inline constexpr uint32_t kMaxStreamsPerConnection = 128;
// The memory gRPC may take in the daemon for all connections together
// (its ResourceQuota): under pressure it shrinks its flow-control windows.
inline constexpr uint64_t kMaxGrpcMemoryBytes = 1024 * kMiB;
// The largest message on the daemon<->worker channel (the worker protocol
// carries native bytes: payload plus envelope). The transport fragments a
// message into packets of at most kChannelPacketBytes.
inline constexpr uint64_t kMaxWorkerMessageBytes = kMaxCallPayloadBytes + kMessageEnvelopeBytes;
inline constexpr uint64_t kChannelPacketBytes = 64 * kKiB;

// Hard caps on the policy's Limits.max_batch_calls and max_pool_size.
inline constexpr uint32_t kMaxBatchCalls = 100000;
inline constexpr uint32_t kMaxPoolSize = 64;
// Callbacks (docs/callbacks.md): the most closures one worker allocates
// before lockdown (worker::v1::Open.callback_closures), i.e. the most
// callbacks bound in one worker at once (per-call and persistent), and how
// deeply requests sent by callback handlers may nest on one worker thread.
inline constexpr uint32_t kMaxCallbackClosures = 1024;
inline constexpr int kMaxCallbackNesting = 8;
// Requests a worker queues for its main loop while it waits for a callback's
// answer (the daemon never has more outstanding than this).
inline constexpr size_t kMaxWorkerQueuedRequests = 65536;
// Responses a CallStream holds for a client that does not read them; past
// it the daemon stops reading the stream's requests until it catches up.
inline constexpr size_t kStreamMaxQueuedResponses = 1024;
// Calls a CallStream reads past its calls-in-flight limit, to reach the
// answer of a callback invocation behind them, and holds until a running
// call ends (in number, and in bytes; one call of any allowed size is
// held when none is); a call past either is refused, and reading goes on.
inline constexpr size_t kStreamMaxHeldCalls = 1024;
inline constexpr size_t kStreamMaxHeldCallBytes = size_t{16} << 20;
// Bytes of requests the daemon holds for one worker whose channel is full
// (it is busy and reads nothing); past it a request is refused
// (RESOURCE_EXHAUSTED) instead of waiting. A request of any allowed size
// is taken when nothing is held.
inline constexpr uint64_t kMaxChannelBacklogBytes = uint64_t{64} << 20;

// Callbacks on a CallStream (docs/callbacks.md): how many callbacks one
// stream may register, how many persistent callbacks it may hold bound in
// workers, and how many invocations may wait for the client's answer.
inline constexpr size_t kMaxCallbacksPerStream = 256;
inline constexpr uint32_t kMaxPersistentCallbacksPerWorker = 64;
inline constexpr size_t kMaxOutstandingInvocations = 1024;
// ... the argument bytes of those invocations together, the borrowed
// handles invocations may make (class pointers), and the length of a
// callback's name.
inline constexpr size_t kMaxInvocationBytesWaiting = 64u << 20;
inline constexpr size_t kMaxCallbackHandlesPerStream = 4096;
inline constexpr size_t kMaxCallbackNameBytes = 256;

static_assert(kMaxClassBytes <= kMaxCallPayloadBytes,
              "a class by value must fit in one call's payload");
static_assert(kMaxGrpcMessageBytes < (uint64_t{1} << 31), "gRPC sizes are ints");
static_assert(kMaxWorkerMessageBytes < (uint64_t{1} << 31), "protobuf sizes are ints");

}  // namespace ffibroker

#endif  // FFIBROKER_COMMON_LIMITS_H_
