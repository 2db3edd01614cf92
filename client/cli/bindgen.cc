#include "client/cli/bindgen.h"

#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "common/types.h"

namespace ffibroker::cli {
namespace {

bool IsHandleOf(const v1::Type& type, const std::string& klass) {
  return type.type_case() == v1::Type::kHandle && type.handle().class_name() == klass;
}

bool HasSelf(const Declaration& d, const std::string& klass) {
  return d.signature.params_size() > 0 && IsHandleOf(d.signature.params(0).type(), klass);
}

bool ReturnsVoid(const Declaration& d) {
  return d.signature.result().type_case() == v1::Type::kScalar &&
         d.signature.result().scalar() == v1::SCALAR_VOID;
}

absl::Status CheckMappable(const Declaration& d) {
  auto check = [&](const v1::Type& t, const std::string& where) -> absl::Status {
    if (t.type_case() == v1::Type::kClassName || t.type_case() == v1::Type::kArray) {
      return absl::InvalidArgumentError(absl::StrCat(
          "bindgen: ", d.name, ": ", where, " is ", TypeName(t),
          ", a struct or array by value, which bindgen does not map yet (use the client API)"));
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(check(d.signature.result(), "the result"));
  for (int i = 0; i < d.signature.params_size(); ++i) {
    RETURN_IF_ERROR(check(d.signature.params(i).type(), absl::StrCat("parameter ", i + 1)));
  }
  return absl::OkStatus();
}

std::string ParamName(const Declaration& d, int i) {
  const std::string& name = d.signature.params(i).name();
  return name.empty() ? absl::StrCat("arg", i + 1) : name;
}

// ---- C++ ----

std::string CppScalar(v1::Scalar s) {
  switch (s) {
    case v1::SCALAR_VOID: return "void";
    case v1::SCALAR_BOOL: return "bool";
    case v1::SCALAR_I8: return "int8_t";
    case v1::SCALAR_U8: return "uint8_t";
    case v1::SCALAR_I16: return "int16_t";
    case v1::SCALAR_U16: return "uint16_t";
    case v1::SCALAR_I32: return "int32_t";
    case v1::SCALAR_U32: return "uint32_t";
    case v1::SCALAR_I64: case v1::SCALAR_ISIZE: return "int64_t";
    case v1::SCALAR_U64: case v1::SCALAR_USIZE: return "uint64_t";
    case v1::SCALAR_F32: return "float";
    case v1::SCALAR_F64: return "double";
    default: return "void";
  }
}

std::string CppParamType(const v1::Type& t) {
  switch (t.type_case()) {
    case v1::Type::kScalar: return CppScalar(t.scalar());
    case v1::Type::kEnumType: return CppScalar(t.enum_type().underlying());
    case v1::Type::kString: return t.string().nullable() ? "const std::string*" : "const std::string&";
    case v1::Type::kHandle:
      return t.handle().nullable() ? absl::StrCat("const ", t.handle().class_name(), "*")
                                   : absl::StrCat("const ", t.handle().class_name(), "&");
    case v1::Type::kBuffer:
      return t.buffer().direction() == v1::BufferType::DIRECTION_IN ? "const std::string&"
                                                                     : "std::string*";
    default: return "void";
  }
}

std::string CppResultType(const v1::Type& t) {
  switch (t.type_case()) {
    case v1::Type::kScalar:
      return t.scalar() == v1::SCALAR_VOID ? "absl::Status"
                                           : absl::StrCat("absl::StatusOr<", CppScalar(t.scalar()), ">");
    case v1::Type::kEnumType:
      return absl::StrCat("absl::StatusOr<", CppScalar(t.enum_type().underlying()), ">");
    case v1::Type::kString: return "absl::StatusOr<std::optional<std::string>>";
    case v1::Type::kHandle:
      return absl::StrCat("absl::StatusOr<std::unique_ptr<", t.handle().class_name(), ">>");
    default: return "absl::Status";
  }
}

std::string CppArgValue(const v1::Type& t, const std::string& x) {
  switch (t.type_case()) {
    case v1::Type::kString:
      return t.string().nullable()
                 ? absl::StrCat(x, " ? ffibroker::StringValue(*", x, ") : ffibroker::NullValue()")
                 : absl::StrCat("ffibroker::StringValue(", x, ")");
    case v1::Type::kHandle:
      return t.handle().nullable()
                 ? absl::StrCat(x, " ? ffibroker::ToValue(", x,
                                "->instance()) : ffibroker::NullValue()")
                 : absl::StrCat("ffibroker::ToValue(", x, ".instance())");
    case v1::Type::kBuffer:
      switch (t.buffer().direction()) {
        case v1::BufferType::DIRECTION_IN: return absl::StrCat("ffibroker::BytesValue(", x, ")");
        case v1::BufferType::DIRECTION_INOUT: return absl::StrCat("ffibroker::BytesValue(*", x, ")");
        default: return "ffibroker::BytesValue(\"\")";
      }
    default: return absl::StrCat("ffibroker::ToValue(", x, ")");
  }
}

// `decl` as a C++ function named `member` of `owner` ("" = Library); `self`
// is the expression for the instance when the first parameter is self.
void EmitCpp(const Declaration& d, const std::string& owner, const std::string& member,
             bool has_self, bool is_static, std::string* decls, std::string* defs) {
  std::vector<std::string> params;
  int first = has_self ? 1 : 0;
  if (is_static) params.push_back("Library& library");
  for (int i = first; i < d.signature.params_size(); ++i) {
    params.push_back(absl::StrCat(CppParamType(d.signature.params(i).type()), " ",
                                  ParamName(d, i)));
  }
  std::string result = CppResultType(d.signature.result());
  absl::StrAppend(decls, "  // ", FormatDeclaration(d.name, d.signature), "\n  ",
                  is_static ? "static " : "", result, " ", member, "(",
                  absl::StrJoin(params, ", "), ");\n");
  std::vector<std::string> args;
  if (has_self) args.push_back("ffibroker::ToValue(*self_)");
  for (int i = first; i < d.signature.params_size(); ++i) {
    args.push_back(CppArgValue(d.signature.params(i).type(), ParamName(d, i)));
  }
  std::string lib = is_static ? "library.raw()" : (owner == "Library" ? "(*raw_)" : "library_->raw()");
  std::string lib_ptr = is_static ? "&library" : (owner == "Library" ? "this" : "library_");
  absl::StrAppend(defs, "inline ", result, " ", owner, "::", member, "(",
                  absl::StrJoin(params, ", "), ") {\n",
                  "  absl::StatusOr<ffibroker::v1::CallResponse> r = ", lib,
                  ".CallValues(\"", d.name, "\", {", absl::StrJoin(args, ", "), "});\n",
                  "  if (!r.ok()) return r.status();\n");
  for (int i = first; i < d.signature.params_size(); ++i) {
    const v1::Type& t = d.signature.params(i).type();
    if (t.type_case() == v1::Type::kBuffer &&
        t.buffer().direction() != v1::BufferType::DIRECTION_IN) {
      absl::StrAppend(defs, "  for (const auto& o : r->outputs()) {\n    if (o.param_index() == ",
                      i, ") *", ParamName(d, i), " = o.value().bytes_value();\n  }\n");
    }
  }
  const v1::Type& t = d.signature.result();
  switch (t.type_case()) {
    case v1::Type::kString:
      absl::StrAppend(defs, "  if (r->result().has_null_value()) return std::nullopt;\n",
                      "  return std::optional<std::string>(r->result().string_value());\n");
      break;
    case v1::Type::kHandle:
      absl::StrAppend(defs, "  auto adopted = ", lib, ".AdoptResult(\"", d.name, "\", *r);\n",
                      "  if (!adopted.ok()) return adopted.status();\n",
                      "  std::unique_ptr<ffibroker::Instance> instance = std::move(*adopted);\n",
                      "  if (instance == nullptr) return std::unique_ptr<", t.handle().class_name(),
                      ">();\n  return std::unique_ptr<", t.handle().class_name(), ">(new ",
                      t.handle().class_name(), "(", lib_ptr, ", std::move(instance)));\n");
      break;
    case v1::Type::kScalar:
      if (t.scalar() == v1::SCALAR_VOID) {
        absl::StrAppend(defs, "  return absl::OkStatus();\n");
        break;
      }
      absl::StrAppend(defs, "  return ffibroker::FromValue<", CppScalar(t.scalar()),
                      ">(r->result());\n");
      break;
    case v1::Type::kEnumType:
      absl::StrAppend(defs, "  return ffibroker::FromValue<", CppScalar(t.enum_type().underlying()),
                      ">(r->result());\n");
      break;
    default:
      absl::StrAppend(defs, "  return absl::OkStatus();\n");
  }
  absl::StrAppend(defs, "}\n\n");
}

// ---- Python ----

std::string PyCallArgs(const Declaration& d, int first) {
  std::vector<std::string> args;
  for (int i = first; i < d.signature.params_size(); ++i) {
    args.push_back(d.signature.params(i).type().type_case() == v1::Type::kHandle
                       ? absl::StrCat("_unwrap(", ParamName(d, i), ")")
                       : ParamName(d, i));
  }
  return absl::StrJoin(args, ", ");
}

std::string PyParams(const Declaration& d, int first) {
  std::vector<std::string> params;
  for (int i = first; i < d.signature.params_size(); ++i) params.push_back(ParamName(d, i));
  return absl::StrJoin(params, ", ");
}

std::string PyWrapResult(const Declaration& d, const std::string& library, const std::string& call) {
  const v1::Type& t = d.signature.result();
  if (t.type_case() == v1::Type::kHandle) {
    return absl::StrCat("_wrap(", t.handle().class_name(), ", ", library, ", ", call, ")");
  }
  return call;
}

// The property `name` of `owner`, added (with no accessors yet) if new.
BoundProperty& PropertyNamed(BoundClass* owner, const std::string& name) {
  for (BoundProperty& p : owner->properties) {
    if (p.name == name) return p;
  }
  owner->properties.emplace_back();
  owner->properties.back().name = name;
  return owner->properties.back();
}

}  // namespace

absl::StatusOr<Bindings> BindManifest(const v1::LibraryManifest& manifest) {
  Bindings b;
  b.manifest = manifest;
  if (!IsIdentifier(manifest.module())) {
    return absl::InvalidArgumentError(
        absl::StrCat("module: '", manifest.module(), "' is not a C identifier"));
  }
  if (manifest.library().empty()) return absl::InvalidArgumentError("library: required");
  std::set<std::string> class_names;
  for (int i = 0; i < manifest.classes_size(); ++i) {
    absl::StatusOr<v1::ClassDefinition> def = ParseClass(manifest.classes(i), class_names);
    if (!def.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("classes[", i, "]: ", def.status().message()));
    }
    class_names.insert(def->name());
    b.classes.emplace_back();
    b.classes.back().name = def->name();
  }
  b.functions.reserve(manifest.functions_size());  // pointers into it stay valid
  for (int i = 0; i < manifest.functions_size(); ++i) {
    absl::StatusOr<Declaration> d = ParseDeclaration(manifest.functions(i), class_names);
    if (!d.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("functions[", i, "]: ", d.status().message()));
    }
    RETURN_IF_ERROR(CheckMappable(*d));
    b.functions.push_back(*std::move(d));
  }
  for (const Declaration& d : b.functions) {
    BoundClass* owner = nullptr;
    std::string rest;
    for (BoundClass& c : b.classes) {
      if (absl::StartsWith(d.name, c.name + "__")) {
        owner = &c;
        rest = d.name.substr(c.name.size() + 2);
      }
    }
    if (owner == nullptr) {
      b.module_functions.push_back(&d);
      continue;
    }
    size_t trait = rest.find("__");
    bool self = HasSelf(d, owner->name);
    if (rest == "new") {
      owner->constructor = &d;
    } else if (rest == "drop") {
      // The class destructor: the daemon resolves and runs it (FreeInstance,
      // session end); declaring it as a function too would contradict that.
      b.destructors.insert(d.name);
    } else if (trait != std::string::npos && self) {
      owner->traits[rest.substr(0, trait)].push_back(&d);
    } else if (absl::StartsWith(rest, "set_") && self && d.signature.params_size() == 2 &&
               ReturnsVoid(d)) {
      std::string field = rest.substr(4);
      BoundProperty& property = PropertyNamed(owner, field);
      property.set = &d;
    } else if (self && d.signature.params_size() == 1 && !ReturnsVoid(d)) {
      bool mut = absl::EndsWith(rest, "_mut");
      std::string field = mut ? rest.substr(0, rest.size() - 4) : rest;
      BoundProperty& property = PropertyNamed(owner, field);
      if (property.get == nullptr || !mut) property.get = &d;
    } else if (self) {
      owner->methods.push_back(&d);
    } else {
      owner->statics.push_back(&d);
    }
  }
  for (BoundClass& c : b.classes) {  // a setter without a getter stays a method
    for (auto it = c.properties.begin(); it != c.properties.end();) {
      if (it->get == nullptr) {
        c.methods.push_back(it->set);
        it = c.properties.erase(it);
      } else {
        ++it;
      }
    }
  }
  return b;
}

std::string CppHeader(const Bindings& b, const std::string& manifest_path) {
  const std::string& ns = b.manifest.module();
  std::string out = absl::StrCat(
      "// Generated by `ffibroker bindgen ", manifest_path, "`; do not edit.\n",
      "// Typed bindings of '", b.manifest.library(), "' over the ffibroker C++ client.\n",
      "#pragma once\n\n#include <cstdint>\n#include <memory>\n#include <optional>\n",
      "#include <string>\n\n#include \"ffibroker/client.h\"\n#include \"ffibroker/instance.h\"\n\n",
      "namespace ", ns, " {\n\n");
  for (const BoundClass& c : b.classes) absl::StrAppend(&out, "class ", c.name, ";\n");
  std::string decls, defs;
  for (const Declaration* d : b.module_functions) EmitCpp(*d, "Library", d->name, false, false, &decls, &defs);
  absl::StrAppend(
      &out, "\n// The library, opened in a session with every class registered.\nclass Library {\n public:\n",
      "  static absl::StatusOr<std::unique_ptr<Library>> Open(ffibroker::Session& session,\n"
      "                                                       const std::string& token = \"\");\n",
      "  ffibroker::Library& raw() { return *raw_; }\n\n", decls,
      "\n private:\n  explicit Library(std::unique_ptr<ffibroker::Library> raw) : raw_(std::move(raw)) {}\n",
      "  std::unique_ptr<ffibroker::Library> raw_;\n};\n\n");
  std::vector<std::string> classes, functions;
  for (const std::string& c : b.manifest.classes()) classes.push_back(absl::StrCat("      \"", absl::CEscape(c), "\""));
  for (size_t i = 0; i < b.functions.size(); ++i) {
    if (b.destructors.count(b.functions[i].name)) continue;
    functions.push_back(absl::StrCat("      \"", absl::CEscape(b.manifest.functions(i)), "\""));
  }
  absl::StrAppend(&defs, "inline absl::StatusOr<std::unique_ptr<Library>> Library::Open(\n",
                  "    ffibroker::Session& session, const std::string& token) {\n",
                  "  for (const char* c : std::initializer_list<const char*>{\n",
                  absl::StrJoin(classes, ",\n"), "}) {\n",
                  "    absl::Status registered = session.RegisterClass(c).status();\n",
                  "    if (!registered.ok() && !absl::IsAlreadyExists(registered)) return registered;\n  }\n",
                  "  auto raw = session.OpenLibrary(\"", b.manifest.library(),
                  "\", {\n", absl::StrJoin(functions, ",\n"), "}, token);\n",
                  "  if (!raw.ok()) return raw.status();\n",
                  "  return std::unique_ptr<Library>(new Library(std::move(*raw)));\n}\n\n");
  for (const BoundClass& c : b.classes) {
    std::string cdecls;
    if (c.constructor != nullptr) EmitCpp(*c.constructor, c.name, "New", false, true, &cdecls, &defs);
    for (const Declaration* d : c.statics) EmitCpp(*d, c.name, d->name.substr(c.name.size() + 2), false, true, &cdecls, &defs);
    for (const BoundProperty& p : c.properties) {
      EmitCpp(*p.get, c.name, p.name, true, false, &cdecls, &defs);
      if (p.set != nullptr) EmitCpp(*p.set, c.name, "set_" + p.name, true, false, &cdecls, &defs);
    }
    for (const Declaration* d : c.methods) EmitCpp(*d, c.name, d->name.substr(c.name.size() + 2), true, false, &cdecls, &defs);
    for (const auto& [trait, methods] : c.traits) {
      for (const Declaration* d : methods) {
        EmitCpp(*d, c.name, absl::StrCat(trait, "_", d->name.substr(c.name.size() + trait.size() + 4)),
                true, false, &cdecls, &defs);
      }
    }
    absl::StrAppend(
        &out, "class ", c.name, " {\n public:\n", cdecls,
        "  // Frees the instance (the class destructor runs for owned ones).\n",
        "  absl::StatusOr<bool> Free() { return self_->Free(); }\n",
        "  const ffibroker::Instance& instance() const { return *self_; }\n\n private:\n",
        "  friend class Library;\n", "  template <typename> friend class std::default_delete;\n");
    for (const BoundClass& other : b.classes) {
      if (other.name != c.name) absl::StrAppend(&out, "  friend class ", other.name, ";\n");
    }
    absl::StrAppend(&out, "  ", c.name, "(Library* library, std::unique_ptr<ffibroker::Instance> self)\n",
                    "      : library_(library), self_(std::move(self)) {}\n",
                    "  Library* library_;\n  std::unique_ptr<ffibroker::Instance> self_;\n};\n\n");
  }
  absl::StrAppend(&out, defs, "}  // namespace ", ns, "\n");
  return out;
}

std::string PythonModule(const Bindings& b, const std::string& manifest_path) {
  auto quote = [](const std::string& s) { return absl::StrCat("\"", absl::CEscape(s), "\""); };
  std::vector<std::string> classes, functions;
  for (const std::string& c : b.manifest.classes()) classes.push_back("    " + quote(c) + ",");
  for (const Declaration& d : b.functions) {
    if (b.destructors.count(d.name)) continue;
    functions.push_back(absl::StrCat("    ", quote(d.name), ": ", quote(b.manifest.functions(&d - b.functions.data())), ","));
  }
  std::string out = absl::StrCat(
      "\"\"\"Generated by `ffibroker bindgen ", manifest_path, "`; do not edit.\n\n",
      "Typed bindings of '", b.manifest.library(), "' over the ffibroker package:\n\n",
      "    lib = ", b.manifest.module(), ".Library(session)\n\"\"\"\n",
      "import ffibroker\n\nLIBRARY = ", quote(b.manifest.library()), "\nCLASSES = [\n",
      absl::StrJoin(classes, "\n"), "\n]\nFUNCTIONS = {\n", absl::StrJoin(functions, "\n"), "\n}\n\n\n",
      "def _unwrap(value):\n    return getattr(value, \"_self\", value)\n\n\n",
      "def _wrap(cls, library, instance):\n    return None if instance is None else cls(library, instance)\n\n\n",
      "class Library:\n    \"\"\"The library opened in `session`, its classes registered.\"\"\"\n\n",
      "    def __init__(self, session, token=None):\n",
      "        for text in CLASSES:\n            try:\n                session.register_class(text)\n",
      "            except ffibroker.AlreadyExistsError:\n                pass\n",
      "        self.raw = session.dlopen(LIBRARY, FUNCTIONS, token=token)\n\n",
      "    def close(self):\n        self.raw.close()\n\n");
  for (const Declaration* d : b.module_functions) {
    absl::StrAppend(&out, "    def ", d->name, "(self", d->signature.params_size() ? ", " : "",
                    PyParams(*d, 0), "):\n        \"\"\"", FormatDeclaration(d->name, d->signature),
                    "\"\"\"\n        return ",
                    PyWrapResult(*d, "self", absl::StrCat("self.raw.", d->name, "(", PyCallArgs(*d, 0), ")")),
                    "\n\n");
  }
  for (const BoundClass& c : b.classes) {
    absl::StrAppend(&out, "\nclass ", c.name, ":\n    \"\"\"An instance of ", c.name,
                    " in the library's worker; close() or `with` frees it.\"\"\"\n\n",
                    "    def __init__(self, library, instance):\n",
                    "        self._library, self._self = library, instance\n\n",
                    "    def close(self):\n        return self._self.close()\n\n",
                    "    def __enter__(self):\n        return self\n\n",
                    "    def __exit__(self, *exc):\n        self.close()\n\n");
    auto call = [&](const Declaration& d, bool self) {
      std::string args = PyCallArgs(d, self ? 1 : 0);
      std::string all = self ? (args.empty() ? "self._self" : "self._self, " + args) : args;
      return absl::StrCat(self ? "self._library" : "library", ".raw.", d.name, "(", all, ")");
    };
    if (c.constructor != nullptr) {
      const Declaration& d = *c.constructor;
      absl::StrAppend(&out, "    @classmethod\n    def new(cls, library", d.signature.params_size() ? ", " : "",
                      PyParams(d, 0), "):\n        \"\"\"", FormatDeclaration(d.name, d.signature),
                      "\"\"\"\n        return ", PyWrapResult(d, "library", call(d, false)), "\n\n");
    }
    for (const Declaration* d : c.statics) {
      absl::StrAppend(&out, "    @staticmethod\n    def ", d->name.substr(c.name.size() + 2), "(library",
                      d->signature.params_size() ? ", " : "", PyParams(*d, 0), "):\n        return ",
                      PyWrapResult(*d, "library", call(*d, false)), "\n\n");
    }
    for (const BoundProperty& p : c.properties) {
      absl::StrAppend(&out, "    @property\n    def ", p.name, "(self):\n        \"\"\"",
                      FormatDeclaration(p.get->name, p.get->signature), "\"\"\"\n        return ",
                      PyWrapResult(*p.get, "self._library", call(*p.get, true)), "\n\n");
      if (p.set != nullptr) {
        absl::StrAppend(&out, "    @", p.name, ".setter\n    def ", p.name, "(self, ",
                        ParamName(*p.set, 1), "):\n        ", call(*p.set, true), "\n\n");
      }
    }
    for (const Declaration* d : c.methods) {
      absl::StrAppend(&out, "    def ", d->name.substr(c.name.size() + 2), "(self",
                      d->signature.params_size() > 1 ? ", " : "", PyParams(*d, 1),
                      "):\n        \"\"\"", FormatDeclaration(d->name, d->signature),
                      "\"\"\"\n        return ", PyWrapResult(*d, "self._library", call(*d, true)), "\n\n");
    }
    for (const auto& [trait, methods] : c.traits) {
      absl::StrAppend(&out, "    @property\n    def ", trait, "(self):\n        \"\"\"The ", trait,
                      " methods.\"\"\"\n        return _", c.name, "_", trait, "(self)\n\n");
    }
    for (const auto& [trait, methods] : c.traits) {
      absl::StrAppend(&out, "\nclass _", c.name, "_", trait, ":\n    def __init__(self, outer):\n",
                      "        self._library, self._self = outer._library, outer._self\n\n");
      for (const Declaration* d : methods) {
        absl::StrAppend(&out, "    def ", d->name.substr(c.name.size() + trait.size() + 4), "(self",
                        d->signature.params_size() > 1 ? ", " : "", PyParams(*d, 1),
                        "):\n        return ", PyWrapResult(*d, "self._library", call(*d, true)), "\n\n");
      }
    }
  }
  return out;
}

int RunBindgen(const std::vector<std::string>& args) {
  if (args.size() != 3) {
    std::fprintf(stderr, "ffibroker: usage: bindgen MANIFEST OUT_DIR\n");
    return 2;
  }
  const std::string& manifest_path = args[1];
  const std::string& out_dir = args[2];
  std::ifstream in(manifest_path);
  if (!in) {
    std::fprintf(stderr, "ffibroker: bindgen: cannot read %s\n", manifest_path.c_str());
    return 2;
  }
  std::stringstream text;
  text << in.rdbuf();
  v1::LibraryManifest manifest;
  if (!google::protobuf::TextFormat::ParseFromString(text.str(), &manifest)) {
    std::fprintf(stderr, "ffibroker: bindgen: %s is not a valid manifest (see the errors above)\n",
                 manifest_path.c_str());
    return 2;
  }
  absl::StatusOr<Bindings> bindings = BindManifest(manifest);
  if (!bindings.ok()) {
    std::fprintf(stderr, "ffibroker: %s: %s\n", manifest_path.c_str(),
                 std::string(bindings.status().message()).c_str());
    return 2;
  }
  const std::string stem = absl::StrCat(out_dir, "/", manifest.module());
  for (const auto& [path, code] :
       {std::pair{stem + ".h", CppHeader(*bindings, manifest_path)},
        std::pair{stem + ".py", PythonModule(*bindings, manifest_path)}}) {
    std::ofstream out(path);
    out << code;
    if (!out) {
      std::fprintf(stderr, "ffibroker: bindgen: cannot write %s\n", path.c_str());
      return 2;
    }
  }
  return 0;
}

}  // namespace ffibroker::cli
