#!/usr/bin/env bash
# build-worker.sh -- build mediasoup-worker OFFLINE from the npm tarball's own
# worker sources + Debian 12 (bookworm) packages. Nothing is fetched from
# GitHub, PyPI or meson's wrapdb: only the npm registry and Debian's archive.
# Adapted from the verified 3.32.2 recipe in shared/reference (2026-12-07).
#
# Usage:  build-worker.sh [WORKDIR]          (default: a new temp dir)
#         Called by scripts/setup.mjs, which caches the binary under
#         ${XDG_CACHE_HOME:-~/.cache}/mediasoup-foresight/worker/<version>-<recipe hash>/
# Env:    MS_VERSION  mediasoup version (default 3.32.2)
#         JOBS        parallel compile jobs (default: nproc)
#         MESON_ARGS  extra meson args
#         SKIP_APT=1  don't run apt-get (packages already installed)
# Output: progress on stderr; the LAST LINE OF STDOUT is the absolute path of the
#         binary, so:  export MEDIASOUP_WORKER_BIN="$(build-worker.sh | tail -n1)"
#
# How it works: meson uses worker/subprojects/<directory from the .wrap> as-is
# when it exists, so we create those directories with tiny shim meson.build
# files that expose the variables worker/meson.build reads, backed by Debian's
# system libraries (pkg-config). Source adaptations, each checked to apply:
#  - meson_version lowered to Debian's meson 1.0.1;
#  - libsrtp2 (Debian) instead of versatica's libsrtp3: in-place
#    srtp_protect/unprotect, srtp_remove_stream, and the session policy filled as
#    libsrtp2's srtp_policy_t instead of libsrtp3's opaque policy object;
#  - ankerl::unordered_dense (not packaged in Debian, not on npm) mapped onto the
#    standard containers by a shim header: same behaviour, possibly slower hashing,
#    so worker CPU figures are only compared within one build.
# 3.32 has its own SCTP stack, so usrsctp, abseil and liburing are gone.
set -euo pipefail

MS_VERSION="${MS_VERSION:-3.32.2}"
WORKDIR="$(realpath -m "${1:-$(mktemp -d -t mediasoup-worker-build.XXXXXX)}")"
JOBS="${JOBS:-$(nproc)}"
MESON_ARGS="${MESON_ARGS:-}"
APT_PACKAGES=(
  g++ pkg-config meson ninja-build python3
  libssl-dev libuv1-dev libsrtp2-dev libflatbuffers-dev flatbuffers-compiler
)

log() { printf '\n==> %s\n' "$*" >&2; }
T0=$(date +%s)

# ---------------------------------------------------------------- 1. apt
if [ -z "${SKIP_APT:-}" ]; then
  log "apt-get install ${APT_PACKAGES[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  # --no-upgrade: don't upgrade already-installed packages (e.g. libssl3) as a side effect.
  apt-get install -y -qq --no-install-recommends --no-upgrade "${APT_PACKAGES[@]}" >&2
fi

# ---------------------------------------------------------------- 2. npm tarball
log "npm pack mediasoup@${MS_VERSION} -> ${WORKDIR}"
mkdir -p "$WORKDIR"
cd "$WORKDIR"
rm -rf package
TGZ="$(npm pack "mediasoup@${MS_VERSION}" --silent | tail -n1)"
tar xzf "$TGZ"
W="$WORKDIR/package/worker"
SP="$W/subprojects"

# ---------------------------------------------------------------- 3. shims
# Directory names are taken from the .wrap files ("directory = ...").
shimdir() {
  local d
  d="$SP/$(sed -n 's/^directory *= *//p' "$SP/$1.wrap")"
  mkdir -p "$d"
  # link_whole in worker/meson.build needs library *targets*; an empty static
  # lib satisfies that (link_whole is only used by the optional shared
  # libmediasoup-worker target, not by the mediasoup-worker executable).
  echo '/* intentionally empty */' > "$d/empty.c"
  echo "$d"
}
log "writing subproject shims"

d="$(shimdir openssl)"
cat > "$d/meson.build" <<'EOF'
project('openssl', 'c', version: 'system')
openssl_dep = dependency('openssl')
libcrypto_dep = dependency('libcrypto')
libssl_dep = dependency('libssl')
libcrypto_lib = static_library('crypto_shim', 'empty.c')
libssl_lib = static_library('ssl_shim', 'empty.c')
EOF

d="$(shimdir libuv)"
cat > "$d/meson.build" <<'EOF'
project('libuv', 'c', version: 'system')
# Every uv_* call in worker/src exists in Debian's 1.44.
libuv_dep = dependency('libuv', version: '>=1.44')
libuv = static_library('uv_shim', 'empty.c')
EOF
printf "option('build_tests', type: 'boolean', value: false)\noption('build_benchmarks', type: 'boolean', value: false)\n" > "$d/meson_options.txt"

d="$(shimdir libsrtp3)"
cat > "$d/meson.build" <<'EOF'
project('libsrtp3', 'c', version: 'system-libsrtp2')
_srtp2 = dependency('libsrtp2')
# Debian's libsrtp2.pc says -I/usr/include but the header is srtp2/srtp.h,
# while mediasoup does #include <srtp.h>.
libsrtp3_dep = declare_dependency(
  dependencies: _srtp2,
  compile_args: ['-I' + _srtp2.get_variable(pkgconfig: 'includedir') / 'srtp2'],
)
libsrtp3 = static_library('srtp_shim', 'empty.c')
EOF
printf "option('crypto-library', type: 'string', value: 'openssl')\noption('crypto-library-kdf', type: 'feature', value: 'disabled')\noption('tests', type: 'feature', value: 'disabled')\n" > "$d/meson_options.txt"

d="$(shimdir flatbuffers)"
# flatc itself is found by fbs/meson.build's find_program('flatc') -> /usr/bin/flatc
# (2.0.8), matching Debian's 2.0.8 headers.
cat > "$d/meson.build" <<'EOF'
project('flatbuffers', 'c', version: 'system')
flatbuffers_dep = dependency('flatbuffers')
flatbuffers_lib = static_library('flatbuffers_shim', 'empty.c')
EOF

d="$(shimdir catch2)"
cat > "$d/meson.build" <<'EOF'
project('catch2', 'c', version: 'none')
catch2_dep = dependency('', required: false)
catch2_with_main_dep = catch2_dep
EOF

d="$(shimdir unordered-dense)"
mkdir -p "$d/include/ankerl"
cat > "$d/meson.build" <<'EOF'
project('unordered_dense', 'cpp', version: 'std-shim')
unordered_dense_dep = declare_dependency(include_directories: include_directories('include'))
meson.override_dependency('unordered_dense', unordered_dense_dep)
EOF
cat > "$d/include/ankerl/unordered_dense.h" <<'EOF'
// Shim: ankerl::unordered_dense (not packaged in Debian 12) mapped onto the standard
// containers. The worker uses only map, set and hash (including hash<T> specializations).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>
#include <unordered_set>
namespace ankerl::unordered_dense {
template <class T, class Enable = void>
struct hash {
	using is_avalanching = void;
	auto operator()(const T& v) const noexcept(noexcept(std::hash<T>{}(v))) -> std::uint64_t { return std::hash<T>{}(v); }
};
template <class Key, class T, class Hash = hash<Key>, class KeyEqual = std::equal_to<Key>, class Allocator = std::allocator<std::pair<const Key, T>>>
using map = std::unordered_map<Key, T, Hash, KeyEqual, Allocator>;
template <class Key, class Hash = hash<Key>, class KeyEqual = std::equal_to<Key>, class Allocator = std::allocator<Key>>
using set = std::unordered_set<Key, Hash, KeyEqual, Allocator>;
}
EOF

# ---------------------------------------------------------------- 4. source adaptations
# Each edit asserts that the text it replaces is there, so a new mediasoup version
# fails here loudly instead of building something different.
log "adapting the worker to Debian's meson and libsrtp2"
python3 - "$W" <<'PY'
import sys
W = sys.argv[1]

def edit(path, old, new):
    p = f"{W}/{path}"
    s = open(p).read()
    assert s.count(old) == 1, (path, old[:70])
    open(p, 'w').write(s.replace(old, new))

edit('meson.build', "meson_version: '>= 1.1.0'", "meson_version: '>= 1.0.0'")
edit('include/RTC/SrtpSession.hpp', 'srtp_stream_remove(this->session, htonl(ssrc));', 'srtp_remove_stream(this->session, htonl(ssrc));')
# libsrtp2 has neither error code.
edit('src/DepLibSRTP.cpp', '\t{ srtp_err_status_buffer_small,  "out buffer is too small" },\n', '')
edit('src/DepLibSRTP.cpp', '\t{ srtp_err_status_cryptex_err,   "unsupported cryptex operation" },\n', '')

# libsrtp2 protects in place with int lengths; libsrtp3 writes to a separate buffer with size_t.
edit('src/RTC/SrtpSession.cpp', """		const srtp_err_status_t err = srtp_protect(
		  /*srtp_t ctx*/ this->session,
		  /*const uint8_t* rtp*/ *data,
		  /*size_t rtp_len*/ *len,
		  /*uint8_t* srtp*/ encryptBuffer,
		  /*size_t* srtp_len*/ std::addressof(encryptLen),
		  /*size_t mki_index*/ 0);""", """		if (*len + SRTP_MAX_TRAILER_LEN > encryptLen) { encryptBuffer = EncryptBuffer; encryptLen = EncryptBufferSize; }
		std::memcpy(encryptBuffer, *data, *len);
		int srtpLen = static_cast<int>(*len);
		const srtp_err_status_t err = srtp_protect(this->session, static_cast<void*>(encryptBuffer), std::addressof(srtpLen));
		encryptLen = static_cast<size_t>(srtpLen);""")
edit('src/RTC/SrtpSession.cpp', """		const srtp_err_status_t err = srtp_unprotect(
		  /*srtp_t ctx*/ this->session,
		  /*const uint8_t* srtp*/ data,
		  /*size_t srtp_len*/ *len,
		  /*uint8_t* rtp*/ data,
		  /*size_t* rtp_len*/ std::addressof(decryptLen));""", """		int decryptLenInt = static_cast<int>(*len);
		const srtp_err_status_t err = srtp_unprotect(this->session, static_cast<void*>(data), std::addressof(decryptLenInt));
		decryptLen = static_cast<size_t>(decryptLenInt);""")
edit('src/RTC/SrtpSession.cpp', """		const srtp_err_status_t err = srtp_protect_rtcp(
		  /*srtp_t ctx*/ this->session,
		  /*const uint8_t* rtcp*/ *data,
		  /*size_t rtcp_len*/ *len,
		  /*uint8_t* srtcp*/ encryptBuffer,
		  /*size_t* srtcp_len*/ std::addressof(encryptLen),
		  /*size_t mki_index*/ 0);""", """		std::memcpy(encryptBuffer, *data, *len);
		int srtcpLen = static_cast<int>(*len);
		const srtp_err_status_t err = srtp_protect_rtcp(this->session, static_cast<void*>(encryptBuffer), std::addressof(srtcpLen));
		encryptLen = static_cast<size_t>(srtcpLen);""")
edit('src/RTC/SrtpSession.cpp', """		const srtp_err_status_t err = srtp_unprotect_rtcp(
		  /*srtp_t ctx*/ this->session,
		  /*const uint8_t* srtcp*/ data,
		  /*size_t srtcp_len*/ *len,
		  /*uint8_t* rtcp*/ data,
		  /*size_t* rtcp_len*/ std::addressof(decryptLen));""", """		int decryptLenInt = static_cast<int>(*len);
		const srtp_err_status_t err = srtp_unprotect_rtcp(this->session, static_cast<void*>(data), std::addressof(decryptLenInt));
		decryptLen = static_cast<size_t>(decryptLenInt);""")

# libsrtp3's opaque policy object (srtp_policy_create, _set_profile, _add_key…) → libsrtp2's struct.
p = f"{W}/src/RTC/SrtpSession.cpp"
s = open(p).read()
begin = "\t\t// Create the policy object."
end = "\t\t// Policy is no longer needed once the session is created.\n\t\tsrtp_policy_destroy(policy);\n"
assert s.count(begin) == 1 and s.count(end) == 1
a, b = s.index(begin), s.index(end) + len(end)
s = s[:a] + """		// libsrtp2 has no opaque policy object: fill srtp_policy_t from the profile.
		srtp_policy_t policy;
		std::memset(std::addressof(policy), 0, sizeof(policy));
		srtp_err_status_t err = srtp_crypto_policy_set_from_profile_for_rtp(std::addressof(policy.rtp), profile);
		if (DepLibSRTP::IsError(err))
		{
			MS_THROW_ERROR("srtp_crypto_policy_set_from_profile_for_rtp() failed: %s", DepLibSRTP::GetErrorString(err).c_str());
		}
		err = srtp_crypto_policy_set_from_profile_for_rtcp(std::addressof(policy.rtcp), profile);
		if (DepLibSRTP::IsError(err))
		{
			MS_THROW_ERROR("srtp_crypto_policy_set_from_profile_for_rtcp() failed: %s", DepLibSRTP::GetErrorString(err).c_str());
		}
		policy.ssrc.type  = (type == Type::INBOUND) ? ssrc_any_inbound : ssrc_any_outbound;
		policy.ssrc.value = 0;
		const size_t masterKeyLen  = srtp_profile_get_master_key_length(profile);
		const size_t masterSaltLen = srtp_profile_get_master_salt_length(profile);
		MS_ASSERT(keyLen == masterKeyLen + masterSaltLen, "given keyLen does not match profile master key + salt length");
		// libsrtp2 reads the concatenated master key + salt from policy.key.
		policy.key             = const_cast<uint8_t*>(key);
		policy.allow_repeat_tx = 1;
		policy.window_size     = 1024;
		policy.next            = nullptr;
		err = srtp_create(std::addressof(this->session), std::addressof(policy));
""" + s[b:]
open(p, 'w').write(s)
PY

# ---------------------------------------------------------------- 5. meson + ninja
log "meson setup (Debian meson $(meson --version)) + compile -j${JOBS}"
cd "$W"
rm -rf out
# --wrap-mode=nodownload: never fetch anything; every subproject dir is a shim.
# shellcheck disable=SC2086
meson setup --wrap-mode=nodownload --buildtype=release -Db_ndebug=true $MESON_ARGS out >&2
# Like upstream tasks.py: generate the FBS/*.h headers first (the compile
# targets have no ordering dependency on that custom_target).
meson compile -C out flatbuffers-generator >&2
meson compile -C out -j "$JOBS" mediasoup-worker >&2

# ---------------------------------------------------------------- 6. result
BIN="$W/out/mediasoup-worker"
if ldd "$BIN" | grep -q 'not found'; then
  ldd "$BIN" >&2
  echo "ERROR: unresolved shared libraries" >&2
  exit 1
fi
install -m 0755 "$BIN" "$WORKDIR/mediasoup-worker"
T1=$(date +%s)
log "built mediasoup-worker ${MS_VERSION} in $((T1 - T0)) s; size $(stat -c %s "$WORKDIR/mediasoup-worker") bytes"
log "use it with:  MEDIASOUP_WORKER_BIN=$WORKDIR/mediasoup-worker  (install: MEDIASOUP_WORKER_BIN=... npm i mediasoup@${MS_VERSION})"
echo "$WORKDIR/mediasoup-worker"
