"""A real ffibrokerd from the build tree for the pytest suite.

ctest passes the paths (FFIBROKERD, FFIBROKER_SCALARS_LIB,
FFIBROKER_CLASSES_LIB, FFIBROKER_PROFILES_DIR) and PYTHONPATH (the package
assembled in the build tree); see client/python/CMakeLists.txt.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

import ffibroker


def _policy():
    uid = os.getuid()
    return f"""
libraries {{ name: "scalars" path: "{os.environ['FFIBROKER_SCALARS_LIB']}" }}
libraries {{ name: "classes" path: "{os.environ['FFIBROKER_CLASSES_LIB']}" }}
libraries {{ name: "libm.so.6" path: "/lib/x86_64-linux-gnu/libm.so.6" }}
principals {{ name: "test-user" uids: {uid}
  permission {{ libraries {{ library: "scalars" }} libraries {{ library: "classes" }}
               libraries {{ library: "libm.so.6" }}
               operations: [OPEN_LIBRARY, GRANT_TOKEN, WRITE_STATICS] }} }}
"""


class Daemon:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="ffibroker-py-")
        self.address = f"unix:{self.dir}/broker.sock"
        policy = os.path.join(self.dir, "policy.textproto")
        with open(policy, "w") as f:
            f.write(_policy())
        self.log = open(os.path.join(self.dir, "daemon.log"), "w")
        self.process = subprocess.Popen(
            [os.environ["FFIBROKERD"], f"--policy={policy}", f"--listen={self.address}",
             f"--profiles={os.environ['FFIBROKER_PROFILES_DIR']}"],
            stdout=subprocess.DEVNULL, stderr=self.log)
        socket = self.address[len("unix:"):]
        give_up = time.monotonic() + 30
        while not os.path.exists(socket):
            if self.process.poll() is not None or time.monotonic() > give_up:
                raise RuntimeError("ffibrokerd did not start:\n" + self.read_log())
            time.sleep(0.01)

    def read_log(self):
        with open(os.path.join(self.dir, "daemon.log")) as f:
            return f.read()

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def daemon():
    d = Daemon()
    yield d
    d.stop()


@pytest.fixture
def broker(daemon):
    with ffibroker.connect(daemon.address, timeout=30) as b:
        yield b


@pytest.fixture
def session(broker):
    with broker.session() as s:
        yield s
