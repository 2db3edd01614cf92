// `ffibroker bindgen MANIFEST`: typed bindings from a library manifest
// (proto/ffibroker/v1/manifest.proto): a C++ header over the C++ client
// and a Python module over the Python package, with the same functions.
//
// iroha_ffi-style mangled names become methods and properties of the class
// they name (docs/bindings.md): `T__new` a constructor, `T__drop` the
// destructor (run by FreeInstance), `T__f(T* self)` with a result a
// read-only property `f` (writable with `T__set_f`; `T__f_mut` stands for
// `T__f` when there is none), other `T__m(T* self, ...)` methods,
// `T__Trait__m` a method in the trait's namespace, everything else a
// module function. FfiReturn statuses arrive as errors (exceptions in
// Python). Pure functions; nothing here talks to a daemon.
#ifndef FFIBROKER_CLIENT_CLI_BINDGEN_H_
#define FFIBROKER_CLIENT_CLI_BINDGEN_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/signature.h"
#include "ffibroker/v1/manifest.pb.h"

namespace ffibroker::cli {

struct BoundProperty {
  std::string name;
  const Declaration* get = nullptr;
  const Declaration* set = nullptr;  // may be null: read-only
};

struct BoundClass {
  std::string name;
  const Declaration* constructor = nullptr;      // T__new
  std::vector<const Declaration*> methods;       // T__m(T* self, ...)
  std::vector<const Declaration*> statics;       // T__f(...) without self
  std::vector<BoundProperty> properties;
  std::map<std::string, std::vector<const Declaration*>> traits;  // T__Trait__m
};

struct Bindings {
  v1::LibraryManifest manifest;
  std::vector<Declaration> functions;            // every declaration, manifest order
  std::vector<BoundClass> classes;
  std::vector<const Declaration*> module_functions;
  std::set<std::string> destructors;             // T__drop: not opened as functions
};

// Parses the manifest's texts (with the one parser) and sorts the functions
// onto classes. INVALID_ARGUMENT naming the text (and column) on a mistake,
// or a type bindgen cannot map yet (structs by value, arrays).
absl::StatusOr<Bindings> BindManifest(const v1::LibraryManifest& manifest);
// The generated code; `manifest_path` is named in its header comment.
std::string CppHeader(const Bindings& bindings, const std::string& manifest_path);
std::string PythonModule(const Bindings& bindings, const std::string& manifest_path);

// The command: bindgen MANIFEST OUT_DIR writes OUT_DIR/MODULE.h and
// OUT_DIR/MODULE.py. Returns the CLI exit status (0, or 2 with the mistake
// on stderr).
int RunBindgen(const std::vector<std::string>& args);

}  // namespace ffibroker::cli

#endif  // FFIBROKER_CLIENT_CLI_BINDGEN_H_
