#include "tests/fuzz/classes_session.h"

#include <set>

#include "common/signature.h"
#include "tests/fuzz/fuzz_values.h"

namespace ffibroker::fuzz {
namespace {

const char* const kClasses[] = {
    "Point { mut f64 x; f64 y; } ~point_free",
    "Rect { Point min; Point max; u8[4] tags; enum i32{0,1,2} kind; bool visible; }",
    "opaque Counter",
};

// Functions that are safe to call with any valid arguments (none that
// crashes, sleeps or frees on purpose).
const char* const kFunctions[] = {
    "Point make_point(f64 x, f64 y)",
    "f64 point_norm2(Point p)",
    "Point* point_new(f64 x, f64 y)",
    "void point_scale(Point* p, f64 k)",
    "f64 point_sum(Point*? p)",
    "Point* maybe_point(i32 make)",
    "borrowed Point* origin_borrowed()",
    "Rect make_rect(Point a, Point b, enum i32{0,1,2} kind)",
    "f64 rect_area(Rect r)",
    "u64 str_len(cstr? s)",
    "cstr greet()",
    "cstr bad_utf8()",
    "cstr? null_string()",
    "void fill(out u8[n] buf, u64 n, u8 v)",
    "u32 sum_bytes(in u8[n] buf, u64 n)",
    "void reverse4(inout u8[4] buf)",
    "errno i32 fail_with(i32 e)",
    "u64 xor_bytes(inout u8[n] buf, u64 n, u8 v)",
    "ffireturn Counter* Counter__new(i64 start)",
    "ffireturn i64 Counter__value(Counter*? self)",
    "ffireturn void Counter__increment(Counter* self)",
    "ffireturn void Counter__set_value(Counter* self, i64 v)",
};

const char* const kStatics[] = {
    "mut i32 counter_static", "f64 pi_static", "mut Point origin_static", "bool bad_bool_static",
};

}  // namespace

const ClassesSession& Classes() {
  static const ClassesSession* session = [] {
    auto* s = new ClassesSession();
    s->open.set_path(FFIBROKER_CLASSES_LIB);
    std::set<std::string> names = {"Point", "Rect", "Counter"};
    for (const char* text : kClasses) {
      absl::StatusOr<v1::ClassDefinition> def = ParseClass(text, names);
      FUZZ_CHECK(def.ok(), def.status().ToString());
      FUZZ_CHECK(s->classes.Register(*def).ok(), text);
      *s->open.add_classes() = *def;
    }
    for (const char* text : kFunctions) {
      absl::StatusOr<Declaration> decl = ParseDeclaration(text, names);
      FUZZ_CHECK(decl.ok(), std::string(text) + ": " + decl.status().ToString());
      absl::StatusOr<ResolvedSignature> sig = ResolveSignature(decl->signature, s->classes);
      FUZZ_CHECK(sig.ok(), std::string(text) + ": " + sig.status().ToString());
      worker::v1::Symbol* symbol = s->open.add_symbols();
      symbol->set_name(decl->name);
      *symbol->mutable_signature() = decl->signature;
      s->symbols.push_back(*std::move(sig));
    }
    for (const char* text : kStatics) {
      absl::StatusOr<v1::StaticDeclaration> decl = ParseStatic(text, names);
      FUZZ_CHECK(decl.ok(), std::string(text) + ": " + decl.status().ToString());
      absl::StatusOr<TypeRef> type = s->classes.Resolve(decl->type(), TypeUse::kStatic);
      FUZZ_CHECK(type.ok(), text);
      worker::v1::Symbol* symbol = s->open.add_statics();
      symbol->set_name(decl->name());
      *symbol->mutable_signature()->mutable_result() = decl->type();
      s->statics.push_back(*type);
      s->statics_mutable.push_back(decl->mutable_());
    }
    return s;
  }();
  return *session;
}

}  // namespace ffibroker::fuzz
