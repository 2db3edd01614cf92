// Helpers shared by the fuzz targets (tests/fuzz, docs/testing.md): random
// types, classes and values drawn from libFuzzer's input, and the invariant
// check every target uses. Never part of a production binary.
#ifndef FFIBROKER_TESTS_FUZZ_FUZZ_VALUES_H_
#define FFIBROKER_TESTS_FUZZ_FUZZ_VALUES_H_

#include <fuzzer/FuzzedDataProvider.h>

#include <string>
#include <vector>

#include "common/type_desc.h"
#include "ffibroker/v1/types.pb.h"

namespace ffibroker::fuzz {

// Aborts with `what` (a crash libFuzzer saves) when an invariant fails.
// Untrusted input must get a Status, never this.
#define FUZZ_CHECK(cond, what)                                                     \
  do {                                                                             \
    if (!(cond)) ::ffibroker::fuzz::InvariantFailed(__FILE__, __LINE__, #cond, what); \
  } while (0)
[[noreturn]] void InvariantFailed(const char* file, int line, const char* cond,
                                  const std::string& what);

// A type for a field, parameter or result: scalars (also invalid numbers),
// enums, arrays (also of classes and past the limits), classes by name (from
// `classes` or made up), handles, strings, buffers. `depth` bounds nesting.
v1::Type RandomType(FuzzedDataProvider& in, const std::vector<std::string>& classes,
                    int depth = 0);

// A class definition of up to `max_fields` fields using `classes`.
v1::ClassDefinition RandomClass(FuzzedDataProvider& in, const std::string& name,
                                const std::vector<std::string>& classes, int max_fields = 8);

// A value for `type` that is usually valid (in range, the right shape) and
// sometimes not (out of range, the wrong case, missing or extra fields).
v1::Value RandomValue(FuzzedDataProvider& in, const TypeDesc& type, int depth = 0);

}  // namespace ffibroker::fuzz

#endif  // FFIBROKER_TESTS_FUZZ_FUZZ_VALUES_H_
