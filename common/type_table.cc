#include "common/type_table.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/checked_math.h"
#include "common/ffi_types.h"
#include "common/signature.h"
#include "common/status_macros.h"
#include "common/types.h"
#include "common/value_codec.h"

namespace ffibroker {
namespace {

const char* UseName(TypeUse use) {
  switch (use) {
    case TypeUse::kField: return "a class field";
    case TypeUse::kParam: return "a parameter";
    case TypeUse::kResult: return "a result";
    case TypeUse::kStatic: return "a static";
    case TypeUse::kCallbackParam: return "a callback's parameter";
    case TypeUse::kCallbackResult: return "a callback's result";
  }
  return "?";
}

absl::Status NotValidAs(const std::string& what, TypeUse use) {
  return absl::InvalidArgumentError(
      absl::StrCat(what, " is not valid as ", UseName(use)));
}

// Computes size, alignment and offsets of a libffi struct type whose
// elements are set; `offsets` may be null.
absl::Status LayoutStruct(TypeDesc& desc, size_t* offsets) {
  desc.ffi_elements.push_back(nullptr);
  desc.ffi_storage.size = 0;
  desc.ffi_storage.alignment = 0;
  desc.ffi_storage.type = FFI_TYPE_STRUCT;
  desc.ffi_storage.elements = desc.ffi_elements.data();
  if (ffi_get_struct_offsets(FFI_DEFAULT_ABI, &desc.ffi_storage, offsets) != FFI_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat("libffi cannot lay out ", desc.name));
  }
  desc.ffi = &desc.ffi_storage;
  desc.size = desc.ffi_storage.size;
  desc.align = desc.ffi_storage.alignment;
  return absl::OkStatus();
}

// Lays out an array of `length` elements: C size element.size * length
// (checked), alignment the element's; see TypeDesc::ffi_elements for its
// libffi representation.
absl::Status LayoutArray(TypeDesc& desc, const TypeDesc& element, uint32_t length) {
  uint64_t size = 0;
  if (!CheckedMul<uint64_t>(element.size, length, &size) || size > kMaxClassBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "array ", desc.name, " is larger than the class size limit of ", kMaxClassBytes,
        " bytes"));
  }
  uint64_t values = 0;
  if (!CheckedMul<uint64_t>(element.values, length, &values) || values > kMaxInlineValues) {
    return absl::InvalidArgumentError(absl::StrCat(
        "array ", desc.name, " holds more than the limit of ", kMaxInlineValues,
        " values per class"));
  }
  desc.size = size;
  desc.align = element.align;
  desc.values = values;
  if (size <= kExactFfiArrayBytes) {
    desc.ffi_elements.assign(length, element.ffi);
  } else {
    desc.ffi_elements.assign(1, element.ffi);
  }
  desc.ffi_elements.push_back(nullptr);
  desc.ffi_storage.type = FFI_TYPE_STRUCT;
  desc.ffi_storage.size = size;  // preset: libffi does not lay it out again
  desc.ffi_storage.alignment = static_cast<unsigned short>(element.align);
  desc.ffi_storage.elements = desc.ffi_elements.data();
  desc.ffi = &desc.ffi_storage;
  return absl::OkStatus();
}

std::shared_ptr<TypeDesc> PointerDesc(TypeKind kind, std::string name) {
  auto desc = std::make_shared<TypeDesc>();
  desc->kind = kind;
  desc->name = std::move(name);
  desc->size = sizeof(void*);
  desc->align = alignof(void*);
  desc->ffi = &ffi_type_pointer;
  return desc;
}

}  // namespace

bool IsReservedTypeWord(const std::string& word) {
  static const std::set<std::string> kWords = {
      "enum", "cstr", "in", "out", "inout", "borrowed", "ffireturn",
      "errno", "optional", "mut", "static", "u8", "fn"};
  return FindScalarByName(word) != nullptr || kWords.count(word) > 0;
}

uint64_t DescriptorBytes(const TypeDesc& desc) {
  constexpr uint64_t kSharedPtrBlock = 32;  // make_shared's control block
  uint64_t bytes = sizeof(TypeDesc) + kSharedPtrBlock + desc.name.capacity() +
                   desc.destructor.capacity() +
                   desc.enum_values.capacity() * sizeof(int64_t) +
                   desc.ffi_elements.capacity() * sizeof(ffi_type*) +
                   desc.fields.capacity() * sizeof(FieldDesc);
  for (const FieldDesc& f : desc.fields) bytes += f.name.capacity();
  return bytes;
}

const FieldDesc* TypeDesc::FindField(const std::string& field_name) const {
  for (const FieldDesc& f : fields) {
    if (f.name == field_name) return &f;
  }
  return nullptr;
}

TypeRef ScalarDesc(const ScalarInfo& info) {
  static const auto* kTable = [] {
    auto* table = new std::map<v1::Scalar, TypeRef>();
    for (int s = v1::Scalar_MIN; s <= v1::Scalar_MAX; ++s) {
      const ScalarInfo* i = FindScalar(static_cast<v1::Scalar>(s));
      if (i == nullptr) continue;
      auto desc = std::make_shared<TypeDesc>();
      desc->kind = TypeKind::kScalar;
      desc->name = i->name;
      desc->scalar = i;
      desc->size = i->size;
      desc->align = i->size == 0 ? 1 : i->size;
      desc->values = i->size == 0 ? 0 : 1;
      desc->ffi = FfiScalarType(*i);
      (*table)[i->scalar] = desc;
    }
    return table;
  }();
  return kTable->at(info.scalar);
}

TypeRef ClassTable::FindClass(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

absl::StatusOr<TypeRef> ClassTable::Resolve(const v1::Type& type, TypeUse use) const {
  uint64_t cost = 0;
  return ResolveAt(type, use, 0, &cost);
}

absl::StatusOr<TypeRef> ClassTable::ResolveAt(const v1::Type& type, TypeUse use, int nesting,
                                              uint64_t* cost) const {
  switch (type.type_case()) {
    case v1::Type::kScalar: {
      ASSIGN_OR_RETURN(const ScalarInfo* info, ScalarOf(type));
      if (info->klass == ScalarClass::kVoid && use != TypeUse::kResult &&
          use != TypeUse::kCallbackResult) {
        return absl::InvalidArgumentError(
            absl::StrCat("void is only valid as a result type, not as ", UseName(use)));
      }
      return ScalarDesc(*info);
    }
    case v1::Type::kClassName: {
      TypeRef klass = FindClass(type.class_name());
      if (klass == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(
            "unknown class '", type.class_name(),
            "' (register it with RegisterClass before using it)"));
      }
      if (klass->opaque) {
        return absl::InvalidArgumentError(absl::StrCat(
            "opaque class '", klass->name, "' can only be used by pointer ('",
            klass->name, "*')"));
      }
      return klass;
    }
    case v1::Type::kHandle: {
      if (use != TypeUse::kParam && use != TypeUse::kResult &&
          use != TypeUse::kCallbackParam) {
        return NotValidAs("a class pointer", use);
      }
      TypeRef klass = FindClass(type.handle().class_name());
      if (klass == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(
            "unknown class '", type.handle().class_name(),
            "' (register it with RegisterClass before using it)"));
      }
      if (use == TypeUse::kResult &&
          type.handle().ownership() == v1::HandleType::OWNERSHIP_OWNED &&
          klass->destructor.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "result '", klass->name, "*' transfers ownership but class '",
            klass->name, "' names no destructor; register one or declare the "
            "result 'borrowed ", klass->name, "*'"));
      }
      auto desc = PointerDesc(TypeKind::kHandle, TypeName(type));
      desc->element = klass;
      desc->ownership = use == TypeUse::kResult ? type.handle().ownership()
                                                : v1::HandleType::OWNERSHIP_BORROWED;
      desc->nullable = type.handle().nullable();
      *cost += DescriptorBytes(*desc);
      return TypeRef(desc);
    }
    case v1::Type::kArray: {
      if (use != TypeUse::kField && use != TypeUse::kStatic) {
        return NotValidAs("an array", use);
      }
      uint32_t length = type.array().length();
      if (length == 0 || length > kMaxArrayLength) {
        return absl::InvalidArgumentError(absl::StrCat(
            "array length ", length, " is not in 1..", kMaxArrayLength));
      }
      if (nesting >= kMaxArrayNesting) {
        return absl::InvalidArgumentError(absl::StrCat(
            "arrays nest more than ", kMaxArrayNesting, " deep (the array nesting limit)"));
      }
      ASSIGN_OR_RETURN(TypeRef element,
                       ResolveAt(type.array().element(), TypeUse::kField, nesting + 1, cost));
      auto desc = std::make_shared<TypeDesc>();
      desc->kind = TypeKind::kArray;
      desc->name = TypeName(type);
      desc->element = element;
      desc->length = length;
      desc->nesting = element->kind == TypeKind::kArray ? element->nesting + 1 : 1;
      RETURN_IF_ERROR(LayoutArray(*desc, *element, length));
      *cost += DescriptorBytes(*desc);
      return TypeRef(desc);
    }
    case v1::Type::kEnumType: {
      if (use == TypeUse::kParam || use == TypeUse::kResult || use == TypeUse::kField ||
          use == TypeUse::kStatic || use == TypeUse::kCallbackParam ||
          use == TypeUse::kCallbackResult) {
        const v1::EnumType& e = type.enum_type();
        const ScalarInfo* info = FindScalar(e.underlying());
        if (info == nullptr || (info->klass != ScalarClass::kSigned &&
                                info->klass != ScalarClass::kUnsigned)) {
          return absl::InvalidArgumentError(
              "an enum's underlying type must be an integer scalar");
        }
        if (e.values().empty()) {
          return absl::InvalidArgumentError("an enum needs at least one value");
        }
        if (e.values_size() > kMaxEnumValues) {
          return absl::InvalidArgumentError(absl::StrCat(
              "an enum has ", e.values_size(), " values, more than the limit of ",
              kMaxEnumValues));
        }
        auto desc = std::make_shared<TypeDesc>(*ScalarDesc(*info));
        desc->kind = TypeKind::kEnum;
        desc->name = TypeName(type);
        for (int64_t v : e.values()) {
          v1::Value value;
          value.set_int_value(v);
          std::string scratch;
          absl::Status in_range = EncodeInline(*ScalarDesc(*info), value, &scratch);
          if (!in_range.ok()) {
            return absl::InvalidArgumentError(
                absl::StrCat("enum value ", in_range.message()));
          }
          desc->enum_values.push_back(v);
        }
        std::sort(desc->enum_values.begin(), desc->enum_values.end());
        auto twice = std::adjacent_find(desc->enum_values.begin(), desc->enum_values.end());
        if (twice != desc->enum_values.end()) {
          return absl::InvalidArgumentError(
              absl::StrCat("enum value ", *twice, " is listed twice"));
        }
        *cost += DescriptorBytes(*desc);
        return TypeRef(desc);
      }
      break;
    }
    case v1::Type::kString: {
      if (use != TypeUse::kParam && use != TypeUse::kResult &&
          use != TypeUse::kCallbackParam) {
        return NotValidAs("a string", use);
      }
      auto desc = PointerDesc(TypeKind::kString, TypeName(type));
      uint32_t max = type.string().max_length();
      desc->max_length = max == 0 ? kDefaultMaxStringLength : std::min(max, kMaxBufferLength);
      desc->nullable = type.string().nullable();
      *cost += DescriptorBytes(*desc);
      return TypeRef(desc);
    }
    case v1::Type::kBuffer: {
      if (use != TypeUse::kParam && use != TypeUse::kCallbackParam) {
        return NotValidAs("a buffer", use);
      }
      const v1::BufferType& b = type.buffer();
      if (use == TypeUse::kCallbackParam && b.direction() != v1::BufferType::DIRECTION_IN) {
        return absl::InvalidArgumentError(absl::StrCat(
            TypeName(type), " is not valid as a callback's parameter: only 'in' buffers are "
            "(the library's bytes are copied to the client, nothing is copied back)"));
      }
      if (b.direction() != v1::BufferType::DIRECTION_IN &&
          b.direction() != v1::BufferType::DIRECTION_OUT &&
          b.direction() != v1::BufferType::DIRECTION_INOUT) {
        return absl::InvalidArgumentError("a buffer needs a direction (in, out, inout)");
      }
      if (b.length_case() == v1::BufferType::LENGTH_NOT_SET) {
        return absl::InvalidArgumentError(
            "a buffer needs a length (fixed, or the name of a length parameter)");
      }
      if (b.length_case() == v1::BufferType::kFixedLength &&
          (b.fixed_length() == 0 || b.fixed_length() > kMaxBufferLength)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "buffer length ", b.fixed_length(), " is not in 1..", kMaxBufferLength));
      }
      auto desc = PointerDesc(TypeKind::kBuffer, TypeName(type));
      desc->buffer = b;
      *cost += DescriptorBytes(*desc);
      return TypeRef(desc);
    }
    case v1::Type::kCallback: {
      if (use == TypeUse::kCallbackParam || use == TypeUse::kCallbackResult) {
        return absl::InvalidArgumentError(absl::StrCat(
            "a callback type is not valid as ", UseName(use),
            " (callback types do not nest)"));
      }
      if (use != TypeUse::kParam) {
        return absl::InvalidArgumentError(absl::StrCat(
            "a callback type is only valid as a parameter of a declared function, not as ",
            UseName(use)));
      }
      const v1::Signature& signature = type.callback().signature();
      if (signature.convention() != v1::Signature::CONVENTION_PLAIN) {
        return absl::InvalidArgumentError(
            "a callback uses the plain calling convention (no ffireturn)");
      }
      auto callback = std::make_shared<CallbackDesc>();
      ASSIGN_OR_RETURN(callback->sig, ResolveSignatureAs(signature, *this,
                                                         TypeUse::kCallbackParam,
                                                         TypeUse::kCallbackResult));
      for (const TypeRef& param : callback->sig.params) {
        callback->arg_types.push_back(param->ffi);
        *cost += sizeof(ffi_type*);
      }
      if (ffi_prep_cif(&callback->cif, FFI_DEFAULT_ABI,
                       static_cast<unsigned>(callback->arg_types.size()),
                       callback->sig.result->ffi, callback->arg_types.data()) != FFI_OK) {
        return absl::InvalidArgumentError(
            absl::StrCat("libffi cannot prepare callback type ", TypeName(type)));
      }
      auto desc = PointerDesc(TypeKind::kCallback, TypeName(type));
      desc->nullable = type.callback().nullable();
      desc->callback = std::move(callback);
      *cost += DescriptorBytes(*desc) + sizeof(CallbackDesc) + signature.SpaceUsedLong();
      return TypeRef(desc);
    }
    case v1::Type::TYPE_NOT_SET:
      return absl::InvalidArgumentError("type is not set");
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown type kind ", static_cast<int>(type.type_case())));
}

absl::StatusOr<v1::ClassLayout> ClassTable::Register(const v1::ClassDefinition& def) {
  const std::string& name = def.name();
  if (!IsIdentifier(name) || IsReservedTypeWord(name)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "class name '", name, "' must be a C identifier and not a type keyword"));
  }
  if (by_name_.count(name)) {
    return absl::AlreadyExistsError(
        absl::StrCat("class '", name, "' is already registered in this session"));
  }
  if (classes_.size() >= static_cast<size_t>(kMaxClasses)) {
    return absl::ResourceExhaustedError(
        absl::StrCat("a session may register at most ", kMaxClasses, " classes"));
  }
  if (!def.destructor().empty() && !IsIdentifier(def.destructor())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "class '", name, "': destructor '", def.destructor(), "' is not a C identifier"));
  }
  uint64_t cost = 0;  // descriptor bytes this class adds
  auto desc = std::make_shared<TypeDesc>();
  desc->kind = TypeKind::kClass;
  desc->name = name;
  desc->opaque = def.opaque();
  desc->destructor = def.destructor();
  desc->class_index = static_cast<int>(classes_.size());
  if (def.opaque()) {
    if (!def.fields().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "opaque class '", name, "' cannot declare fields (its layout is hidden)"));
    }
    if (desc->destructor.empty()) desc->destructor = name + "__drop";
    desc->size = 0;
    desc->ffi = &ffi_type_void;
  } else {
    if (def.fields().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "class '", name, "' has no fields (a zero-size class cannot be laid "
          "out; declare it opaque if its layout is hidden)"));
    }
    if (def.fields_size() > kMaxFields) {
      return absl::InvalidArgumentError(absl::StrCat(
          "class '", name, "' has ", def.fields_size(), " fields, at most ", kMaxFields));
    }
    std::set<std::string> seen;
    uint64_t values = 0;
    uint64_t bound = 0;  // sum of field sizes and alignments: libffi's size is below it
    for (const v1::FieldDefinition& f : def.fields()) {
      std::string where = absl::StrCat("class '", name, "', field '", f.name(), "'");
      if (!IsIdentifier(f.name())) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": not a C identifier"));
      }
      if (!seen.insert(f.name()).second) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": declared twice"));
      }
      if (f.type().type_case() == v1::Type::kClassName && f.type().class_name() == name) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ": a class cannot contain itself by value (infinite size)"));
      }
      absl::StatusOr<TypeRef> type = ResolveAt(f.type(), TypeUse::kField, 0, &cost);
      if (!type.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": ", type.status().message()));
      }
      if (!CheckedAdd<uint64_t>(values, (*type)->values, &values) ||
          !CheckedAdd<uint64_t>(bound, (*type)->size, &bound) ||
          !CheckedAdd<uint64_t>(bound, (*type)->align, &bound)) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": the class is too large"));
      }
      FieldDesc field;
      field.name = f.name();
      field.type = *type;
      field.is_mutable = f.mutable_();
      desc->ffi_elements.push_back((*type)->ffi);
      desc->fields.push_back(std::move(field));
    }
    if (values > kMaxInlineValues) {
      return absl::InvalidArgumentError(absl::StrCat(
          "class '", name, "' holds ", values, " values, more than the limit of ",
          kMaxInlineValues, " values per class"));
    }
    if (bound > kMaxClassBytes + kMaxClassBytes) {  // libffi's sums cannot wrap below this
      return absl::InvalidArgumentError(absl::StrCat(
          "class '", name, "' is larger than the class size limit of ", kMaxClassBytes,
          " bytes"));
    }
    std::vector<size_t> offsets(desc->fields.size());
    RETURN_IF_ERROR(LayoutStruct(*desc, offsets.data()));
    if (desc->size > kMaxClassBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "class '", name, "' is ", desc->size, " bytes, larger than the class size limit of ",
          kMaxClassBytes, " bytes"));
    }
    desc->values = values;
    for (size_t i = 0; i < desc->fields.size(); ++i) {
      FieldDesc& f = desc->fields[i];
      f.offset = offsets[i];
      size_t next = i + 1 < offsets.size() ? offsets[i + 1] : desc->size;
      // libffi's layout, checked: every field inside the class, in order.
      uint64_t end = 0;
      if (!CheckedAdd<uint64_t>(f.offset, f.type->size, &end) || end > next ||
          !RangeWithin(f.offset, f.type->size, desc->size)) {
        return absl::InternalError(absl::StrCat("libffi laid out class '", name, "' field '",
                                                f.name, "' outside the class"));
      }
      f.padding_after = next - end;
    }
  }
  cost += DescriptorBytes(*desc) + def.SpaceUsedLong() + 2 * name.capacity() + 64;
  uint64_t total = 0;
  if (!CheckedAdd(descriptor_bytes_, cost, &total) || total > kMaxDescriptorBytesPerSession) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "class '", name, "' would bring this session's class descriptors to ", total,
        " bytes, more than the descriptor memory limit of ", kMaxDescriptorBytesPerSession,
        " bytes per session"));
  }
  descriptor_bytes_ = total;
  definitions_.push_back(def);
  classes_.push_back(desc);
  by_name_[name] = desc;
  return LayoutOf(*desc);
}

v1::ClassLayout LayoutOf(const TypeDesc& klass) {
  v1::ClassLayout layout;
  layout.set_name(klass.name);
  layout.set_opaque(klass.opaque);
  layout.set_size(klass.size);
  layout.set_alignment(klass.opaque ? 0 : klass.align);
  for (const FieldDesc& f : klass.fields) {
    v1::FieldLayout* out = layout.add_fields();
    out->set_name(f.name);
    out->set_offset(f.offset);
    out->set_size(f.type->size);
    out->set_padding_after(f.padding_after);
    out->set_type(f.type->name);
    out->set_mutable_(f.is_mutable);
  }
  return layout;
}

absl::StatusOr<ResolvedSignature> ResolveSignature(const v1::Signature& signature,
                                                   const ClassTable& classes) {
  return ResolveSignatureAs(signature, classes, TypeUse::kParam, TypeUse::kResult);
}

absl::StatusOr<ResolvedSignature> ResolveSignatureAs(const v1::Signature& signature,
                                                     const ClassTable& classes,
                                                     TypeUse param_use, TypeUse result_use) {
  ResolvedSignature out;
  out.proto = signature;
  if (signature.convention() != v1::Signature::CONVENTION_PLAIN &&
      signature.convention() != v1::Signature::CONVENTION_FFI_RETURN) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown calling convention ", signature.convention()));
  }
  absl::StatusOr<TypeRef> result = classes.Resolve(signature.result(), result_use);
  if (!result.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("result: ", result.status().message()));
  }
  out.result = *result;
  if (signature.params_size() > kMaxParams) {
    return absl::InvalidArgumentError(
        absl::StrCat("too many parameters: ", signature.params_size(),
                     " (at most ", kMaxParams, ")"));
  }
  std::map<std::string, int> named;  // a length names its parameter: names are unique
  for (int i = 0; i < signature.params_size(); ++i) {
    const v1::Parameter& p = signature.params(i);
    if (!p.name().empty() && !IsIdentifier(p.name())) {
      return absl::InvalidArgumentError(
          absl::StrCat("parameter ", i + 1, ": name '", p.name(),
                       "' is not a C identifier"));
    }
    if (!p.name().empty()) {
      auto [it, fresh] = named.emplace(p.name(), i);
      if (!fresh) {
        return absl::InvalidArgumentError(absl::StrCat("parameter ", i + 1, ": name '", p.name(),
                                                       "' is already the name of parameter ",
                                                       it->second + 1));
      }
    }
    absl::StatusOr<TypeRef> type = classes.Resolve(p.type(), param_use);
    if (!type.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(DescribeArgument(i, p), ": ", type.status().message()));
    }
    out.params.push_back(*type);
    out.length_param.push_back(-1);
  }
  for (int i = 0; i < signature.params_size(); ++i) {
    const v1::Parameter& p = signature.params(i);
    if (out.params[i]->kind != TypeKind::kBuffer ||
        p.type().buffer().length_case() != v1::BufferType::kLengthParam) {
      continue;
    }
    const std::string& len = p.type().buffer().length_param();
    int found = -1;
    for (int j = 0; j < signature.params_size(); ++j) {
      if (j != i && signature.params(j).name() == len) found = j;
    }
    if (found < 0 || out.params[found]->kind != TypeKind::kScalar ||
        (out.params[found]->scalar->klass != ScalarClass::kSigned &&
         out.params[found]->scalar->klass != ScalarClass::kUnsigned)) {
      return absl::InvalidArgumentError(absl::StrCat(
          DescribeArgument(i, p), ": length parameter '", len,
          "' must be another, integer parameter of the function"));
    }
    out.length_param[i] = found;
  }
  return out;
}

}  // namespace ffibroker
