# shellcheck shell=bash
# deploy/lib/packages.sh - the Debian 12 packages phuxanh needs, and the function that installs
# the missing ones. Sourced by tests/run.sh and deploy/quickstart.sh; defines only functions and
# variables, changes nothing when sourced.

# shellcheck disable=SC2034 # used by the scripts that source this file
# Everything to build, test and run phuxanh on Debian 12 (bookworm).
PX_DEBIAN_PACKAGES=(
    build-essential cmake pkg-config
    libzmq3-dev libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev protobuf-compiler
    libpq-dev libsodium-dev libmicrohttpd-dev libjansson-dev
    postgresql-15 postgresql-client-15
    python3 python3-zmq python3-protobuf python3-prometheus-client
    clang-format
    libcurl4-openssl-dev
    chromium
    systemd # systemd-analyze verify of deploy/systemd/ (tests/ops)
)

# Where the PostgreSQL 15 server binaries live on Debian.
# shellcheck disable=SC2034
PX_PG_BINDIR_DEFAULT=/usr/lib/postgresql/15/bin

# px_as_root CMD...: runs CMD as root (directly when already root, else through sudo).
px_as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "error: need root to run '$*' and sudo is not installed" >&2
        return 1
    fi
}

# px_pkg_installed PKG: true when dpkg reports PKG as installed (not merely known or removed).
px_pkg_installed() {
    dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed$'
}

# px_install_packages [PKG...]: installs the given packages (default: PX_DEBIAN_PACKAGES) that are
# not installed yet. A machine that has them all does not touch apt at all.
# PX_SKIP_APT=1 skips this step (for machines managed some other way).
px_install_packages() {
    local pkgs=("$@") missing=() p
    if [ ${#pkgs[@]} -eq 0 ]; then
        pkgs=("${PX_DEBIAN_PACKAGES[@]}")
    fi
    if [ "${PX_SKIP_APT:-0}" = 1 ]; then
        return 0
    fi
    if ! command -v dpkg >/dev/null 2>&1; then
        echo "warning: dpkg not found (not Debian?); make sure these are installed: ${pkgs[*]}" >&2
        return 0
    fi
    for p in "${pkgs[@]}"; do
        px_pkg_installed "$p" || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        return 0
    fi
    echo "==> installing missing Debian packages: ${missing[*]}"
    px_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    px_as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# px_pg_os_user: prints the system user PostgreSQL runs as when we are root (the server refuses
# to run as root): 'postgres' from the postgresql package, or else 'pxtest', created if needed.
px_pg_os_user() {
    if id -u postgres >/dev/null 2>&1; then
        echo postgres
        return 0
    fi
    if ! id -u pxtest >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin pxtest >&2
    fi
    echo pxtest
}
