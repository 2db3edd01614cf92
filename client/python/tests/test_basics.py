"""The package's core: connect, sessions, declarations as text, values,
errors with their structured details, health."""
import math

import pytest

import ffibroker


def test_readme_example(daemon):
    with ffibroker.connect(daemon.address, timeout=30) as broker, broker.session() as s:
        libm = s.dlopen("libm.so.6", {"cos": "f64 cos(f64)", "pow": "f64 pow(f64, f64)"})
        assert libm.cos(0.5) == 0.8775825618903728
        assert libm.pow(2, 10) == 1024.0


def test_a_list_of_declarations_names_itself(session):
    libm = session.dlopen("libm.so.6", ["f64 sin(f64 x)"])
    assert libm.sin(0.0) == 0.0


def test_64_bit_integers_are_exact(session):
    lib = session.dlopen("scalars", ["u64 id_u64(u64)", "i64 id_i64(i64)",
                                     "u64 make_u64_max()", "i64 make_i64_min()"])
    assert lib.id_u64(2**64 - 1) == 2**64 - 1
    assert lib.id_i64(-2**63) == -2**63
    assert lib.make_u64_max() == 18446744073709551615
    assert lib.make_i64_min() == -9223372036854775808


def test_out_of_range_integers_are_invalid_argument_with_reason(session):
    lib = session.dlopen("scalars", ["u8 id_u8(u8 byte)", "u64 id_u64(u64)"])
    with pytest.raises(ffibroker.InvalidArgumentError) as e:
        lib.id_u8(300)
    assert "300 is out of range for u8" in e.value.message
    assert e.value.reason == "ARGUMENT_OUT_OF_RANGE"
    assert e.value.metadata["type"] == "u8" and e.value.metadata["value"] == "300"
    with pytest.raises(ffibroker.InvalidArgumentError) as e:
        lib.id_u64(2**64)  # refused by the client itself: the same facts
    assert e.value.reason == "ARGUMENT_OUT_OF_RANGE"
    assert e.value.metadata["type"] == "u64"
    assert e.value.metadata["value"] == str(2**64)


def test_floats_and_bools(session):
    lib = session.dlopen("scalars", ["f32 half_f32(f32)", "bool not_bool(bool)",
                                     "f64 make_nan()", "f64 id_f64(f64)"])
    assert lib.half_f32(3.0) == 1.5
    assert lib.not_bool(True) is False
    assert math.isnan(lib.make_nan())
    assert lib.id_f64(-0.0) == 0.0 and math.copysign(1, lib.id_f64(-0.0)) < 0
    with pytest.raises(TypeError):
        lib.not_bool(1)
    with pytest.raises(TypeError):
        lib.id_f64("1.0")


def test_wrong_argument_count_is_a_type_error(session):
    libm = session.dlopen("libm.so.6", {"cos": "f64 cos(f64)"})
    with pytest.raises(TypeError, match=r"cos\(\) takes 1 arguments \(2 given\)"):
        libm.cos(1.0, 2.0)


def test_buffers_and_strings(session):
    lib = session.dlopen("classes", [
        "u32 sum_bytes(in u8[n] buf, u64 n)", "void fill(out u8[n] buf, u64 n, u8 v)",
        "void reverse4(inout u8[4] buf)", "u64 str_len(cstr? s)", "cstr greet()"])
    assert lib.sum_bytes(b"\x01\x02\x03", 3) == 6
    assert lib.sum_bytes(bytearray(b"\x05\x05"), 2) == 10
    out = bytearray(5)
    assert lib.fill(out, 5, 7) is None
    assert out == bytearray(b"\x07" * 5)
    buf = bytearray(b"abcd")
    lib.reverse4(buf)
    assert buf == bytearray(b"dcba")
    with pytest.raises(TypeError, match="writable"):
        lib.reverse4(b"abcd")
    assert lib.str_len("héllo") == 6
    assert lib.str_len(None) == 999
    assert lib.greet() == "héllo"


def test_declaration_mistakes_list_every_column(session):
    with pytest.raises(ffibroker.InvalidArgumentError) as e:
        session.dlopen("libm.so.6", ["f64 cos(f64", "f65 sin(f64)"])
    assert e.value.reason == "DECLARATION_SYNTAX"
    assert e.value.field_violations[0][0] == "functions[0]"
    assert e.value.field_violations[0][1].startswith("column 12:")
    assert e.value.field_violations[1] [0] == "functions[1]"
    assert e.value.field_violations[1][1].startswith("column 1:")


def test_an_invalid_declaration_is_not_called_a_syntax_error(session):
    # It parses; the buffer's length names no parameter.
    with pytest.raises(ffibroker.InvalidArgumentError) as e:
        session.dlopen("libm.so.6", ["f64 cos(in u8[n] buf, u64 len)"])
    assert e.value.reason == "INVALID_DECLARATION"
    assert e.value.field_violations[0][0] == "functions[0]"


def test_name_disagreeing_with_its_declaration(session):
    with pytest.raises(ffibroker.InvalidArgumentError) as e:
        session.dlopen("libm.so.6", {"cos": "f64 sin(f64)"})
    assert e.value.reason == "DECLARATION_NAME_MISMATCH"
    assert e.value.metadata["declared"] == "sin"
    assert e.value.field_violations[0][0] == "symbols[0].name"


def test_not_found_and_permission_errors_are_their_classes(session):
    with pytest.raises(ffibroker.NotFoundError) as e:
        session.dlopen("libm.so.6", {"cosx": "f64 cosx(f64)"})
    assert isinstance(e.value, ffibroker.Error)
    with pytest.raises(ffibroker.PermissionDeniedError):
        session.dlopen("/lib/x86_64-linux-gnu/libc.so.6", ["i32 getpid()"])


def test_every_status_code_has_its_exception_class():
    import grpc
    for code in grpc.StatusCode:
        if code is grpc.StatusCode.OK:
            continue
        cls = ffibroker.errors.BY_CODE[code]
        assert issubclass(cls, ffibroker.Error) and cls.code is code


def test_unreachable_daemon_is_unavailable(tmp_path):
    with pytest.raises(ffibroker.UnavailableError):
        ffibroker.connect(f"unix:{tmp_path}/none.sock", timeout=0.5)


def test_health_of_the_broker_service(broker):
    assert broker.health() == "SERVING"
    assert broker.health("") == "SERVING"
    with pytest.raises(ffibroker.NotFoundError):
        broker.health("ffibroker.v1.Nothing")


def test_closed_session_is_not_found(broker):
    s = broker.session()
    libm = s.dlopen("libm.so.6", {"cos": "f64 cos(f64)"})
    assert s.close() == 1
    with pytest.raises(ffibroker.NotFoundError):
        libm.cos(0.5)
