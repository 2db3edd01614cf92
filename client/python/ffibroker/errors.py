"""Exceptions: one class per gRPC status code, carrying the daemon's
structured error details (docs/errors.md).

    try:
        lib.id_u8(300)
    except ffibroker.InvalidArgumentError as e:
        e.reason        # "ARGUMENT_OUT_OF_RANGE"
        e.metadata      # {"argument": "1", ...}
        e.field_violations  # [("args[0]", "300 is out of range for u8 (0..255)")]
"""
import grpc

from ffibroker._rpc import error_details_pb2, status_pb2

_ERROR_INFO_URL = "type.googleapis.com/google.rpc.ErrorInfo"
_BAD_REQUEST_URL = "type.googleapis.com/google.rpc.BadRequest"


class Error(Exception):
    """Any error of ffibrokerd (or of this package on its behalf).

    code: the grpc.StatusCode; message: the daemon's message; reason: the
    stable reason (ErrorInfo.reason, e.g. "TOKEN_REVOKED"); metadata: a dict
    of facts (ErrorInfo.metadata); field_violations: (field, description)
    pairs from a google.rpc.BadRequest.
    """
    code = grpc.StatusCode.UNKNOWN

    def __init__(self, message, reason=None, metadata=None, field_violations=None):
        super().__init__(message)
        self.message = message
        self.reason = reason or self.code.name
        self.metadata = dict(metadata or {})
        self.field_violations = list(field_violations or [])

    def __str__(self):
        return f"{self.code.name}: {self.message} [{self.reason}]"


def _subclass(name, code):
    cls = type(name, (Error,), {"code": code, "__doc__": f"gRPC status {code.name}."})
    cls.__module__ = __name__
    return cls


CancelledError = _subclass("CancelledError", grpc.StatusCode.CANCELLED)
UnknownError = _subclass("UnknownError", grpc.StatusCode.UNKNOWN)
InvalidArgumentError = _subclass("InvalidArgumentError", grpc.StatusCode.INVALID_ARGUMENT)
DeadlineExceededError = _subclass("DeadlineExceededError", grpc.StatusCode.DEADLINE_EXCEEDED)
NotFoundError = _subclass("NotFoundError", grpc.StatusCode.NOT_FOUND)
AlreadyExistsError = _subclass("AlreadyExistsError", grpc.StatusCode.ALREADY_EXISTS)
PermissionDeniedError = _subclass("PermissionDeniedError", grpc.StatusCode.PERMISSION_DENIED)
ResourceExhaustedError = _subclass("ResourceExhaustedError", grpc.StatusCode.RESOURCE_EXHAUSTED)
FailedPreconditionError = _subclass("FailedPreconditionError",
                                    grpc.StatusCode.FAILED_PRECONDITION)
AbortedError = _subclass("AbortedError", grpc.StatusCode.ABORTED)
OutOfRangeError = _subclass("OutOfRangeError", grpc.StatusCode.OUT_OF_RANGE)
UnimplementedError = _subclass("UnimplementedError", grpc.StatusCode.UNIMPLEMENTED)
InternalError = _subclass("InternalError", grpc.StatusCode.INTERNAL)
UnavailableError = _subclass("UnavailableError", grpc.StatusCode.UNAVAILABLE)
DataLossError = _subclass("DataLossError", grpc.StatusCode.DATA_LOSS)
UnauthenticatedError = _subclass("UnauthenticatedError", grpc.StatusCode.UNAUTHENTICATED)

BY_CODE = {cls.code: cls for cls in (
    CancelledError, UnknownError, InvalidArgumentError, DeadlineExceededError, NotFoundError,
    AlreadyExistsError, PermissionDeniedError, ResourceExhaustedError, FailedPreconditionError,
    AbortedError, OutOfRangeError, UnimplementedError, InternalError, UnavailableError,
    DataLossError, UnauthenticatedError)}


def from_rpc_error(error):
    """The Error for a grpc.RpcError, with the details of its
    grpc-status-details-bin trailer (missing or unparsable details leave the
    reason as the code's name)."""
    code = error.code() if callable(getattr(error, "code", None)) else grpc.StatusCode.UNKNOWN
    message = error.details() if callable(getattr(error, "details", None)) else str(error)
    reason, metadata, violations = None, {}, []
    trailers = error.trailing_metadata() if callable(
        getattr(error, "trailing_metadata", None)) else None
    for key, value in trailers or ():
        if key != "grpc-status-details-bin":
            continue
        try:
            status = status_pb2.Status.FromString(value)
        except Exception:  # noqa: BLE001 - a malformed trailer is no reason to lose the error
            break
        for any_ in status.details:
            if any_.type_url == _ERROR_INFO_URL:
                info = error_details_pb2.ErrorInfo.FromString(any_.value)
                reason, metadata = info.reason, dict(info.metadata)
            elif any_.type_url == _BAD_REQUEST_URL:
                bad = error_details_pb2.BadRequest.FromString(any_.value)
                violations = [(v.field, v.description) for v in bad.field_violations]
    cls = BY_CODE.get(code, UnknownError)
    return cls(message or "", reason, metadata, violations)
