"""pip install ./client/python  (see README.md, "From Python").

Depends on Debian's python3-grpcio and python3-protobuf (install_requires is
left empty on purpose: pip must not fetch grpcio from an index). The stubs are
generated while building, by build_stubs.py with the system protoc.
"""
import os
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


class BuildWithStubs(build_py):
    def run(self):
        super().run()
        subprocess.run([sys.executable, os.path.join(HERE, "build_stubs.py"),
                        f"--proto-dir={os.path.join(HERE, '..', '..', 'proto')}",
                        f"--out={self.build_lib}"], check=True)


setup(
    name="ffibroker",
    version="0.1.0",
    description="Call native library functions through ffibrokerd",
    packages=["ffibroker"],
    python_requires=">=3.9",
    cmdclass={"build_py": BuildWithStubs},
)
