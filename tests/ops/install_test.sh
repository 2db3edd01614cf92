#!/usr/bin/env bash
# The installed tree (issue 14): `cmake --install` into a DESTDIR, a small
# consumer built once with find_package(ffibroker) and once with pkg-config,
# both run against a daemon started from the installed tree; the installed
# CLI too; the installed units pass systemd-analyze verify.
# Usage: install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
tmp=$(mktemp -d /tmp/ffibroker-install-XXXXXX)
daemon_pid=
cleanup() {
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "install_test: FAIL: $*" >&2; exit 1; }

root=$tmp/root
DESTDIR=$root cmake --install "$build" >"$tmp/install.log"
prefix_path=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
prefix=$root$prefix_path
for f in sbin/ffibrokerd bin/ffibroker libexec/ffibroker/ffibroker-worker \
         etc/ffibroker/policy.textproto etc/ffibroker/profiles/strict.textproto \
         include/ffibroker/client.h include/ffibroker/v1/broker.grpc.pb.h \
         lib/libffibroker-client.so lib/cmake/ffibroker/ffibrokerConfig.cmake \
         lib/pkgconfig/ffibroker.pc lib/systemd/system/ffibrokerd.service \
         lib/systemd/system/ffibrokerd.socket share/doc/ffibroker/README.md; do
  [ -e "$prefix/$f" ] || fail "not installed: $prefix_path/$f"
done
echo "installed $(find "$root" -type f | wc -l) files"

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
# 1. find_package(ffibroker) -> ffibroker::client
cmake -S "$src/tests/ops/consumer" -B "$tmp/by-cmake" -DCMAKE_PREFIX_PATH="$prefix" \
      "${launcher[@]}" >"$tmp/cmake.log" || { cat "$tmp/cmake.log"; fail "find_package"; }
cmake --build "$tmp/by-cmake" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "consumer build"; }
# 2. pkg-config
flags=$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$root \
        pkg-config --cflags --libs ffibroker) || fail "pkg-config ffibroker"
${launcher:+ccache} g++ -std=c++17 "$src/tests/ops/consumer/consumer.cc" $flags \
    -o "$tmp/by-pkg-config" || fail "pkg-config consumer build"

# The daemon from the installed tree, with the installed profiles and worker.
cat >"$tmp/policy.textproto" <<POLICY
libraries { name: "libm.so.6" path: "/lib/x86_64-linux-gnu/libm.so.6" }
principals { name: "installer" uids: $(id -u)
             permission { libraries { library: "libm.so.6" } } }
POLICY
sock=$tmp/broker.sock
"$prefix/sbin/ffibrokerd" --policy="$tmp/policy.textproto" \
    --profiles="$prefix/etc/ffibroker/profiles" \
    --worker="$prefix/libexec/ffibroker/ffibroker-worker" \
    --listen="unix:$sock" 2>"$tmp/daemon.log" &
daemon_pid=$!
for _ in $(seq 600); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || { cat "$tmp/daemon.log"; fail "the installed daemon did not listen"; }

export LD_LIBRARY_PATH=$prefix/lib
for consumer in "$tmp/by-cmake/consumer" "$tmp/by-pkg-config"; do
  linked=$(ldd "$consumer")
  [[ $linked == *"$prefix/lib/libffibroker-client.so"* ]] || fail "$consumer: not linked to the installed library"
  out=$("$consumer" "unix:$sock") || { cat "$tmp/daemon.log"; fail "$consumer failed"; }
  [ "$out" = "0.8775825618903728" ] || fail "$consumer printed '$out'"
done
out=$("$prefix/bin/ffibroker" --address="unix:$sock" call libm.so.6 'f64 cos(f64)' 0.5)
[ "$out" = "0.8775825618903728" ] || fail "installed CLI printed '$out'"

# The installed units, their paths pointed into the DESTDIR.
mkdir "$tmp/units"
for unit in ffibrokerd.service ffibrokerd.socket ffibrokerd-metrics.socket; do
  sed "s#$prefix_path/#$prefix/#g" "$prefix/lib/systemd/system/$unit" >"$tmp/units/$unit"
done
MANPATH=$prefix/share/man: systemd-analyze verify --man="${VERIFY_MAN:-yes}" \
    "$tmp/units/ffibrokerd.socket" "$tmp/units/ffibrokerd-metrics.socket" \
    "$tmp/units/ffibrokerd.service" 2>"$tmp/verify.log" \
  || { cat "$tmp/verify.log"; fail "systemd-analyze verify"; }
[ ! -s "$tmp/verify.log" ] || { cat "$tmp/verify.log"; fail "systemd-analyze verify warned"; }
echo "1 passed, 0 failed"
