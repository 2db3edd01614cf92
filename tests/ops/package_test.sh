#!/usr/bin/env bash
# The .deb (issue 14): cpack -G DEB from the build tree; its dependencies
# (from dpkg-shlibdeps) name the runtime libraries, its conffiles are the
# policy and profiles, it holds the binaries, units and client library, and
# apt resolves it on this machine (apt-get --simulate). lintian's verdict is
# printed when lintian is installed, not enforced.
# Usage: package_test.sh BUILD_DIR
set -euo pipefail
build=$1
tmp=$(mktemp -d /tmp/ffibroker-deb-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "package_test: FAIL: $*" >&2; exit 1; }

(cd "$build" && cpack -G DEB -B "$tmp" >"$tmp/cpack.log" 2>&1) || { cat "$tmp/cpack.log"; fail cpack; }
deb=$(ls "$tmp"/ffibroker_*.deb)
info=$(dpkg-deb -I "$deb")
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libgrpc++1.51 libprotobuf32 libseccomp2 libsystemd0 libffi8 libssl3 libabsl20220623; do
  [[ $depends == *"$lib "* || $depends == *"$lib,"* || $depends == *"$lib" ]] || fail "Depends lacks $lib: $depends"
done
conffiles=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)
[[ $conffiles == *"/ffibroker/policy.textproto"* && $conffiles == *"/ffibroker/profiles/strict.textproto"* ]] \
  || fail "conffiles: $conffiles"
contents=$(dpkg-deb -c "$deb")
for f in sbin/ffibrokerd bin/ffibroker libexec/ffibroker/ffibroker-worker libffibroker-client.so.0 \
         systemd/system/ffibrokerd.service systemd/system/ffibrokerd.socket ffibroker.pc; do
  [[ $contents == *"$f"* ]] || fail "not in the package: $f"
done
apt-get --simulate install "$deb" >"$tmp/apt.log" 2>&1 || { cat "$tmp/apt.log"; fail "apt cannot install it"; }
grep -q "^Inst ffibroker" "$tmp/apt.log" || { cat "$tmp/apt.log"; fail "apt would not install it"; }
echo "$info" | sed -n '/Package:/,$p'
if command -v lintian >/dev/null; then
  echo "lintian (informative):"
  lintian "$deb" 2>/dev/null | sed 's/ \[.*//' | sort | uniq -c || true
fi
echo "1 passed, 0 failed"
