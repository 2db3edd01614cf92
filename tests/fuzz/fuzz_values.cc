#include "tests/fuzz/fuzz_values.h"

#include <cstdio>
#include <cstdlib>

#include "common/limits.h"
#include "common/types.h"

namespace ffibroker::fuzz {

void InvariantFailed(const char* file, int line, const char* cond, const std::string& what) {
  std::fprintf(stderr, "%s:%d: invariant failed: %s\n%s\n", file, line, cond, what.c_str());
  std::abort();
}

namespace {

v1::Scalar RandomScalar(FuzzedDataProvider& in) {
  // Mostly real scalars; now and then an unspecified or unknown number.
  int n = in.ConsumeIntegralInRange<int>(-1, 16);
  return static_cast<v1::Scalar>(n < 0 ? in.ConsumeIntegral<int>() : n);
}

std::string RandomName(FuzzedDataProvider& in, const std::vector<std::string>& known) {
  if (!known.empty() && in.ConsumeBool()) {
    return known[in.ConsumeIntegralInRange<size_t>(0, known.size() - 1)];
  }
  return in.ConsumeRandomLengthString(12);
}

uint32_t RandomLength(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0: return in.ConsumeIntegralInRange<uint32_t>(0, 4);
    case 1: return in.ConsumeIntegralInRange<uint32_t>(0, 64);
    case 2: return in.ConsumeIntegralInRange<uint32_t>(kMaxArrayLength - 1, kMaxArrayLength + 1);
    default: return in.ConsumeIntegral<uint32_t>();
  }
}

}  // namespace

v1::Type RandomType(FuzzedDataProvider& in, const std::vector<std::string>& classes, int depth) {
  v1::Type type;
  int kind = in.ConsumeIntegralInRange<int>(0, depth > 10 ? 0 : 7);
  switch (kind) {
    case 0:
    case 1:
      type.set_scalar(RandomScalar(in));
      break;
    case 2:
      type.set_class_name(RandomName(in, classes));
      break;
    case 3: {
      v1::HandleType* handle = type.mutable_handle();
      handle->set_class_name(RandomName(in, classes));
      handle->set_ownership(in.ConsumeBool() ? v1::HandleType::OWNERSHIP_OWNED
                                             : v1::HandleType::OWNERSHIP_BORROWED);
      handle->set_nullable(in.ConsumeBool());
      break;
    }
    case 4: {
      v1::ArrayType* array = type.mutable_array();
      *array->mutable_element() = RandomType(in, classes, depth + 1);
      array->set_length(RandomLength(in));
      break;
    }
    case 5: {
      v1::EnumType* e = type.mutable_enum_type();
      e->set_underlying(RandomScalar(in));
      int n = in.ConsumeIntegralInRange<int>(0, 6);
      for (int i = 0; i < n; ++i) e->add_values(in.ConsumeIntegralInRange<int64_t>(-300, 70000));
      break;
    }
    case 6: {
      v1::StringType* s = type.mutable_string();
      s->set_max_length(in.ConsumeIntegralInRange<uint32_t>(0, 80));
      s->set_nullable(in.ConsumeBool());
      break;
    }
    default: {
      v1::BufferType* b = type.mutable_buffer();
      b->set_direction(static_cast<v1::BufferType::Direction>(in.ConsumeIntegralInRange(0, 4)));
      if (in.ConsumeBool()) {
        b->set_fixed_length(in.ConsumeIntegralInRange<uint32_t>(0, 64));
      } else {
        b->set_length_param(in.ConsumeRandomLengthString(6));
      }
      break;
    }
  }
  return type;
}

v1::ClassDefinition RandomClass(FuzzedDataProvider& in, const std::string& name,
                                const std::vector<std::string>& classes, int max_fields) {
  v1::ClassDefinition def;
  def.set_name(name);
  def.set_opaque(in.ConsumeIntegralInRange<int>(0, 7) == 0);
  int n = in.ConsumeIntegralInRange<int>(def.opaque() ? 0 : 1, max_fields);
  for (int i = 0; i < n; ++i) {
    v1::FieldDefinition* field = def.add_fields();
    field->set_name(in.ConsumeIntegralInRange<int>(0, 15) == 0 ? in.ConsumeRandomLengthString(8)
                                                               : "f" + std::to_string(i));
    *field->mutable_type() = RandomType(in, classes);
    field->set_mutable_(in.ConsumeBool());
  }
  return def;
}

v1::Value RandomValue(FuzzedDataProvider& in, const TypeDesc& type, int depth) {
  v1::Value value;
  // One value in sixteen is of an arbitrary case, to test the type checks.
  if (depth > 12 || in.ConsumeIntegralInRange<int>(0, 15) == 0) {
    switch (in.ConsumeIntegralInRange<int>(0, 5)) {
      case 0: value.set_int_value(in.ConsumeIntegral<int64_t>()); break;
      case 1: value.set_uint_value(in.ConsumeIntegral<uint64_t>()); break;
      case 2: value.set_f64_value(in.ConsumeFloatingPoint<double>()); break;
      case 3: value.set_bool_value(in.ConsumeBool()); break;
      case 4: value.set_string_value(in.ConsumeRandomLengthString(8)); break;
      default: break;  // no value at all
    }
    return value;
  }
  switch (type.kind) {
    case TypeKind::kScalar:
    case TypeKind::kEnum: {
      const ScalarInfo* s = type.scalar;
      if (s == nullptr) break;
      if (type.kind == TypeKind::kEnum && !type.enum_values.empty() && in.ConsumeBool()) {
        int64_t v = type.enum_values[in.ConsumeIntegralInRange<size_t>(0, type.enum_values.size() - 1)];
        if (s->klass == ScalarClass::kUnsigned) {
          value.set_uint_value(static_cast<uint64_t>(v));
        } else {
          value.set_int_value(v);
        }
        break;
      }
      switch (s->klass) {
        case ScalarClass::kSigned:
          value.set_int_value(in.ConsumeIntegralInRange<int64_t>(s->min, static_cast<int64_t>(s->max)));
          break;
        case ScalarClass::kUnsigned:
          value.set_uint_value(in.ConsumeIntegralInRange<uint64_t>(0, s->max));
          break;
        case ScalarClass::kFloat:
          if (s->size == 4) {
            value.set_f32_value(in.ConsumeFloatingPoint<float>());
          } else {
            value.set_f64_value(in.ConsumeFloatingPoint<double>());
          }
          break;
        case ScalarClass::kBool:
          value.set_bool_value(in.ConsumeBool());
          break;
        default:
          break;
      }
      break;
    }
    case TypeKind::kClass: {
      v1::StructValue* fields = value.mutable_struct_value();
      for (const FieldDesc& field : type.fields) {
        if (in.ConsumeIntegralInRange<int>(0, 31) == 0) continue;  // a missing field
        v1::FieldValue* f = fields->add_fields();
        f->set_name(field.name);
        *f->mutable_value() = RandomValue(in, *field.type, depth + 1);
      }
      if (in.ConsumeIntegralInRange<int>(0, 31) == 0) fields->add_fields()->set_name("extra");
      break;
    }
    case TypeKind::kArray: {
      v1::ArrayValue* array = value.mutable_array_value();
      uint32_t n = type.length;
      if (in.ConsumeIntegralInRange<int>(0, 31) == 0) n = in.ConsumeIntegralInRange<uint32_t>(0, n + 1);
      for (uint32_t i = 0; i < n && type.element; ++i) {
        *array->add_elements() = RandomValue(in, *type.element, depth + 1);
      }
      break;
    }
    case TypeKind::kHandle:
      value.set_handle_value(in.ConsumeIntegral<uint64_t>());
      break;
    case TypeKind::kString:
      value.set_string_value(in.ConsumeRandomLengthString(type.max_length + 2));
      break;
    case TypeKind::kBuffer:
      value.set_bytes_value(in.ConsumeRandomLengthString(80));
      break;
  }
  return value;
}

}  // namespace ffibroker::fuzz
