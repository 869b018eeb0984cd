#!/usr/bin/env bash
# pushgate's two entry points on a fresh Debian machine:
#   deploy/dev.sh demo   install what is missing, build, run the proxy on the demo upstream
#   deploy/dev.sh test   install what is missing, build, run the whole suite (plain + ASan/UBSan)
set -euo pipefail

cd "$(dirname "$0")/.."

PACKAGES=(build-essential meson ninja-build pkg-config clang libclang-rt-14-dev
          libnghttp2-dev libevent-dev libcurl4-openssl-dev libmimalloc-dev libssl-dev
          libhttp-parser-dev nghttp2-client curl openssl nginx-light python3 iproute2 procps
          nghttp2-proxy h2o haproxy apache2-utils prometheus libsystemd-dev help2man
          python3-yaml systemd man-db chromium strace valgrind)

install_missing() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "==> installing: ${missing[*]}"
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
    # Debian starts these services on install; the tests and benchmarks run their own.
    for service in nginx h2o haproxy nghttpx prometheus; do
        "${sudo[@]}" service "$service" stop >/dev/null 2>&1 || true
    done
}

build() { # build DIR [meson options...]
    local dir=$1
    shift
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" --werror "$@" >/dev/null
    fi
    ninja -C "$dir"
}

# Meson's summary is not what CI reads: sum every suite of every build into one line.
count_results() {
    python3 - "$@" <<'PY'
import json, sys
passed = failed = skipped = 0
for log in sys.argv[1:]:
    for line in open(log):
        r = json.loads(line)["result"]
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed else 0)
PY
}

run_tests() {
    install_missing
    local status=0
    build build
    meson test -C build --print-errorlogs || status=1
    build build-asan -Db_sanitize=address,undefined -Db_lundef=false
    # The benchmarks' quick modes run once, in the plain build (sanitizers would only slow them).
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        PG_SANITIZED=1 meson test -C build-asan --no-suite bench --print-errorlogs || status=1
    # libFuzzer targets (clang), each fuzzed for a bounded time on top of its corpus.
    CC=clang build build-fuzz -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false
    meson test -C build-fuzz --suite fuzz-run --print-errorlogs || status=1
    count_results build/meson-logs/testlog.json build-asan/meson-logs/testlog.json \
        build-fuzz/meson-logs/testlog.json || status=1
    return $status
}

run_demo() {
    install_missing
    build build >/dev/null
    local certs=build/demo-cert
    mkdir -p "$certs"
    if [ ! -f "$certs/demo.crt" ]; then
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
            -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
            -keyout "$certs/demo.key" -out "$certs/demo.crt" 2>/dev/null
    fi
    local port=${PUSHGATE_DEMO_PORT:-8443}
    cat <<MSG
==> pushgate demo: https://localhost:$port/ (self-signed certificate made on the spot)
    See the pushes:   nghttp -nv https://localhost:$port/
    Plain fetch:      curl -k --http2 https://localhost:$port/
    HTTP/1.1:         curl -k --http1.1 https://localhost:$port/
    Stop with Ctrl-C.
MSG
    exec build/pushgate --demo --tls-cert "$certs/demo.crt" --tls-key "$certs/demo.key" \
        -l "127.0.0.1:$port" "$@"
}

case "${1:-}" in
demo) shift; run_demo "$@" ;;
test) run_tests ;;
*) echo "usage: deploy/dev.sh demo|test" >&2; exit 2 ;;
esac
