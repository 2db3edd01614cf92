// The session both worker fuzz targets use: the classes, functions and
// statics of the native test library tests/native/classes.c, declared as
// the integration tests declare them, as the daemon sends them to the
// worker (worker::v1::Open) and as the daemon resolves them.
#ifndef FFIBROKER_TESTS_FUZZ_CLASSES_SESSION_H_
#define FFIBROKER_TESTS_FUZZ_CLASSES_SESSION_H_

#include <string>
#include <vector>

#include "common/type_table.h"
#include "ffibroker/worker/v1/worker.pb.h"

namespace ffibroker::fuzz {

struct ClassesSession {
  ClassTable classes;
  worker::v1::Open open;                 // path, classes, symbols, statics
  std::vector<ResolvedSignature> symbols;  // by symbol index
  std::vector<TypeRef> statics;            // by static index
  std::vector<bool> statics_mutable;       // declared `mut`, by static index
};

// Built once (aborts if the declarations stop parsing: fix them here).
const ClassesSession& Classes();

}  // namespace ffibroker::fuzz

#endif  // FFIBROKER_TESTS_FUZZ_CLASSES_SESSION_H_
