// TypeDesc: a resolved type, the descriptor the value codec walks.
//
// A v1::Type names classes by name; a TypeDesc has them resolved (within
// one session's ClassTable, see common/type_table.h) and carries the C
// layout (size, alignment, field offsets) and the libffi type, computed once
// with libffi when the class is registered. The daemon and the worker build
// TypeDescs with the same code from the same definitions, so they agree on
// every offset.
//
// TypeDescs are immutable once built and shared (TypeRef); a class's
// descriptor lives as long as anything refers to it.
#ifndef FFIBROKER_COMMON_TYPE_DESC_H_
#define FFIBROKER_COMMON_TYPE_DESC_H_

#include <ffi.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "common/types.h"
#include "ffibroker/v1/types.pb.h"

namespace ffibroker {

enum class TypeKind {
  kScalar,  // scalar (incl. void)
  kEnum,    // integer scalar restricted to `enum_values`
  kClass,   // a registered class by value (or, if opaque, only its name)
  kArray,   // element[length]
  kHandle,  // pointer to a class, carried as an instance handle
  kString,  // const char*
  kBuffer,  // uint8_t* with direction and length
  kCallback,  // a C function pointer with its own signature (`callback`)
};

struct TypeDesc;
using TypeRef = std::shared_ptr<const TypeDesc>;

// A signature with its types resolved (see ResolveSignature in
// common/type_table.h; a callback type's own signature is one too).
struct ResolvedSignature {
  v1::Signature proto;
  TypeRef result;
  std::vector<TypeRef> params;
  // For each parameter: the index of the parameter holding a buffer's
  // length, or -1.
  std::vector<int> length_param;
};

// The function a callback parameter points to: its resolved signature and
// the libffi cif a closure for it is prepared with (the worker binds
// closures to it; the daemon builds the same cif and does not use it).
// Immutable once built; `cif` is only ever read (libffi takes a non-const
// pointer).
struct CallbackDesc {
  ResolvedSignature sig;
  ffi_cif cif{};
  std::vector<ffi_type*> arg_types;
};

struct FieldDesc {
  std::string name;
  TypeRef type;
  size_t offset = 0;
  size_t padding_after = 0;
  bool is_mutable = false;
};

struct TypeDesc {
  TypeKind kind = TypeKind::kScalar;
  // Text as written in declarations: "u8", "Point", "f64[3]", "Point*".
  std::string name;
  // Native size and alignment. Pointer-like kinds (handle, string, buffer,
  // callback) have the size of a pointer; an opaque class has 0.
  size_t size = 0;
  size_t align = 1;
  // Scalar values an inline value of this type holds, counting every array
  // element (1 for a scalar or enum; 0 for void, pointer-like kinds and
  // opaque classes); at most kMaxInlineValues (common/limits.h).
  uint64_t values = 0;
  // kArray: how deeply arrays nest here (u8[2] is 1, u8[2][2] is 2); at
  // most kMaxArrayNesting.
  int nesting = 0;
  // The libffi type of a value of this type (for pointer-like kinds,
  // ffi_type_pointer). Points into this object or to static storage.
  ffi_type* ffi = nullptr;

  const ScalarInfo* scalar = nullptr;  // kScalar; kEnum's representation
  std::vector<int64_t> enum_values;    // kEnum, sorted
  // kClass:
  std::vector<FieldDesc> fields;
  bool opaque = false;
  std::string destructor;  // symbol, or empty
  int class_index = -1;    // registration order in its ClassTable
  // kArray: element type and count. kHandle: `element` is the class.
  TypeRef element;
  uint32_t length = 0;
  // kHandle:
  v1::HandleType::Ownership ownership = v1::HandleType::OWNERSHIP_OWNED;
  bool nullable = false;  // kHandle, kString, kCallback parameters
  // kString:
  uint32_t max_length = 0;
  // kBuffer:
  v1::BufferType buffer;
  // kCallback (pointer-sized, ffi_type_pointer; `nullable` says whether a
  // NULL may be passed):
  std::shared_ptr<CallbackDesc> callback;

  // Storage behind `ffi` for composite kinds. A class lists its fields'
  // types. An array of at most kExactFfiArrayBytes lists every element (the
  // ABI classifies such small aggregates element by element); a larger one
  // lists its element type once, with size and alignment preset, since
  // libffi never looks inside an aggregate that large (it is passed in
  // memory) and one pointer per element would cost 8 bytes per element
  // and nesting level.
  ffi_type ffi_storage{};
  std::vector<ffi_type*> ffi_elements;

  // The field named `name`, or nullptr.
  const FieldDesc* FindField(const std::string& field_name) const;
  // True for kinds whose value lives inline in C memory (scalar, enum,
  // class by value, array), i.e. what may be a field or a static.
  bool is_inline() const {
    return kind == TypeKind::kScalar || kind == TypeKind::kEnum ||
           kind == TypeKind::kClass || kind == TypeKind::kArray;
  }
};

// Arrays up to this many bytes get one libffi element per array element
// (see TypeDesc::ffi_elements); 64 bytes covers every ABI that classifies
// aggregates by their members (x86-64: 16, aarch64 HFAs: 64).
inline constexpr size_t kExactFfiArrayBytes = 64;

// The memory `desc` itself uses (the object, its names and vectors), not
// what it shares with other descriptors; for per-session accounting.
uint64_t DescriptorBytes(const TypeDesc& desc);

// The shared descriptor of a scalar (static storage).
TypeRef ScalarDesc(const ScalarInfo& info);

}  // namespace ffibroker

#endif  // FFIBROKER_COMMON_TYPE_DESC_H_
