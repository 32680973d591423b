# shellcheck shell=bash
# .ci/services.sh — test services for Publisher's test-suite.
#
# SOURCE this file (do not execute it):
#     source .ci/services.sh        # developer shell, or from .ci/run
#     ...run tests...
#     ci_services_stop              # also runs automatically on shell exit
#
# What it does (idempotent; fast when everything is already installed):
#   1. apt-installs what the tests need, only if missing: postgresql (server),
#      postfix (its smtp-sink binary, and private Postfix instances the bounce
#      tests start in temp folders; the system's postfix is never configured or
#      started), dovecot-imapd, chromium, chromium-driver, fonts-dejavu-core,
#      faketime (libfaketime: .ci/run's clock guard runs the tests under it).
#   2. Starts a throwaway PostgreSQL server (fresh data dir under a temp dir,
#      127.0.0.1 only, free port from 55432 up, trust auth, fsync=off), creates
#      database publisher_test and exports
#          PUBLISHER_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:PORT/publisher_test
#      On any PostgreSQL failure it prints one line saying why and leaves
#      PUBLISHER_TEST_PG_URL unset (the PG tests then skip and say so).
#   3. (No Dovecot here: the IMAP tests start a private one of their own,
#      tests/support/mailservers.py, the one place its config is written.)
#   4. Exports PUBLISHER_SMTP_SINK (path of smtp-sink), PUBLISHER_CHROMIUM
#      (/usr/bin/chromium), PUBLISHER_CHROMEDRIVER (/usr/bin/chromedriver) and
#      PUBLISHER_CHROMIUM_FLAGS (space-separated flags Chromium needs as root on
#      this closed network) when available.
#
# Knobs (environment): CI_SERVICES_SKIP_APT=1 skips step 1;
# CI_PG_BINDIR=/path/to/pg/bin overrides the PostgreSQL bin dir.
#
# It never aborts the sourcing shell: the caller's shell options (set -e/-u/
# pipefail) are saved, relaxed while this file runs, and restored at the end.

# `set +o` runs in a subshell, where bash drops -e, so remember -e via $-.
__ci_saved_opts="$(set +o)"
case $- in *e*) __ci_saved_opts="$__ci_saved_opts
set -e" ;; esac
set +e +u
set +o pipefail

__ci_log() { printf '[ci-services] %s\n' "$*" >&2; }

# Flags Chromium needs when run as root on a network with no outside access.
export PUBLISHER_CHROMIUM_FLAGS="--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update --disable-sync --no-first-run --disable-quic"

# ---------------------------------------------------------------- 1. packages
__ci_install_packages() {
    local pkgs="postgresql postfix dovecot-imapd chromium chromium-driver fonts-dejavu-core faketime"
    local missing="" p status sudo="" t0 log rc made_policy=0
    for p in $pkgs; do
        status="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)"
        case "$status" in
            *"install ok installed"*) ;;
            *) missing="$missing $p" ;;
        esac
    done
    missing="${missing# }"
    if [ -z "$missing" ]; then
        __ci_log "packages: all present ($pkgs)"
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo="sudo -n"
        else
            __ci_log "packages: MISSING ($missing) and not root / no passwordless sudo; skipping install"
            return 1
        fi
    fi
    t0=$SECONDS
    log="$(mktemp /tmp/ci-services-apt.XXXXXX.log)"
    __ci_log "packages: installing $missing (log: $log)"
    # Keep postfix unconfigured (tests run private instances with their own config).
    printf '%s\n' \
        'postfix postfix/main_mailer_type select No configuration' \
        'postfix postfix/mailname string localhost' \
        | $sudo debconf-set-selections >>"$log" 2>&1
    # Never let package installs start services (postgresql main cluster,
    # postfix). Docker-style images already ship a deny-all policy-rc.d.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null \
            && $sudo chmod 755 /usr/sbin/policy-rc.d && made_policy=1
    fi
    if [ -z "${__CI_APT_UPDATED:-}" ]; then
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get update >>"$log" 2>&1 \
            && __CI_APT_UPDATED=1
    fi
    # shellcheck disable=SC2086
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        $missing >>"$log" 2>&1
    rc=$?
    [ "$made_policy" = 1 ] && $sudo rm -f /usr/sbin/policy-rc.d
    if [ $rc -ne 0 ]; then
        __ci_log "packages: apt-get install FAILED (rc=$rc) after $((SECONDS - t0))s; last lines of $log:"
        tail -n 15 "$log" | sed 's/^/[ci-services]   /' >&2
        return 1
    fi
    __ci_log "packages: installed $missing in $((SECONDS - t0))s"
    rm -f "$log"
    return 0
}

# -------------------------------------------------------------- 2. PostgreSQL
__ci_port_busy() {  # true if something accepts TCP on 127.0.0.1:$1
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

__ci_pg_as() {  # run a command as the PostgreSQL OS user, from /
    if [ -n "${__CI_PG_OSUSER:-}" ]; then
        (cd / && runuser -u "$__CI_PG_OSUSER" -- "$@")
    else
        (cd / && "$@")
    fi
}

__ci_pg_start() {
    local bindir port tries=0 dir t0=$SECONDS
    # Already started by an earlier `source` in this shell? Reuse it.
    if [ -n "${__CI_PG_DIR:-}" ] && [ -n "${PUBLISHER_TEST_PG_URL:-}" ] \
        && "${__CI_PG_BINDIR}/pg_isready" -q -h 127.0.0.1 -p "$__CI_PG_PORT" 2>/dev/null; then
        __ci_log "postgres: already running on 127.0.0.1:$__CI_PG_PORT (reusing)"
        return 0
    fi
    unset PUBLISHER_TEST_PG_URL

    if [ -n "${CI_PG_BINDIR:-}" ]; then
        bindir="$CI_PG_BINDIR"
    else
        # newest installed major version
        # shellcheck disable=SC2012
        bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    fi
    if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ] || [ ! -x "$bindir/pg_ctl" ]; then
        __ci_log "postgres: NOT started: no initdb/pg_ctl found (looked in ${bindir:-/usr/lib/postgresql/*/bin}); PG tests will skip"
        return 1
    fi

    __CI_PG_OSUSER=""
    if [ "$(id -u)" -eq 0 ]; then
        if ! command -v runuser >/dev/null 2>&1; then
            __ci_log "postgres: NOT started: running as root and no runuser(1) to drop privileges; PG tests will skip"
            return 1
        fi
        if ! id -u postgres >/dev/null 2>&1; then
            useradd --system --no-create-home --home-dir /nonexistent \
                --shell /usr/sbin/nologin postgres >/dev/null 2>&1 || {
                __ci_log "postgres: NOT started: could not create OS user 'postgres'; PG tests will skip"
                return 1
            }
        fi
        __CI_PG_OSUSER=postgres
    fi

    dir="$(mktemp -d /tmp/publisher-pg.XXXXXX)" || {
        __ci_log "postgres: NOT started: mktemp failed; PG tests will skip"
        return 1
    }
    if [ -n "$__CI_PG_OSUSER" ]; then
        chown "$__CI_PG_OSUSER" "$dir" && chmod 700 "$dir"
    fi
    if ! __ci_pg_as "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust \
            -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1; then
        __ci_log "postgres: NOT started: initdb failed: $(tail -n 1 "$dir/initdb.log"); PG tests will skip"
        rm -rf "$dir"
        return 1
    fi

    port=${CI_PG_PORT:-55432}
    while :; do
        if ! __ci_port_busy "$port"; then
            if __ci_pg_as "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
                    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
                    start >"$dir/pg_ctl.log" 2>&1; then
                break
            fi
        fi
        tries=$((tries + 1))
        port=$((port + 1))
        if [ $tries -ge 20 ]; then
            __ci_log "postgres: NOT started: no usable port in ${CI_PG_PORT:-55432}..$port: $(tail -n 1 "$dir/server.log" 2>/dev/null); PG tests will skip"
            __ci_pg_as "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1
            rm -rf "$dir"
            return 1
        fi
    done

    __CI_PG_DIR="$dir"
    __CI_PG_PORT="$port"
    __CI_PG_BINDIR="$bindir"

    if ! "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres publisher_test >"$dir/createdb.log" 2>&1; then
        __ci_log "postgres: started but createdb publisher_test failed: $(tail -n 1 "$dir/createdb.log"); PG tests will skip"
        __ci_pg_stop
        return 1
    fi
    export PUBLISHER_TEST_PG_URL="postgresql+psycopg://postgres@127.0.0.1:${port}/publisher_test"
    __ci_log "postgres: $("$bindir/postgres" --version | sed "s/^postgres (PostgreSQL) /PostgreSQL /; s/ (.*//") on 127.0.0.1:$port, data $dir/data, ready in $((SECONDS - t0))s"
    return 0
}

__ci_pg_stop() {
    if [ -n "${__CI_PG_DIR:-}" ] && [ -d "$__CI_PG_DIR" ]; then
        __ci_pg_as "$__CI_PG_BINDIR/pg_ctl" -D "$__CI_PG_DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 \
            || __ci_pg_as "$__CI_PG_BINDIR/pg_ctl" -D "$__CI_PG_DIR/data" -m immediate stop >/dev/null 2>&1
        rm -rf "$__CI_PG_DIR"
        __ci_log "postgres: stopped (127.0.0.1:${__CI_PG_PORT:-?}), removed $__CI_PG_DIR"
    fi
    unset __CI_PG_DIR __CI_PG_PORT PUBLISHER_TEST_PG_URL
}

# Public: stop everything this file started. Safe to call more than once.
ci_services_stop() {
    __ci_pg_stop
}

# ------------------------------------------------------------ 4. executables
__ci_export_tools() {
    local p
    unset PUBLISHER_SMTP_SINK PUBLISHER_CHROMIUM PUBLISHER_CHROMEDRIVER
    for p in /usr/sbin/smtp-sink "$(command -v smtp-sink 2>/dev/null)"; do
        if [ -n "$p" ] && [ -x "$p" ]; then export PUBLISHER_SMTP_SINK="$p"; break; fi
    done
    [ -x /usr/bin/chromium ] && export PUBLISHER_CHROMIUM=/usr/bin/chromium
    [ -x /usr/bin/chromedriver ] && export PUBLISHER_CHROMEDRIVER=/usr/bin/chromedriver
    __ci_log "tools: smtp-sink=${PUBLISHER_SMTP_SINK:-MISSING} chromium=${PUBLISHER_CHROMIUM:-MISSING} chromedriver=${PUBLISHER_CHROMEDRIVER:-MISSING}"
}

# ---------------------------------------------------------------------- main
__ci_t0=$SECONDS
if [ "${CI_SERVICES_SKIP_APT:-0}" != 1 ]; then
    __ci_install_packages
fi
__ci_pg_start
__ci_export_tools

# Stop the server when the sourcing shell exits; keep any EXIT trap it had.
# shellcheck disable=SC2120
__ci_set_trap() {
    local old
    old="$(trap -p EXIT)"
    case "$old" in *ci_services_stop*) return 0 ;; esac
    if [ -n "$old" ]; then
        eval "set -- $old"   # -> trap -- 'CMD' EXIT ; CMD is $3
        # shellcheck disable=SC2064
        trap "ci_services_stop; $3" EXIT
    else
        trap 'ci_services_stop' EXIT
    fi
}
# shellcheck disable=SC2119
__ci_set_trap
unset -f __ci_set_trap
__ci_log "ready in $((SECONDS - __ci_t0))s (call ci_services_stop to stop PostgreSQL)"
unset __ci_t0

eval "$__ci_saved_opts"
unset __ci_saved_opts
