#!/usr/bin/env bash
# Free-threaded CPython 3.13 for the tests: builds it once, then reuses it.
#
#   bash .ci/freethreaded.sh      # prints the free-threaded python's path as its last line
#
# 1. Python: Debian's source package python3.13 (suite trixie), fetched with a private apt
#    configuration under the cache (the system's sources and lists are left alone); its
#    pristine upstream tarball is built with ./configure --disable-gil into
#    ~/.cache/mtlearn/python3.13t. Build dependencies missing from the machine are installed
#    with apt-get.
# 2. A venv from it, ~/.cache/mtlearn/venv313t, with binary wheels only: numpy<2.5 (2.4.x is
#    the last with cp313t wheels), pytest, threadpoolctl, ipywidgets, ipykernel (the course's
#    free-threaded Jupyter kernel: its pyzmq, psutil, debugpy have cp313t wheels), and
#    matplotlib when a free-threaded wheel exists; then mtlearn itself, editable, from this
#    working tree. One exception to "binary only": tornado (ipykernel needs it) publishes
#    only abi3 wheels, which a free-threaded build cannot load, so it is built from its
#    source distribution (a few seconds; its C speedups module declares that it runs
#    without the GIL, Py_MOD_GIL_NOT_USED).
#
# When both are there already it only checks them (seconds). `python3 run.py test` looks for
# the venv's python at that fixed place; its path is also written to ~/.cache/mtlearn/ft-python.
# `python3 run.py course` (or `python3 run.py freethreaded`) registers the venv as the Jupyter
# kernel "mtlearn — free-threaded 3.13t" of the project's .venv.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=$HOME/.cache/mtlearn
PREFIX=$CACHE/python3.13t
VENV=$CACHE/venv313t
FTPY=$PREFIX/bin/python3.13t
SUITE=trixie
BUILD_DEPS="gcc make pkg-config xz-utils libssl-dev zlib1g-dev libffi-dev libbz2-dev liblzma-dev
            libsqlite3-dev libreadline-dev libncurses-dev uuid-dev"
REQUIREMENTS=("numpy<2.5" pytest threadpoolctl ipywidgets ipykernel)
FROM_SOURCE=("tornado>=6.5.7")  # abi3 wheels only on PyPI: built from source (see above)
OPTIONAL=(matplotlib)  # installed only if a free-threaded wheel exists
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)

say() { echo "[freethreaded] $*"; }
die() { echo "[freethreaded] FAILED: $*" >&2; exit 1; }
trap 'die "command failed (line $LINENO): $BASH_COMMAND"' ERR

is_free_threaded() {  # $1 = python: a free-threaded build that works
    "$1" -c 'import sys, sysconfig; sys.exit(sysconfig.get_config_var("Py_GIL_DISABLED") != 1)' \
        2>/dev/null
}

# The Debian mirror the machine's own apt sources use (its first entry for this release).
debian_mirror() {
    local codename files
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    files=$(ls /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
               /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    [ -n "$codename" ] && [ -n "$files" ] || return 0
    # shellcheck disable=SC2086
    awk -v c="$codename" '
        /^[[:space:]]*#/ { next }
        /^deb(-src)?[[:space:]]/ { sub(/\[[^]]*\]/, ""); if ($3 == c) { print $2; exit } next }
        /^URIs:/ { u = $2 }
        /^Suites:/ { s = " " substr($0, 8) " " }
        /^[[:space:]]*$/ { u = ""; s = "" }
        u != "" && index(s, " " c " ") { print u; exit }
    ' $files
}

install_build_deps() {
    local pkg missing=()
    for pkg in $BUILD_DEPS; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" \
            || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && { say "build dependencies: all installed"; return; }
    say "installing build dependencies: ${missing[*]}"
    [ "$(id -u)" -eq 0 ] || die "missing build dependencies (${missing[*]}); install them as root"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# Downloads python3.13's Debian source package into $CACHE/src; prints the orig tarball.
download_source() {
    local mirror apt="$CACHE/apt" keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    mirror=$(debian_mirror)
    [ -n "$mirror" ] || { mirror=http://deb.debian.org/debian; say "no Debian mirror in the apt sources; using $mirror" >&2; }
    mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$CACHE/src"
    echo "deb-src [signed-by=$keyring] $mirror $SUITE main" > "$apt/sources.list"
    local opts=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o Dir::Etc::sourceparts=-
                -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache::archives=$apt/archives"
                -o APT::Sandbox::User=root)
    say "downloading the source package python3.13 ($SUITE) from $mirror" >&2
    apt-get "${opts[@]}" -qq --error-on=any update >&2 \
        || die "apt-get update of the private deb-src list ($mirror $SUITE) failed"
    (cd "$CACHE/src" && apt-get "${opts[@]}" -qq source --download-only python3.13 >&2) \
        || die "apt-get source --download-only python3.13 failed"
    local tarball
    tarball=$(ls -t "$CACHE"/src/python3.13_*.orig.tar.xz 2>/dev/null | head -1 || true)
    [ -n "$tarball" ] || die "no python3.13_*.orig.tar.xz in $CACHE/src after the download"
    echo "$tarball"
}

build_python() {
    install_build_deps
    local tarball work stage
    tarball=$(download_source)
    say "building $(basename "$tarball") with --disable-gil (a few minutes)"
    work=$(mktemp -d "$CACHE/build.XXXXXX")
    tar -xJf "$tarball" -C "$work"
    cd "$work"/Python-3.13*/
    # Installed into a staging folder and moved into place at the end, so that an
    # interrupted build never leaves a half-installed prefix behind that looks cached.
    stage="$work/stage"
    ./configure -q --disable-gil --prefix="$PREFIX" --disable-test-modules \
        > "$work/configure.log" 2>&1 || { tail -30 "$work/configure.log"; die "configure failed"; }
    make -j"$(nproc)" > "$work/make.log" 2>&1 || { tail -40 "$work/make.log"; die "make failed"; }
    make install DESTDIR="$stage" > "$work/install.log" 2>&1 \
        || { tail -30 "$work/install.log"; die "make install failed"; }
    # Modules a venv, pip, numpy and the tests rely on: a build without them is a failure.
    PYTHONHOME="$stage$PREFIX" "$stage$FTPY" -c \
        'import ssl, zlib, bz2, lzma, ctypes, sqlite3, readline, decimal, hashlib, uuid' \
        || { grep -A12 "necessary bits" "$work/make.log" || true; die "the build lacks standard modules"; }
    cd "$CACHE"
    rm -rf "$PREFIX" "$VENV"
    mv "$stage$PREFIX" "$PREFIX"
    rm -rf "$work"
}

make_venv() {
    local stamp="$VENV/.mtlearn-stamp" pkg
    local want="${FROM_SOURCE[*]} ${REQUIREMENTS[*]} ${OPTIONAL[*]}"
    if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] \
            && is_free_threaded "$VENV/bin/python"; then
        say "venv: $VENV is up to date"
    else
        say "creating $VENV and installing ${REQUIREMENTS[*]} (binary wheels only)"
        rm -rf "$VENV"
        "$FTPY" -m venv "$VENV"
        for pkg in "${FROM_SOURCE[@]}"; do
            say "$pkg: from its source distribution (no free-threaded wheel on PyPI)"
            "${PIP[@]}" --no-binary "${pkg%%[<>=]*}" "$pkg" \
                || die "pip install $pkg from source failed (a C compiler is needed)"
        done
        "${PIP[@]}" --only-binary :all: "${REQUIREMENTS[@]}" \
            || die "pip install ${REQUIREMENTS[*]} failed"
        for pkg in "${OPTIONAL[@]}"; do
            "${PIP[@]}" --only-binary :all: "$pkg" 2>/dev/null \
                || say "$pkg: no free-threaded (cp313t) wheel; left out, its tests are skipped"
        done
        echo "$want" > "$stamp"
    fi
    # mtlearn itself, editable, from this working tree (CI's clone is a new folder each time).
    if [ "$(cat "$VENV/.mtlearn-root" 2>/dev/null)" != "$ROOT" ]; then
        say "installing mtlearn from $ROOT (editable, no dependencies)"
        "${PIP[@]}" --no-deps -e "$ROOT" || die "pip install -e $ROOT failed"
        echo "$ROOT" > "$VENV/.mtlearn-root"
    fi
}

mkdir -p "$CACHE"
if is_free_threaded "$FTPY"; then
    say "python: $PREFIX is built"
else
    build_python
    is_free_threaded "$FTPY" || die "$FTPY is not a working free-threaded build"
fi
make_venv
"$VENV/bin/python" -c 'import sys; print("[freethreaded]", sys.version.replace("\n", " "))'
"$VENV/bin/python" -m pip list --disable-pip-version-check 2>/dev/null \
    | awk 'tolower($1) ~ /^(numpy|pytest|threadpoolctl|ipywidgets|ipykernel|pyzmq|tornado|matplotlib)$/ {printf "[freethreaded]   %s %s\n", $1, $2}'
echo "$VENV/bin/python" > "$CACHE/ft-python"
echo "$VENV/bin/python"
