"""Python values <-> ffibroker.v1.Value, walking the declared v1.Type (the
one conversion routine of the package; the daemon checks every value again,
ranges included, and answers InvalidArgumentError naming the argument).

    int     -> int_value / uint_value (exact: never through a float)
    float   -> f64_value (an int is accepted for f32/f64 if exactly a float)
    bool    -> bool_value
    str     -> string_value (UTF-8); None for a nullable pointer or string
    bytes, bytearray, memoryview -> bytes_value; out/inout buffers must be
              writable (bytearray, writable memoryview) and are filled in place
    Struct instances or dicts -> struct_value; lists/tuples -> array_value
    Instance -> handle_value
"""
from ffibroker import errors
from ffibroker.v1 import types_pb2

_INT64_MIN, _UINT64_MAX = -(1 << 63), (1 << 64) - 1
_INTS = {types_pb2.SCALAR_I8, types_pb2.SCALAR_U8, types_pb2.SCALAR_I16, types_pb2.SCALAR_U16,
         types_pb2.SCALAR_I32, types_pb2.SCALAR_U32, types_pb2.SCALAR_I64, types_pb2.SCALAR_U64,
         types_pb2.SCALAR_ISIZE, types_pb2.SCALAR_USIZE}
_FLOATS = {types_pb2.SCALAR_F32, types_pb2.SCALAR_F64}
_WRITABLE = (bytearray,)


def _bad(where, message, reason="INVALID_ARGUMENT", **metadata):
    return errors.InvalidArgumentError(f"{where}: {message}", reason,
                                       {"field": where, **metadata}, [(where, message)])


def _type_name(scalar):
    """"u8" for SCALAR_U8: the name declarations and the daemon use."""
    return types_pb2.Scalar.Name(scalar).removeprefix("SCALAR_").lower()


def _int(value, where, scalar):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{where}: expected an int, got {type(value).__name__}")
    if not _INT64_MIN <= value <= _UINT64_MAX:
        raise _bad(where, f"{value} does not fit in 64 bits", "ARGUMENT_OUT_OF_RANGE",
                   type=_type_name(scalar), value=str(value))
    v = types_pb2.Value()
    if value < 0:
        v.int_value = value
    else:
        v.uint_value = value
    return v


def to_value(t, value, where, session):
    """The Value for `value` as type `t` (a v1.Type); `where` names it in
    errors ("cos: argument 1")."""
    kind = t.WhichOneof("type")
    v = types_pb2.Value()
    if kind == "scalar":
        if t.scalar in _INTS:
            return _int(value, where, t.scalar)
        if t.scalar in _FLOATS:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{where}: expected a float, got {type(value).__name__}")
            if isinstance(value, int) and float(value) != value:
                raise _bad(where, f"{value} is not exactly a float", "ARGUMENT_OUT_OF_RANGE",
                           type=_type_name(t.scalar), value=str(value))
            v.f64_value = float(value)
            return v
        if t.scalar == types_pb2.SCALAR_BOOL:
            if not isinstance(value, bool):
                raise TypeError(f"{where}: expected a bool, got {type(value).__name__}")
            v.bool_value = value
            return v
        raise TypeError(f"{where}: a value of type void")
    if kind == "enum_type":
        return _int(value, where, t.enum_type.underlying)
    if kind == "string":
        if value is None:
            v.null_value = True
        elif isinstance(value, str):
            v.string_value = value.encode("utf-8")
        elif isinstance(value, (bytes, bytearray)):
            v.string_value = bytes(value)
        else:
            raise TypeError(f"{where}: expected a str, got {type(value).__name__}")
        return v
    if kind == "buffer":
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(f"{where}: expected bytes, bytearray or memoryview, "
                            f"got {type(value).__name__}")
        if t.buffer.direction != types_pb2.BufferType.DIRECTION_IN and (
                isinstance(value, bytes) or (isinstance(value, memoryview) and value.readonly)):
            raise TypeError(f"{where}: an out/inout buffer must be writable (a bytearray), "
                            "it is filled in place")
        if t.buffer.direction != types_pb2.BufferType.DIRECTION_OUT:
            v.bytes_value = bytes(value)
        else:
            v.bytes_value = b""
        return v
    if kind == "handle":
        if value is None:
            v.null_value = True
            return v
        handle = getattr(value, "_handle", None)
        if handle is None:
            raise TypeError(f"{where}: expected a {t.handle.class_name} instance, "
                            f"got {type(value).__name__}")
        v.handle_value = handle
        return v
    if kind == "class_name":
        definition = session._definition(t.class_name)
        fields = value._fields() if hasattr(value, "_fields") else value
        if not isinstance(fields, dict):
            raise TypeError(f"{where}: expected a {t.class_name} or a dict of its fields, "
                            f"got {type(value).__name__}")
        for f in definition.fields:
            if f.name not in fields:
                raise TypeError(f"{where}: field '{f.name}' of {t.class_name} is missing")
            entry = v.struct_value.fields.add()
            entry.name = f.name
            entry.value.CopyFrom(to_value(f.type, fields[f.name], f"{where}.{f.name}", session))
        unknown = set(fields) - {f.name for f in definition.fields}
        if unknown:
            raise TypeError(f"{where}: {t.class_name} has no field {sorted(unknown)[0]!r}")
        return v
    if kind == "array":
        if not isinstance(value, (list, tuple)) or len(value) != t.array.length:
            raise TypeError(f"{where}: expected a list of {t.array.length} elements")
        for i, element in enumerate(value):
            v.array_value.elements.add().CopyFrom(
                to_value(t.array.element, element, f"{where}[{i}]", session))
        return v
    raise TypeError(f"{where}: unsupported type {kind}")


def from_value(t, v, session, library=None):
    """The Python value of `v` as type `t`; handles become Instances of
    `library`."""
    member = v.WhichOneof("value")
    if member is None or member == "null_value":
        return None
    if member in ("int_value", "uint_value"):
        return getattr(v, member)
    if member in ("f32_value", "f64_value", "bool_value"):
        return getattr(v, member)
    if member == "string_value":
        return v.string_value.decode("utf-8")
    if member == "bytes_value":
        return bytes(v.bytes_value)
    if member == "array_value":
        element = t.array.element if t.WhichOneof("type") == "array" else types_pb2.Type()
        return [from_value(element, e, session, library) for e in v.array_value.elements]
    if member == "struct_value":
        cls = session.classes[t.class_name]
        definition = session._definition(t.class_name)
        types = {f.name: f.type for f in definition.fields}
        return cls(**{f.name: from_value(types[f.name], f.value, session, library)
                      for f in v.struct_value.fields})
    if member == "handle_value":
        from ffibroker._client import Instance  # a cycle at import time otherwise
        return Instance(session, library, v.handle_value, t.handle.class_name,
                        t.handle.ownership == types_pb2.HandleType.OWNERSHIP_BORROWED)
    raise errors.DataLossError(f"unexpected value member {member}")
