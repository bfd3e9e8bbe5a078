#!/usr/bin/env bash
# build-worker.sh -- build mediasoup-worker OFFLINE from the npm tarball's own
# worker sources + Debian 12 (bookworm) packages. Nothing is fetched from
# GitHub, PyPI or meson's wrapdb: only the npm registry and Debian's archive.
# Adapted from the verified recipe in shared/reference (2026-11-26).
#
# Usage:  build-worker.sh [WORKDIR]          (default: a new temp dir)
#         Called by scripts/setup.mjs, which caches the binary under
#         ${XDG_CACHE_HOME:-~/.cache}/mediasoup-foresight/worker/<version>-<recipe hash>/
# Env:    MS_VERSION  mediasoup version (default 3.19.3 = newest with engines.node >=20)
#         JOBS        parallel compile jobs (default: nproc)
#         MESON_ARGS  extra meson args, e.g. "-Dms_disable_liburing=true"
#         SKIP_APT=1  don't run apt-get (packages already installed)
# Output: progress on stderr; the LAST LINE OF STDOUT is the absolute path of the
#         binary, so:  export MEDIASOUP_WORKER_BIN="$(build-worker.sh | tail -n1)"
#
# How it works: meson uses worker/subprojects/<directory from the .wrap> as-is
# when it exists, so we create those directories with tiny shim meson.build
# files that expose the variables worker/meson.build reads via get_variable(),
# backed by Debian's system libraries (pkg-config). A small source patch adapts
# the worker to libsrtp2 (Debian) instead of libsrtp3 (versatica fork), to
# liburing 2.3 and to Debian's KTLS-enabled libssl3 (DTLS BIO callback fix);
# meson_version is lowered to Debian's meson 1.0.1.
set -euo pipefail

MS_VERSION="${MS_VERSION:-3.19.3}"
WORKDIR="$(realpath -m "${1:-$(mktemp -d -t mediasoup-worker-build.XXXXXX)}")"
JOBS="${JOBS:-$(nproc)}"
MESON_ARGS="${MESON_ARGS:-}"
APT_PACKAGES=(
  g++ pkg-config meson ninja-build patch
  libssl-dev libuv1-dev libsrtp2-dev libusrsctp-dev libabsl-dev
  libflatbuffers-dev flatbuffers-compiler liburing-dev
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
libuv_dep = dependency('libuv', version: '>=1.44')
libuv = static_library('uv_shim', 'empty.c')
EOF
cat > "$d/meson_options.txt" <<'EOF'
option('build_tests', type: 'boolean', value: false)
option('build_benchmarks', type: 'boolean', value: false)
EOF

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
cat > "$d/meson_options.txt" <<'EOF'
option('crypto-library', type: 'string', value: 'openssl')
option('crypto-library-kdf', type: 'feature', value: 'disabled')
option('tests', type: 'feature', value: 'disabled')
EOF

d="$(shimdir usrsctp)"
cat > "$d/meson.build" <<'EOF'
project('usrsctp', 'c', version: 'system')
usrsctp_dep = dependency('usrsctp')
usrsctp = static_library('usrsctp_shim', 'empty.c')
EOF
cat > "$d/meson_options.txt" <<'EOF'
option('sctp_build_programs', type: 'boolean', value: false)
EOF

d="$(shimdir abseil-cpp)"
cat > "$d/meson.build" <<'EOF'
project('abseil-cpp', 'c', version: 'system')
absl_container_dep = declare_dependency(dependencies: [
  dependency('absl_flat_hash_map'),
  dependency('absl_flat_hash_set'),
  dependency('absl_btree'),
  dependency('absl_inlined_vector'),
])
absl_strings_dep = dependency('absl_strings')
absl_types_dep = declare_dependency(dependencies: [
  dependency('absl_optional'),
  dependency('absl_memory'),
])
absl_container_lib = static_library('absl_container_shim', 'empty.c')
EOF

d="$(shimdir flatbuffers)"
# flatc itself is found by fbs/meson.build's find_program('flatc') ->
# /usr/bin/flatc (2.0.8), matching Debian's 2.0.8 headers.
cat > "$d/meson.build" <<'EOF'
project('flatbuffers', 'c', version: 'system')
flatbuffers_dep = dependency('flatbuffers')
flatbuffers_lib = static_library('flatbuffers_shim', 'empty.c')
EOF

d="$(shimdir catch2)"
# Debian only has Catch2 v2; the worker's C++ unit tests (not built by
# default) need Catch2 v3, so provide an empty dependency.
cat > "$d/meson.build" <<'EOF'
project('catch2', 'c', version: 'none')
catch2_dep = dependency('', required: false)
catch2_with_main_dep = catch2_dep
EOF

d="$(shimdir liburing)"
cat > "$d/meson.build" <<'EOF'
project('liburing', 'c', version: 'system')
uring = dependency('liburing')
liburing = static_library('uring_shim', 'empty.c')
EOF

# ---------------------------------------------------------------- 4. source patch
log "patching worker sources (libsrtp2, liburing 2.3, KTLS-enabled libssl, meson 1.0)"
patch -p1 --forward --no-backup-if-mismatch -d "$WORKDIR/package" >&2 <<'PATCH_EOF'
diff -ru a/worker/include/RTC/SrtpSession.hpp b/worker/include/RTC/SrtpSession.hpp
--- a/worker/include/RTC/SrtpSession.hpp
+++ b/worker/include/RTC/SrtpSession.hpp
@@ -44,7 +44,8 @@
 		bool DecryptSrtcp(uint8_t* data, size_t* len);
 		void RemoveStream(uint32_t ssrc)
 		{
-			srtp_stream_remove(this->session, uint32_t{ htonl(ssrc) });
+			// [debian-libsrtp2 patch] libsrtp2 names it srtp_remove_stream().
+			srtp_remove_stream(this->session, uint32_t{ htonl(ssrc) });
 		}
 
 	private:
diff -ru a/worker/meson.build b/worker/meson.build
--- a/worker/meson.build
+++ b/worker/meson.build
@@ -6,7 +6,7 @@
     'cpp_std=c++17',
     'default_library=static',
   ],
-  meson_version: '>= 1.1.0',
+  meson_version: '>= 1.0.0',
 )
 
 cpp_args = [
diff -ru a/worker/src/DepLibSRTP.cpp b/worker/src/DepLibSRTP.cpp
--- a/worker/src/DepLibSRTP.cpp
+++ b/worker/src/DepLibSRTP.cpp
@@ -45,9 +45,9 @@
 	{ srtp_err_status_pfkey_err,     "error while using pfkey" },
 	{ srtp_err_status_bad_mki,       "error MKI present in packet is invalid" },
 	{ srtp_err_status_pkt_idx_old,   "packet index is too old to consider" },
-	{ srtp_err_status_pkt_idx_adv,   "packet index advanced, reset needed" },
-	{ srtp_err_status_buffer_small,  "out buffer is too small" },
-	{ srtp_err_status_cryptex_err,   "unsupported cryptex operation" }
+	{ srtp_err_status_pkt_idx_adv,   "packet index advanced, reset needed" }
+	// [debian-libsrtp2 patch] srtp_err_status_buffer_small and
+	// srtp_err_status_cryptex_err only exist in libsrtp3.
 };
 // clang-format on
 
diff -ru a/worker/src/DepLibUring.cpp b/worker/src/DepLibUring.cpp
--- a/worker/src/DepLibUring.cpp
+++ b/worker/src/DepLibUring.cpp
@@ -11,6 +11,31 @@
 #include <sys/resource.h>
 #include <sys/utsname.h>
 
+// [debian-liburing-2.3 patch] Debian bookworm ships liburing 2.3; these helpers
+// were added in liburing 2.4.
+#ifndef IO_URING_VERSION_MAJOR
+static inline int io_uring_major_version()
+{
+	return 2;
+}
+static inline int io_uring_minor_version()
+{
+	return 3;
+}
+static inline void io_uring_prep_sendto(
+  struct io_uring_sqe* sqe,
+  int sockfd,
+  const void* buf,
+  size_t len,
+  int flags,
+  const struct sockaddr* addr,
+  socklen_t addrlen)
+{
+	io_uring_prep_send(sqe, sockfd, buf, len, flags);
+	io_uring_prep_send_set_addr(sqe, addr, static_cast<__u16>(addrlen));
+}
+#endif
+
 /* Static variables. */
 thread_local bool DepLibUring::enabled{ false };
 // liburing instance per thread.
diff -ru a/worker/src/RTC/DtlsTransport.cpp b/worker/src/RTC/DtlsTransport.cpp
--- a/worker/src/RTC/DtlsTransport.cpp
+++ b/worker/src/RTC/DtlsTransport.cpp
@@ -65,7 +65,12 @@
   int ret,
   size_t* /*processed*/)
 {
-	long resultOfcallback = (operationType == BIO_CB_RETURN) ? static_cast<long>(ret) : 1;
+	// [debian-openssl-ktls patch] Return the real result for every *post*
+	// operation callback (operationType has BIO_CB_RETURN OR-ed in). Returning 1
+	// there made every BIO_ctrl() on this BIO return 1, so with a KTLS-enabled
+	// OpenSSL (Debian's libssl3) BIO_get_ktls_send() was true, no record write
+	// buffer was allocated and the first DTLS server flight crashed (SIGSEGV).
+	long resultOfcallback = (operationType & BIO_CB_RETURN) ? static_cast<long>(ret) : 1;
 
 	// This callback is called twice for write operations:
 	// - First one with operationType = BIO_CB_WRITE.
diff -ru a/worker/src/RTC/SrtpSession.cpp b/worker/src/RTC/SrtpSession.cpp
--- a/worker/src/RTC/SrtpSession.cpp
+++ b/worker/src/RTC/SrtpSession.cpp
@@ -178,7 +178,7 @@
 		}
 
 		MS_ASSERT(
-		  keyLen == policy.rtp.cipher_key_len, "given keyLen does not match policy.rtp.cipher_keyLen");
+		  keyLen == static_cast<size_t>(policy.rtp.cipher_key_len), "given keyLen does not match policy.rtp.cipher_keyLen");
 
 		switch (type)
 		{
@@ -273,13 +273,23 @@
 	protect:
 #endif
 
-		const srtp_err_status_t err = srtp_protect(
-		  /*srtp_t ctx*/ this->session,
-		  /*const uint8_t* rtp*/ *data,
-		  /*size_t rtp_len*/ *len,
-		  /*uint8_t* srtp*/ encryptBuffer,
-		  /*size_t* srtp_len*/ std::addressof(encryptLen),
-		  /*size_t mki_index*/ 0);
+		// [debian-libsrtp2 patch] libsrtp2's srtp_protect() works in place on an
+		// int length, so copy the packet into the output buffer (which must have
+		// room for the SRTP trailer) and protect it there.
+		if (*len + SRTP_MAX_TRAILER_LEN > encryptLen)
+		{
+			encryptBuffer = EncryptBuffer;
+			encryptLen    = EncryptBufferSize;
+		}
+
+		std::memcpy(encryptBuffer, *data, *len);
+
+		int srtpLen = static_cast<int>(*len);
+
+		const srtp_err_status_t err =
+		  srtp_protect(this->session, static_cast<void*>(encryptBuffer), std::addressof(srtpLen));
+
+		encryptLen = static_cast<size_t>(srtpLen);
 
 		if (DepLibSRTP::IsError(err))
 		{
@@ -299,14 +309,11 @@
 	{
 		MS_TRACE();
 
-		size_t decryptLen = *len;
+		// [debian-libsrtp2 patch] libsrtp2 API: in place, int length.
+		int decryptLen = static_cast<int>(*len);
 
-		const srtp_err_status_t err = srtp_unprotect(
-		  /*srtp_t ctx*/ this->session,
-		  /*const uint8_t* srtp*/ data,
-		  /*size_t srtp_len*/ *len,
-		  /*uint8_t* rtp*/ data,
-		  /*size_t* rtp_len*/ std::addressof(decryptLen));
+		const srtp_err_status_t err =
+		  srtp_unprotect(this->session, static_cast<void*>(data), std::addressof(decryptLen));
 
 		if (DepLibSRTP::IsError(err))
 		{
@@ -316,7 +323,7 @@
 		}
 
 		// Update the given len.
-		*len = decryptLen;
+		*len = static_cast<size_t>(decryptLen);
 
 		return true;
 	}
@@ -336,13 +343,15 @@
 		uint8_t* encryptBuffer = EncryptBuffer;
 		size_t encryptLen      = EncryptBufferSize;
 
+		// [debian-libsrtp2 patch] libsrtp2 API: in place, int length.
+		std::memcpy(encryptBuffer, *data, *len);
+
+		int srtcpLen = static_cast<int>(*len);
+
 		const srtp_err_status_t err = srtp_protect_rtcp(
-		  /*srtp_t ctx*/ this->session,
-		  /*const uint8_t* rtcp*/ *data,
-		  /*size_t rtcp_len*/ *len,
-		  /*uint8_t* srtcp*/ encryptBuffer,
-		  /*size_t* srtcp_len*/ std::addressof(encryptLen),
-		  /*size_t mki_index*/ 0);
+		  this->session, static_cast<void*>(encryptBuffer), std::addressof(srtcpLen));
+
+		encryptLen = static_cast<size_t>(srtcpLen);
 
 		if (DepLibSRTP::IsError(err))
 		{
@@ -362,14 +371,11 @@
 	{
 		MS_TRACE();
 
-		size_t decryptLen = *len;
+		// [debian-libsrtp2 patch] libsrtp2 API: in place, int length.
+		int decryptLen = static_cast<int>(*len);
 
-		const srtp_err_status_t err = srtp_unprotect_rtcp(
-		  /*srtp_t ctx*/ this->session,
-		  /*const uint8_t* srtcp*/ data,
-		  /*size_t srtcp_len*/ *len,
-		  /*uint8_t* rtcp*/ data,
-		  /*size_t* rtcp_len*/ std::addressof(decryptLen));
+		const srtp_err_status_t err =
+		  srtp_unprotect_rtcp(this->session, static_cast<void*>(data), std::addressof(decryptLen));
 
 		if (DepLibSRTP::IsError(err))
 		{
@@ -379,7 +385,7 @@
 		}
 
 		// Update the given len.
-		*len = decryptLen;
+		*len = static_cast<size_t>(decryptLen);
 
 		return true;
 	}
PATCH_EOF

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
