"""Broker (a connection), Session, Library, Instance and Struct classes.

Every RPC goes through Broker._rpc, which turns a grpc.RpcError into the
ffibroker exception of its status code (ffibroker.errors). Objects that
hold server-side state (Session, Library, Instance) release it on close()
or when their `with` block ends. Not thread-safe per object; use one
Session per thread (a Broker may be shared).
"""
import grpc

from ffibroker import errors
from ffibroker._rpc import health_pb2
from ffibroker._values import from_value, to_value
from ffibroker.v1 import broker_pb2, broker_pb2_grpc, calls_pb2, policy_pb2

BROKER_SERVICE = "ffibroker.v1.Broker"


class Broker:
    """A connection to ffibrokerd. Use ffibroker.connect()."""

    def __init__(self, address, api_key=None, timeout=5.0, root_certificates=None,
                 certificate_chain=None, private_key=None, server_name=None):
        target = address[len("tcp:"):] if address.startswith("tcp:") else address
        options = [("grpc.max_receive_message_length", 64 << 20),
                   ("grpc.max_send_message_length", 64 << 20)]
        if root_certificates or certificate_chain:
            if server_name:
                options.append(("grpc.ssl_target_name_override", server_name))
            creds = grpc.ssl_channel_credentials(root_certificates, private_key,
                                                 certificate_chain)
            self._channel = grpc.secure_channel(target, creds, options=options)
        else:
            self._channel = grpc.insecure_channel(target, options=options)
        self._metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            self._channel.close()
            raise errors.UnavailableError(f"cannot reach ffibrokerd at {address} "
                                          f"within {timeout} s", "DAEMON_UNREACHABLE") from None
        self._stub = broker_pb2_grpc.BrokerStub(self._channel)
        self._health = self._channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString)

    def _rpc(self, method, request, timeout=None):
        try:
            return getattr(self._stub, method)(request, metadata=self._metadata,
                                               timeout=timeout)
        except grpc.RpcError as e:
            raise errors.from_rpc_error(e) from None

    def session(self, idle_timeout_seconds=0):
        """A new Session (closed at the end of a `with` block)."""
        response = self._rpc("CreateSession", broker_pb2.CreateSessionRequest(
            idle_timeout_seconds=idle_timeout_seconds))
        return Session(self, response)

    def whoami(self):
        return self._rpc("Whoami", broker_pb2.WhoamiRequest())

    def status(self):
        """The daemon's confinement (GetStatusResponse)."""
        return self._rpc("GetStatus", broker_pb2.GetStatusRequest())

    def health(self, service=BROKER_SERVICE):
        """"SERVING" or "NOT_SERVING" for `service` ("" = the whole server)."""
        try:
            response = self._health(health_pb2.HealthCheckRequest(service=service),
                                    metadata=self._metadata, timeout=10)
        except grpc.RpcError as e:
            raise errors.from_rpc_error(e) from None
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Token(str):
    """A capability token: the token string itself, with .id, .claims
    (TokenClaims)."""

    def __new__(cls, response):
        token = super().__new__(cls, response.token)
        token.claims = response.claims
        token.id = response.claims.token_id
        return token


class Struct:
    """Base of the classes Session.register_class creates: a C struct as a
    Python value, one attribute per field (`Point(x=1.0, y=2.0)`). Fields not
    given are zero. Pass it by value to functions, or to Library.new."""
    _name = ""
    _field_names = ()

    def __init__(self, **fields):
        unknown = set(fields) - set(self._field_names)
        if unknown:
            raise TypeError(f"{self._name} has no field {sorted(unknown)[0]!r}")
        for name in self._field_names:
            setattr(self, name, fields.get(name, self._zero(name)))

    def _zero(self, name):
        t = self._types[name]
        kind = t.WhichOneof("type")
        if kind == "scalar":
            from ffibroker.v1 import types_pb2
            if t.scalar in (types_pb2.SCALAR_F32, types_pb2.SCALAR_F64):
                return 0.0
            return False if t.scalar == types_pb2.SCALAR_BOOL else 0
        if kind == "class_name":
            return self._session.classes[t.class_name]()
        if kind == "array":
            return [0] * t.array.length
        return 0

    def _fields(self):
        return {name: getattr(self, name) for name in self._field_names}

    def __eq__(self, other):
        return type(self) is type(other) and self._fields() == other._fields()

    def __repr__(self):
        inner = ", ".join(f"{k}={v!r}" for k, v in self._fields().items())
        return f"{self._name}({inner})"


class Session:
    """A session: opens libraries, registers classes, grants tokens."""

    def __init__(self, broker, response):
        self._broker = broker
        self.id = response.session_id
        self.principal = response.principal
        self.permission = response.permission
        self.classes = {}        # name -> Python class (Struct subclass or opaque marker)
        self._definitions = {}   # name -> v1.ClassDefinition
        self._closed = False

    def _rpc(self, method, request):
        return self._broker._rpc(method, request)

    def _definition(self, name):
        return self._definitions[name]

    def parse(self, functions=(), statics=(), classes=()):
        """ParseDeclarations against this session's classes: the structured
        form, or InvalidArgumentError listing every mistake (metadata
        "errors"; field_violations = (field, "column N: message"))."""
        response = self._rpc("ParseDeclarations", broker_pb2.ParseDeclarationsRequest(
            session_id=self.id, functions=list(functions), statics=list(statics),
            classes=list(classes)))
        if response.errors:
            lines = [f"{e.field}: {e.message}" for e in response.errors]
            # The first mistake's reason (a daemon too old to say: syntax).
            raise errors.InvalidArgumentError(
                "; ".join(lines), response.errors[0].reason or "DECLARATION_SYNTAX",
                {"errors": str(len(response.errors))},
                [(e.field, f"column {e.column}: {e.message}") for e in response.errors])
        return response

    def register_class(self, text):
        """Registers a class written like "Point { mut f64 x; f64 y; }
        ~point_free" or "opaque Counter" and returns it as a Python class
        (a Struct subclass; for an opaque class a class with no fields)."""
        definition = self.parse(classes=[text]).classes[0]
        response = self._rpc("RegisterClass", broker_pb2.RegisterClassRequest(
            session_id=self.id, text=text))
        self._definitions[definition.name] = definition
        cls = type(definition.name, (Struct,), {
            "_name": definition.name,
            "_field_names": tuple(f.name for f in definition.fields),
            "_types": {f.name: f.type for f in definition.fields},
            "_mutable": frozenset(f.name for f in definition.fields if f.mutable),
            "_session": self,
            "layout": response.layout,
            "opaque": definition.opaque,
        })
        self.classes[definition.name] = cls
        return cls

    def dlopen(self, library, functions=(), statics=(), token=None):
        """Opens `library` (a policy name or an absolute path) with the
        functions declared as text: a dict {name: "f64 cos(f64)"} or a list
        of texts; `statics` likewise ("mut i32 counter"). With `token`, the
        open is authorized by the token."""
        def texts(decls):
            if isinstance(decls, dict):
                return list(decls.keys()), list(decls.values())
            decls = list(decls)
            return [""] * len(decls), decls
        fnames, ftexts = texts(functions)
        snames, stexts = texts(statics)
        parsed = self.parse(functions=ftexts, statics=stexts)
        request = broker_pb2.OpenLibraryRequest(session_id=self.id, library=library,
                                                token=str(token or ""))
        for name, text in zip(fnames, ftexts):
            request.symbols.add(name=name, text=text)
        for name, text in zip(snames, stexts):
            request.statics.add(name=name, text=text)
        response = self._rpc("OpenLibrary", request)
        return Library(self, response, parsed)

    def grant_token(self, libraries=None, operations=(), ttl_seconds=0, call_quota=0,
                    audience=()):
        """A capability token of (a narrowing of) this session's permission.
        libraries: {library: [symbols]} or a list of libraries; operations:
        names like "OPEN_LIBRARY"."""
        request = broker_pb2.GrantTokenRequest(session_id=self.id, ttl_seconds=ttl_seconds,
                                               call_quota=call_quota, audience=list(audience))
        for lib in (libraries or ()):
            symbols = libraries[lib] if isinstance(libraries, dict) else ()
            request.libraries.add(library=lib, symbols=list(symbols))
        for op in operations:
            request.operations.append(policy_pb2.PermissionOperation.Value(op))
        return Token(self._rpc("GrantToken", request))

    def revoke_token(self, token):
        """Revokes a token (a Token, or a token id) and all exchanged from it."""
        token_id = token.id if isinstance(token, Token) else str(token)
        self._rpc("RevokeToken", broker_pb2.RevokeTokenRequest(session_id=self.id,
                                                                token_id=token_id))

    def inspect_token(self, token):
        return self._rpc("InspectToken", broker_pb2.InspectTokenRequest(
            session_id=self.id, token=str(token)))

    def exchange_token(self, token, libraries=None, operations=(), ttl_seconds=0,
                       call_quota=0):
        request = broker_pb2.ExchangeTokenRequest(session_id=self.id, token=str(token),
                                                  ttl_seconds=ttl_seconds,
                                                  call_quota=call_quota)
        for lib in (libraries or ()):
            symbols = libraries[lib] if isinstance(libraries, dict) else ()
            request.libraries.add(library=lib, symbols=list(symbols))
        for op in operations:
            request.operations.append(policy_pb2.PermissionOperation.Value(op))
        return Token(self._rpc("ExchangeToken", request))

    def revoke_permissions(self):
        """Drops this session's own permission for good (tokens still work)."""
        self._rpc("RevokePermissions", broker_pb2.RevokePermissionsRequest(session_id=self.id))

    def close(self):
        """Ends the session, releasing its libraries; returns how many."""
        if self._closed:
            return 0
        self._closed = True
        return self._rpc("CloseSession", broker_pb2.CloseSessionRequest(
            session_id=self.id)).libraries_released

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            self.close()
        except errors.Error:
            if exc[0] is None:
                raise


class _Function:
    """A declared function of a Library: call it with Python values."""

    def __init__(self, library, symbol):
        self._library = library
        self.name = symbol.name
        self.signature = symbol.signature
        self.__doc__ = symbol.text or symbol.name

    def __call__(self, *args):
        params = self.signature.params
        if len(args) != len(params):
            raise TypeError(f"{self.name}() takes {len(params)} arguments "
                            f"({len(args)} given)")
        lib = self._library
        request = calls_pb2.CallRequest(session_id=lib._session.id,
                                         library_handle=lib.handle, symbol=self.name)
        for i, (param, arg) in enumerate(zip(params, args)):
            where = f"{self.name}: argument {i + 1}" + (f" ({param.name})" if param.name else "")
            request.args.add().CopyFrom(to_value(param.type, arg, where, lib._session))
        response = lib._session._rpc("Call", request)
        for output in response.outputs:
            args[output.param_index][:] = output.value.bytes_value
        if response.HasField("errno_value"):
            lib.errno = response.errno_value
        if response.worker_notice:
            lib.worker_notice = response.worker_notice
        if not response.HasField("result"):
            return None
        return from_value(self.signature.result, response.result, lib._session, lib)


class _Statics:
    """Attribute access to a library's declared statics: lib.statics.NAME."""

    def __init__(self, library, statics):
        object.__setattr__(self, "_library", library)
        object.__setattr__(self, "_types", {s.name: s.type for s in statics})

    def __getattr__(self, name):
        if name not in self._types:
            raise AttributeError(f"no static '{name}' was declared")
        lib = self._library
        response = lib._session._rpc("ReadStatic", broker_pb2.ReadStaticRequest(
            session_id=lib._session.id, library_handle=lib.handle, name=name))
        return from_value(self._types[name], response.value, lib._session, lib)

    def __setattr__(self, name, value):
        if name not in self._types:
            raise AttributeError(f"no static '{name}' was declared")
        lib = self._library
        request = broker_pb2.WriteStaticRequest(session_id=lib._session.id,
                                                library_handle=lib.handle, name=name)
        request.value.CopyFrom(to_value(self._types[name], value, name, lib._session))
        lib._session._rpc("WriteStatic", request)


class Library:
    """An open library: its declared functions are attributes (lib.cos(0.5)),
    its statics are lib.statics.NAME."""

    def __init__(self, session, response, parsed):
        self._session = session
        self.handle = response.library_handle
        self.path = response.resolved_path
        self.worker_pid = response.worker_pid
        self.missing = list(response.missing_symbols)
        self.errno = None
        self.worker_notice = ""
        self._functions = {s.name: _Function(self, s) for s in parsed.functions}
        self.statics = _Statics(self, parsed.statics)
        self._closed = False

    def __getattr__(self, name):
        functions = self.__dict__.get("_functions", {})
        if name in functions:
            return functions[name]
        raise AttributeError(f"'{name}' was not declared when the library was opened")

    def new(self, cls, **fields):
        """A new instance of struct class `cls` (a class from
        register_class, or its name) in this library's worker."""
        name = cls if isinstance(cls, str) else cls._name
        value = self._session.classes[name](**fields)
        request = broker_pb2.NewInstanceRequest(session_id=self._session.id,
                                                library_handle=self.handle, class_name=name)
        from ffibroker.v1 import types_pb2
        t = types_pb2.Type(class_name=name)
        request.fields.CopyFrom(to_value(t, value, name, self._session).struct_value)
        response = self._session._rpc("NewInstance", request)
        return Instance(self._session, self, response.handle, name, False)

    def close(self):
        if self._closed:
            return
        self._closed = True
        self._session._rpc("CloseLibrary", broker_pb2.CloseLibraryRequest(
            session_id=self._session.id, library_handle=self.handle))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Instance:
    """A handle to an instance held by a library's worker. Its fields are
    attributes (read and written through the daemon; writing a field not
    declared `mut` fails). close() frees it (running the class destructor
    for owned results); so does the end of a `with` block."""

    def __init__(self, session, library, handle, class_name, borrowed):
        d = self.__dict__
        d["_session"], d["_library"], d["_handle"] = session, library, handle
        d["class_name"], d["borrowed"], d["_closed"] = class_name, borrowed, False

    def _types(self):
        return {f.name: f.type for f in self._session._definition(self.class_name).fields}

    def read(self):
        """All fields, as a value of the Struct class."""
        response = self._session._rpc("ReadFields", broker_pb2.ReadFieldsRequest(
            session_id=self._session.id, handle=self._handle))
        from ffibroker.v1 import types_pb2
        v = types_pb2.Value()
        v.struct_value.CopyFrom(response.fields)
        return from_value(types_pb2.Type(class_name=self.class_name), v, self._session,
                          self._library)

    def __getattr__(self, name):
        types = self._types()
        if name not in types:
            raise AttributeError(f"{self.class_name} has no field '{name}'")
        response = self._session._rpc("ReadFields", broker_pb2.ReadFieldsRequest(
            session_id=self._session.id, handle=self._handle, fields=[name]))
        return from_value(types[name], response.fields.fields[0].value, self._session,
                          self._library)

    def __setattr__(self, name, value):
        types = self._types()
        if name not in types:
            raise AttributeError(f"{self.class_name} has no field '{name}'")
        request = broker_pb2.WriteFieldsRequest(session_id=self._session.id,
                                                handle=self._handle)
        entry = request.fields.fields.add(name=name)
        entry.value.CopyFrom(to_value(types[name], value, f"{self.class_name}.{name}",
                                      self._session))
        self._session._rpc("WriteFields", request)

    def close(self):
        """Frees the instance; True if the class destructor ran."""
        if self._closed:
            return False
        self.__dict__["_closed"] = True
        return self._session._rpc("FreeInstance", broker_pb2.FreeInstanceRequest(
            session_id=self._session.id, handle=self._handle)).destructor_called

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"<{self.class_name} instance #{self._handle}>"
