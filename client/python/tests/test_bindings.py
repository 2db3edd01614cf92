"""The Python module `ffibroker bindgen` writes for
tests/bindings/classes.textproto (directory in FFIBROKER_BINDINGS_DIR),
used against a real daemon."""
import os
import sys

import pytest

import ffibroker

sys.path.insert(0, os.environ["FFIBROKER_BINDINGS_DIR"])
import classes_bindings  # noqa: E402 - generated at build time


def test_module_functions(session):
    lib = classes_bindings.Library(session)
    assert lib.str_len("héllo") == 6
    assert lib.str_len(None) == 999
    assert lib.greet() == "héllo"
    assert lib.sum_bytes(b"\x01\x02\x03", 3) == 6
    buf = bytearray(b"abcd")
    lib.reverse4(buf)
    assert buf == bytearray(b"dcba")


def test_iroha_style_class(session):
    lib = classes_bindings.Library(session)
    with classes_bindings.Counter.new(lib, 41) as c:
        c.increment()
        assert c.value == 42
        c.value = 7
        assert c.value == 7
        assert c.Doubled.twice() == 14
    c2 = classes_bindings.Counter.new(lib, 1)
    assert c2.close() is True  # Counter__drop ran


def test_ffi_return_status_is_an_exception(session):
    lib = classes_bindings.Library(session)
    with pytest.raises(ffibroker.InvalidArgumentError) as e:
        classes_bindings.Counter.new(lib, -1)
    assert e.value.reason == "FFI_RETURN_ERROR"
    assert e.value.metadata["ffi_return"] == "ConversionFailed"
