"""Tokens and revocation from Python, with their structured errors."""
import pytest

import ffibroker


def test_token_opens_after_the_session_revoked_its_permission(broker):
    with broker.session() as s:
        token = s.grant_token(libraries={"libm.so.6": ["cos"]}, operations=["OPEN_LIBRARY"])
        assert token.id and token.claims.token_id == token.id
        s.revoke_permissions()
        with pytest.raises(ffibroker.PermissionDeniedError):
            s.dlopen("libm.so.6", {"cos": "f64 cos(f64)"})
        libm = s.dlopen("libm.so.6", {"cos": "f64 cos(f64)"}, token=token)
        assert libm.cos(0.0) == 1.0
        assert s.inspect_token(token).claims.token_id == token.id


def test_revoked_token_stops_calls_with_reason(broker):
    with broker.session() as s:
        token = s.grant_token()
        libm = s.dlopen("libm.so.6", {"cos": "f64 cos(f64)"}, token=token)
        assert libm.cos(0.0) == 1.0
        s.revoke_token(token)
        with pytest.raises(ffibroker.PermissionDeniedError) as e:
            libm.cos(0.0)
        assert e.value.reason == "TOKEN_REVOKED"


def test_call_quota(broker):
    with broker.session() as s:
        token = s.grant_token(call_quota=1)
        libm = s.dlopen("libm.so.6", {"cos": "f64 cos(f64)"}, token=token)
        libm.cos(0.0)
        with pytest.raises(ffibroker.ResourceExhaustedError) as e:
            libm.cos(0.0)
        assert e.value.reason == "TOKEN_QUOTA_EXHAUSTED"
