#!/usr/bin/env bash
# Autobahn conformance gate: start websock on a free port, run the Autobahn fuzzingclient
# against it (the cases of --scope: full = all 517, 1.* to 13.*), stop it with SIGTERM, and judge
# reports/servers/index.json with autobahn/check_report.py. Exit status: the checker's, or 1 on
# any runner/server trouble. --via-nginx puts nginx with deploy/nginx.conf between the two.
# --tls runs the suite over wss:// against websock's own TLS (--tls-port, TLS only, a throwaway
# self-signed certificate: wstest does not verify it when the spec names no hostname).
#
# usage: autobahn/run.sh [--bin PATH] [--report-dir DIR] [--via-nginx] [--tls]
#                        [--scope full|nginx-sample]
# env:   WEBSOCK_BIN (default build/websock), AUTOBAHN_TIMEOUT (seconds, default 2400),
#        AUTOBAHN_RUNNER=wstest|kosoku (default: wstest if it can be had, else kosoku)
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
here=$top/autobahn
bin=${WEBSOCK_BIN:-$top/build/websock}
report_dir=$top/reports
limit=${AUTOBAHN_TIMEOUT:-2400}
runner=${AUTOBAHN_RUNNER:-}
via_nginx=0
tls=0
scope=full

usage() { sed -n 's/^# \{0,1\}//; 9,12p' "${BASH_SOURCE[0]}"; exit "${1:-2}"; }
die() { echo "autobahn: $*" >&2; exit 1; }
say() { echo "autobahn: $*"; }

while (($#)); do
  case $1 in
    --bin) [[ $# -ge 2 ]] || usage; bin=$2; shift 2 ;;
    --report-dir) [[ $# -ge 2 ]] || usage; report_dir=$2; shift 2 ;;
    --via-nginx) via_nginx=1; shift ;;
    --tls) tls=1; shift ;;
    --scope) [[ $# -ge 2 ]] || usage; scope=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "autobahn: unknown argument: $1" >&2; usage ;;
  esac
done
case $scope in full|nginx-sample) ;; *) die "--scope must be full or nginx-sample, not '$scope'" ;; esac
case $runner in ''|wstest|kosoku) ;; *) die "AUTOBAHN_RUNNER must be wstest or kosoku, not '$runner'" ;; esac
[[ -x $bin ]] || die "server binary not found or not executable: $bin (build it first, or pass --bin)"
nginx_proxy=$top/tests/blackbox/nginx_proxy.py
if ((via_nginx)); then
  python3 "$nginx_proxy" which >/dev/null || die "--via-nginx needs nginx"
fi
command -v python3 >/dev/null || die "python3 is required (Debian: apt-get install python3 python3-venv)"
mkdir -p "$report_dir" "$top/build"
report_dir=$(cd "$report_dir" && pwd)
install_log=$top/build/autobahn-install.log

# Run a command quietly; on failure show its output (kept in $install_log) and fail.
quiet() {
  if ! "$@" >>"$install_log" 2>&1; then
    echo "autobahn: failed: $*" >&2; tail -n 40 "$install_log" >&2; return 1
  fi
}

# ---- runners -------------------------------------------------------------------------------
find_py27() {
  local c
  for c in "$(command -v python2.7 || true)" "$HOME"/.pyenv/versions/2.7*/bin/python; do
    # A pyenv shim is on PATH even when 2.7 is not selected, so actually run the candidate.
    if [[ -n $c && -x $c ]] && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (2, 7))' 2>/dev/null; then
      echo "$c"; return 0
    fi
  done
  return 1
}

# Genuine autobahntestsuite in build/autobahn-py27 (idempotent: kept while it works and the
# pinned requirements are unchanged).
setup_wstest() {
  local venv=$top/build/autobahn-py27 tools=$top/build/autobahn-virtualenv py27
  local req=$here/requirements-wstest.txt
  if cmp -s "$req" "$venv/requirements.txt" && "$venv/bin/wstest" -a >/dev/null 2>&1; then
    wstest=$venv/bin/wstest; return 0
  fi
  py27=$(find_py27) || { echo "autobahn: no Python 2.7 (python2.7 or ~/.pyenv/versions/2.7*) for wstest" >&2; return 1; }
  say "installing autobahntestsuite into $venv (log: $install_log)"
  : >"$install_log"
  # virtualenv goes into its own --target dir (PYTHONPATH wins over the Python's site-packages).
  if ! cmp -s "$here/requirements-virtualenv.txt" "$tools/requirements.txt"; then
    rm -rf "$tools"
    quiet "$py27" -m pip install --disable-pip-version-check --no-warn-script-location \
      --target "$tools" -r "$here/requirements-virtualenv.txt" || return 1
    cp "$here/requirements-virtualenv.txt" "$tools/requirements.txt"
  fi
  rm -rf "$venv"
  quiet env PYTHONPATH="$tools" "$py27" -m virtualenv --no-download "$venv" || return 1
  quiet "$venv/bin/pip" install --disable-pip-version-check -r "$req" || return 1
  quiet "$venv/bin/wstest" -a || return 1
  cp "$req" "$venv/requirements.txt"
  wstest=$venv/bin/wstest
}

# kosoku (Python 3 + Rust runner of the Autobahn case files) in build/autobahn-kosoku.
setup_kosoku() {
  local venv=$top/build/autobahn-kosoku req=$here/requirements-kosoku.txt
  if cmp -s "$req" "$venv/requirements.txt" && "$venv/bin/kosoku" -h >/dev/null 2>&1; then
    kosoku=$venv/bin/kosoku; return 0
  fi
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "autobahn: kosoku needs Python >= 3.10" >&2; return 1; }
  say "installing kosoku into $venv (log: $install_log)"
  : >"$install_log"
  rm -rf "$venv"
  quiet python3 -m venv "$venv" || return 1
  quiet "$venv/bin/pip" install --disable-pip-version-check -r "$req" || return 1
  cp "$req" "$venv/requirements.txt"
  kosoku=$venv/bin/kosoku
}

wstest='' kosoku=''
# Two gates started at once (make autobahn-all) must not install into the same venv together.
command -v flock >/dev/null || die "flock (util-linux) is required"
exec {setup_lock}>"$top/build/autobahn-setup.lock"
flock "$setup_lock"
if [[ $runner != kosoku ]]; then
  if wstest=$(command -v wstest); then :
  elif setup_wstest; then :
  elif [[ $runner == wstest ]]; then die "wstest runner unavailable"
  else say "wstest unavailable, falling back to kosoku"
  fi
fi
if [[ -z $wstest ]]; then
  setup_kosoku || die "kosoku runner unavailable"
fi
exec {setup_lock}>&-
if [[ -n $wstest ]]; then
  runner_desc="wstest $("$wstest" -a 2>/dev/null | awk '/AutobahnTestSuite/ {print $2}')"
else
  runner_desc="kosoku $("$(dirname "$kosoku")/python" -c 'import importlib.metadata as m; print(m.version("kosoku"))')"
fi

# ---- start the server ----------------------------------------------------------------------
tmp=$(mktemp -d)
pid='' nginx_pid='' started_pid=''
# shellcheck disable=SC2317  # (called from the trap)
cleanup() {
  local p
  for p in "$pid" "$nginx_pid" "$started_pid"; do
    if [[ -n $p ]] && kill -0 "$p" 2>/dev/null; then kill -KILL "$p" 2>/dev/null || true; fi
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Two gates running at once (make autobahn-all) must not pick the same port: bind(0) alone could
# hand one gate's port to the other before its server binds. A port is ours while we hold the lock
# on its file (the lock goes when this script and its children have exited).
port_locks=${TMPDIR:-/tmp}/websock-autobahn-ports
reserve_port() {
  local p fd
  mkdir -p "$port_locks"
  while :; do
    p=$(free_port)
    exec {fd}>"$port_locks/$p"
    if flock -n "$fd"; then reserved_port=$p; return 0; fi
    exec {fd}>&-
  done
}
# Wait until something accepts on the port, while process $1 lives: 0 once it accepts, 1 if it
# exited first; dies after 10 s.
wait_accepting() {
  local p=$1 port=$2 name=$3 i
  for ((i = 0; ; i++)); do
    kill -0 "$p" 2>/dev/null || return 1
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    ((i < 100)) || die "$name did not accept on port $port within 10 s"
    sleep 0.1
  done
}
# Start `$2 PORT` in the background (output to $3) on a reserved port and wait until it accepts;
# if it exits first (a process outside the gates took the port meanwhile), try another port.
# Sets started_pid and started_port.
start_on_port() {
  local name=$1 launch=$2 log=$3 try
  for try in 1 2 3; do
    reserve_port
    "$launch" "$reserved_port" >"$log" 2>&1 &
    started_pid=$! started_port=$reserved_port
    wait_accepting "$started_pid" "$started_port" "$name" && return 0
    wait "$started_pid" 2>/dev/null || true
    echo "autobahn: $name exited during startup on port $started_port (try $try of 3)" >&2
  done
  tail -n 20 "$log" >&2; die "$name exited during startup"
}

out=$report_dir/servers
rm -rf "$out"
mkdir -p "$out"
server_log=$report_dir/websock.log
# kosoku writes a whole message before it reads the echo; with websock's default 256 KiB output
# high-water mark the two would wait on each other for the 8 and 16 MiB messages of 9.*, so under
# kosoku the server may buffer a whole message (wstest reads while it writes and needs nothing).
if ((tls)); then
  ((via_nginx == 0)) || die "--tls and --via-nginx do not go together"
  command -v openssl >/dev/null || die "--tls needs the openssl command (apt-get install openssl)"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null \
    || die "cannot make a test certificate with openssl"
fi
launch_websock() {
  local args=(--port "$1" --bind 127.0.0.1 --log-level warn)
  ((tls)) && args=(--port 0 --tls-port "$1" --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem"
                   --bind 127.0.0.1 --log-level warn)
  [[ -n $kosoku ]] && args+=(--output-high-water 32M)
  exec "$bin" "${args[@]}"
}
start_on_port websock launch_websock "$server_log"
pid=$started_pid port=$started_port started_pid=
say "runner: $runner_desc; server: $bin on 127.0.0.1:$port (log: $server_log)"

# The suite talks to target_port: websock's, or nginx's in front of it.
target_port=$port agent=websock
scheme=ws
((tls)) && scheme=wss agent=websock-tls
if ((via_nginx)); then
  agent=websock-via-nginx
  nginx_dir=$report_dir/nginx  # its config and logs stay with the report
  launch_nginx() {
    rm -rf "$nginx_dir"
    exec python3 "$nginx_proxy" run --dir "$nginx_dir" --listen "$1" --upstream "127.0.0.1:$port"
  }
  start_on_port nginx launch_nginx "$report_dir/nginx.log"
  nginx_pid=$started_pid target_port=$started_port started_pid=
  say "nginx (deploy/nginx.conf) on 127.0.0.1:$target_port -> websock (config and logs: $nginx_dir)"
fi

# ---- run the fuzzing client ----------------------------------------------------------------
# The cases are the scope's, as check_report.py defines them (it judges the report by the same
# list). kosoku has no permessage-deflate cases, so under it every scope leaves out 12.* and 13.*.
scope_args=(--scope "$scope")
if [[ -n $kosoku ]]; then
  scope_args+=(--exclude '12.*' --exclude '13.*')
  say "note: kosoku has no permessage-deflate cases: 12.* and 13.* are not run"
fi
spec_cases=$(python3 "$here/check_report.py" "${scope_args[@]}" --print-spec-cases)
# The spec: autobahn/fuzzingclient.json with our port, agent, report directory and cases
# substituted; it lives in this run's temporary directory.
python3 - "$here/fuzzingclient.json" "$tmp/spec.json" "$target_port" "$out" "$agent" "$spec_cases" \
  "$scheme" <<'EOF'
import json, re, sys
src, dst, port, outdir, agent, cases, scheme = sys.argv[1:]
spec = json.load(open(src))
for server in spec["servers"]:
    server["url"] = re.sub(r"^wss?(://[^/:]+)(:\d+)?", scheme + r"\g<1>:" + port, server["url"])
    server["agent"] = agent
spec["outdir"] = outdir
cases = json.loads(cases)
spec["cases"], spec["exclude-cases"] = cases["cases"], cases["exclude-cases"]
json.dump(spec, open(dst, "w"), indent=2)
EOF

run_log=$report_dir/runner.log
say "running $(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["count"])' "$spec_cases") cases (scope $scope; timeout ${limit} s, log: $run_log)"
start=$SECONDS
rc=0
if [[ -n $wstest ]]; then
  (cd "$tmp" && timeout -k 10 "$limit" "$wstest" -m fuzzingclient -s "$tmp/spec.json") >"$run_log" 2>&1 || rc=$?
else
  # kosoku takes no spec file (yet): pass the same url and case selection as arguments.
  mapfile -t kargs < <(python3 - "$tmp/spec.json" <<'EOF'
import json, sys
spec = json.load(open(sys.argv[1]))
print(spec["servers"][0]["url"])
for c in spec.get("cases", []): print("-i"); print(c)
for c in spec.get("exclude-cases", []): print("-x"); print(c)
EOF
  )
  (cd "$tmp" && timeout -k 10 "$limit" "$kosoku" -m fuzzingclient -o "$out" "${kargs[@]}") >"$run_log" 2>&1 || rc=$?
fi
say "runner finished in $((SECONDS - start)) s with status $rc"
echo "$runner_desc" >"$out/runner.txt"

failed=0
if ((rc == 124 || rc == 137)); then
  echo "autobahn: FAIL: runner timed out after ${limit} s (AUTOBAHN_TIMEOUT)" >&2; failed=1
elif ((rc != 0)) && [[ -n $wstest ]]; then
  tail -n 20 "$run_log" >&2; echo "autobahn: FAIL: wstest exited with status $rc" >&2; failed=1
fi  # kosoku exits 1 whenever a case fails; the checker below judges that.

# ---- stop the server -----------------------------------------------------------------------
if ! kill -0 "$pid" 2>/dev/null; then
  st=0; wait "$pid" || st=$?
  echo "autobahn: FAIL: websock died during the run (status $st); see $server_log" >&2
  tail -n 20 "$server_log" >&2; failed=1
else
  kill -TERM "$pid"
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid"; { wait "$pid"; } 2>/dev/null || true
    echo "autobahn: FAIL: websock did not exit within 10 s of SIGTERM" >&2; failed=1
  else
    st=0; wait "$pid" || st=$?
    if ((st != 0)); then echo "autobahn: FAIL: websock exited with status $st after SIGTERM" >&2; failed=1; fi
  fi
fi
pid=''
if ((via_nginx)); then
  if ! kill -0 "$nginx_pid" 2>/dev/null; then
    echo "autobahn: FAIL: nginx died during the run; see $report_dir/nginx.log" >&2; failed=1
  else
    kill -TERM "$nginx_pid"
    for ((i = 0; i < 100; i++)); do kill -0 "$nginx_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$nginx_pid" 2>/dev/null || true; { wait "$nginx_pid"; } 2>/dev/null || true
  fi
  nginx_pid=''
  # nginx's own complaints about the traffic (errors and worse), for the record.
  if grep -E '\[(error|crit|alert|emerg)\]' "$nginx_dir/error.log" >"$tmp/nginx-errors"; then
    say "note: nginx logged $(wc -l <"$tmp/nginx-errors") error line(s) in $nginx_dir/error.log, e.g.:"
    head -n 5 "$tmp/nginx-errors"
  fi
fi

# ---- judge the report ----------------------------------------------------------------------
check=0
if [[ -f $out/index.json ]]; then
  python3 "$here/check_report.py" "${scope_args[@]}" "$out/index.json" || check=$?
else
  echo "autobahn: FAIL: no report written ($out/index.json missing)" >&2; check=1
fi
if [[ -f $out/index.html ]]; then say "HTML report: $out/index.html"; fi
if ((failed)); then
  echo "autobahn: FAIL (runner/server trouble above)" >&2; exit 1
fi
exit "$check"
