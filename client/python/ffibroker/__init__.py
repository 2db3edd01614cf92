"""ffibroker: call native library functions through ffibrokerd, from Python.

    import ffibroker
    with ffibroker.connect("unix:/run/ffibroker/ffibrokerd.sock") as broker, \\
         broker.session() as s:
        libm = s.dlopen("libm.so.6", {"cos": "f64 cos(f64)", "pow": "f64 pow(f64, f64)"})
        libm.cos(0.5)        # 0.8775825618903728

Declarations are the text of docs/classes.md, parsed by the daemon. Errors
are ffibroker.Error subclasses, one per gRPC status code (ffibroker.errors),
with the daemon's stable reason (docs/errors.md).
"""
from ffibroker._client import BROKER_SERVICE, Broker, Instance, Library, Session, Struct, Token
from ffibroker.errors import *  # noqa: F401,F403 - the exception classes are the API
from ffibroker.errors import Error

DEFAULT_ADDRESS = "unix:/run/ffibroker/ffibrokerd.sock"


def connect(address=DEFAULT_ADDRESS, api_key=None, timeout=5.0, **tls):
    """A Broker connected to `address` ("unix:/ABS/PATH" or "tcp:HOST:PORT");
    UnavailableError if nothing answers within `timeout` seconds. tls:
    root_certificates, certificate_chain, private_key (PEM bytes),
    server_name."""
    return Broker(address, api_key=api_key, timeout=timeout, **tls)


__all__ = ["connect", "Broker", "Session", "Library", "Instance", "Struct", "Token", "Error",
           "BROKER_SERVICE", "DEFAULT_ADDRESS"]
