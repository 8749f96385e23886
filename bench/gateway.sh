#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Gateway vs nginx (issue 5, "Prove it"; issue 11, section 9): in one run, on 127.0.0.1 and free
# ports, it starts
#   - an upstream: nginx answering `200 {"ok":true}` to everything,
#   - nginx as a plain reverse proxy to it (no auth, keep-alive upstream connections), on plain
#     HTTP/1.1 and on a second port with `ssl http2` (a throwaway self-signed certificate),
#   - gatehouse (BUILD_DIR/gatehouse, or --gatehouse BIN) in front of the same upstream, configured
#     with curl through its admin API: a collection, an endpoint `ANY /*`, a client and four `jwt`
#     profiles (RSA 2048 for RS256 and for PS256, EC P-256 for ES256, Ed25519 for EdDSA); and a
#     second gatehouse process on the same store with --tls-cert/--tls-key for HTTP/2 over TLS,
# then drives both proxies with the same load and the same requests:
#   (a) one RS256 token repeated (what the verified-token cache serves),
#   (b) a fresh RS256 token per request, (c) ES256, (d) PS256, (e) EdDSA
#       (distinct tokens, each with its own jti, pre-signed by bench/gateway/tokens.mjs into a file
#       that bench/gateway/tokens.lua walks through, enough that none comes twice in a run; nginx
#       just ignores the Authorization header),
#   (h) HTTP/2 over TLS: h2load, one RS256 token repeated, against nginx's `ssl http2` proxy and
#       gatehouse's TLS listener,
# and prints, per scenario, gatehouse's throughput, latency and CPU per request as ratios to
# nginx's from the same run, with the targets of issue 11 (section 9); the fresh-token CPU target
# uses bare OpenSSL's verification time of each algorithm, measured in the same run by
# BUILD_DIR/bench/bench_verify. Everything it started is stopped by pid and its temporary directory
# removed, also on error or Ctrl-C. `make bench-gateway` calls it.
#
# usage: bench/gateway.sh BUILD_DIR [options]
#   --gatehouse BIN    the gatehouse binary to measure (default BUILD_DIR/gatehouse; env
#                      GATEHOUSE_BENCH_BIN), so one script measures a build before and after a change
#   --scenarios LIST   which of a,b,c,d,e,h to run, comma-separated (default all)
#   --workers N        gatehouse --threads and the proxy nginx's worker_processes (default: nproc)
#   --upstream-workers N   worker_processes of the upstream nginx (default 1)
#   --duration S       seconds of each measured wrk or h2load run (default 10)
#   --warmup S         seconds of an unmeasured run per proxy before the first measurement (default 3)
#   --connections C    wrk -c (default 32)
#   --wrk-threads T    wrk -t (default 1)
#   --h2-clients C     h2load -c (default 16)
#   --h2-streams M     h2load -m, concurrent streams per connection (default 16)
#   --rounds R         measure every scenario R times, alternating the two proxies; ratios are the
#                      median of the rounds; who goes first alternates (default 3)
#   --tokens N         distinct tokens of each fresh-token scenario; default: 1.3 times the faster
#                      proxy's requests per second in the warm-up, times the duration (at least
#                      20000)
#   --profile DIR      after the rounds, run each scenario once more per proxy under `perf stat`
#                      (system calls per request) and, for gatehouse, `perf record -g`; writes the
#                      data and the summaries into DIR and prints the summaries
#   --paced            fresh-token scenarios: in each round, nginx once more at gatehouse's rate of
#                      that round (wrk paced by a Lua delay()), and the CPU target judged against it too
#   --keep             keep the temporary directory (logs, configurations, tokens); processes are
#                      stopped all the same
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
usage() {
    sed -n '/^# usage:/,/^set -e/{ /^set -e/d; s/^# \{0,1\}//; p; }' "$0" >&2
    exit 2
}
[[ $# -ge 1 ]] || usage
cmdline="bench/gateway.sh $*"
build=$(cd "$1" && pwd) || usage
shift
workers=$(nproc)
upstream_workers=1
duration=10
warmup=3
connections=32
wrk_threads=1
h2_clients=16
h2_streams=16
rounds=3
tokens_per_run=
keep=0
gatehouse=${GATEHOUSE_BENCH_BIN:-}
scen_list=a,b,c,d,e,h
profile_dir=
paced=0
pace_ms= # set while a paced run goes (--paced)
while [[ $# -gt 0 ]]; do
    case $1 in
    --workers) workers=$2; shift 2 ;;
    --upstream-workers) upstream_workers=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --wrk-threads) wrk_threads=$2; shift 2 ;;
    --h2-clients) h2_clients=$2; shift 2 ;;
    --h2-streams) h2_streams=$2; shift 2 ;;
    --gatehouse) gatehouse=$2; shift 2 ;;
    --scenarios) scen_list=$2; shift 2 ;;
    --profile) profile_dir=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --tokens) tokens_per_run=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --paced) paced=1; shift ;;
    *) echo "gateway.sh: unknown option $1" >&2; usage ;;
    esac
done
for n in "$workers" "$upstream_workers" "$duration" "$warmup" "$connections" "$wrk_threads" "$rounds" \
    "$h2_clients" "$h2_streams" \
    ${tokens_per_run:+"$tokens_per_run"}; do
    [[ $n =~ ^[0-9]+$ && $n -ge 0 ]] || { echo "gateway.sh: not a number: $n" >&2; exit 2; }
done

gatehouse=${gatehouse:-$build/gatehouse}
[[ $gatehouse == /* ]] || gatehouse=$PWD/$gatehouse
IFS=, read -r -a scens <<<"$scen_list"
for scen in "${scens[@]}"; do
    [[ $scen =~ ^[abcdeh]$ ]] || { echo "gateway.sh: unknown scenario $scen (a,b,c,d,e,h)" >&2; exit 2; }
done
has_scen() { [[ ,$scen_list, == *,$1,* ]]; }
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $gatehouse ]] || { echo "gateway.sh: $gatehouse is missing; build first (make build)" >&2; exit 2; }
[[ -x $nginx ]] || { echo "gateway.sh: nginx is missing (apt-get install nginx, or make deps)" >&2; exit 2; }
tools=(wrk node curl openssl)
has_scen h && tools+=(h2load)
[[ -n $profile_dir ]] && tools+=(perf)
for tool in "${tools[@]}"; do
    command -v "$tool" >/dev/null || { echo "gateway.sh: $tool is missing (make deps-bench)" >&2; exit 2; }
done
verify_bin=$build/bench/bench_verify
[[ -x $verify_bin ]] || echo "gateway.sh: $verify_bin is missing (make build-all): no fresh-token CPU target" >&2
if [[ -n $profile_dir ]]; then
    mkdir -p "$profile_dir"
    profile_dir=$(cd "$profile_dir" && pwd)
fi

# ---- processes and cleanup: everything started here is stopped by its pid ----
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-bench.XXXXXX")
pids=()
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ $keep == 1 ]]; then
        echo "# kept $tmp" >&2
    else
        rm -rf "$tmp"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
    echo "gateway.sh: $*" >&2
    exit 1
}

# Free loopback ports, picked by the kernel (bound to port 0 together, then released).
free_ports() {
    node -e '
      const net = require("node:net");
      const n = Number(process.argv[1]);
      Promise.all(Array.from({ length: n }, () => new Promise((ok, fail) => {
        const s = net.createServer();
        s.once("error", fail);
        s.listen(0, "127.0.0.1", () => ok(s));
      }))).then((servers) => {
        console.log(servers.map((s) => s.address().port).join(" "));
        servers.forEach((s) => s.close());
      });' "$1"
}

wait_http() { # URL: until anything answers
    for _ in $(seq 100); do
        curl -sk -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.1
    done
    die "nothing answers at $1"
}

# ---- nginx: the upstream and the plain reverse proxy, each in its own prefix ----
nginx_conf() { # DIR WORKERS SERVER_BLOCKS
    mkdir -p "$1/tmp"
    cat >"$1/nginx.conf" <<EOF
worker_processes $2;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
http {
    client_body_temp_path $1/tmp/client_body;
    proxy_temp_path $1/tmp/proxy;
    fastcgi_temp_path $1/tmp/fastcgi;
    uwsgi_temp_path $1/tmp/uwsgi;
    scgi_temp_path $1/tmp/scgi;
    keepalive_requests 1000000;
$3
}
EOF
}
start_nginx() { # DIR
    "$nginx" -t -q -p "$1" -c "$1/nginx.conf" -e "$1/error.log" || die "bad nginx configuration in $1"
    "$nginx" -p "$1" -c "$1/nginx.conf" -e "$1/error.log" >"$1/stdout" 2>&1 &
    pids+=($!)
}

read -r up_port proxy_port h2_port < <(free_ports 3)
# a throwaway self-signed certificate for the HTTP/2-over-TLS scenario, the same for both proxies
tls=$tmp/tls
mkdir -p "$tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$tls/key.pem" -out "$tls/cert.pem" 2>/dev/null ||
    die "openssl could not make a certificate"
up=$tmp/upstream
proxy=$tmp/nginx-proxy
nginx_conf "$up" "$upstream_workers" "    access_log off;
    server {
        listen 127.0.0.1:$up_port backlog=4096;
        default_type application/json;
        location / { return 200 '{\"ok\":true}'; }
    }"
# One access-log line per request, as gatehouse writes one (to a file in both cases).
nginx_conf "$proxy" "$workers" "    access_log $proxy/access.log;
    upstream backend {
        server 127.0.0.1:$up_port;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$proxy_port backlog=4096;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }
    }
    server {
        listen 127.0.0.1:$h2_port ssl http2 backlog=4096;
        ssl_protocols TLSv1.2 TLSv1.3; # 1.22's default stops at 1.2; gatehouse offers 1.3
        ssl_certificate $tls/cert.pem;
        ssl_certificate_key $tls/key.pem;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }
    }"
start_nginx "$up"
up_pid=${pids[-1]}
start_nginx "$proxy"
proxy_pid=${pids[-1]}
wait_http "http://127.0.0.1:$up_port/"
wait_http "http://127.0.0.1:$proxy_port/"
wait_http "https://127.0.0.1:$h2_port/"

# ---- gatehouse ----
gh=$tmp/gatehouse
mkdir -p "$gh"
start_gatehouse() { # NAME [OPTIONS...]: runs it on the store in $gh; sets NAME_pid, NAME_addr, NAME_admin
    local name=$1 pid gw admin _
    shift
    env -u GATEHOUSE_ADMIN_TOKEN -u GATEHOUSE_DB -u GATEHOUSE_DATA_DIR -u GATEHOUSE_LISTEN -u GATEHOUSE_ADMIN_LISTEN \
        -u GATEHOUSE_THREADS -u GATEHOUSE_KEY_CLAIMS -u GATEHOUSE_LOG_LEVEL -u GATEHOUSE_TLS_CERT -u GATEHOUSE_TLS_KEY \
        "$gatehouse" serve --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --db "sqlite:$gh/gh.db" \
        --threads "$workers" "$@" >"$gh/$name.stdout" 2>"$gh/$name.stderr" &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 100); do
        gw=$(address_of "$name" "gateway listening")
        admin=$(address_of "$name" "admin API listening")
        [[ -n $gw && -n $admin ]] && break
        kill -0 "$pid" 2>/dev/null || die "gatehouse ($name) exited: $(cat "$gh/$name.stderr")"
        sleep 0.1
    done
    [[ -n $gw && -n $admin ]] || die "gatehouse ($name) did not start: $(cat "$gh/$name.stderr")"
    printf -v "${name}_pid" %s "$pid"
    printf -v "${name}_addr" %s "$gw"
    printf -v "${name}_admin" %s "$admin"
}
address_of() { # NAME MSG: the address of that gatehouse's log line with that msg
    grep -m1 "\"msg\":\"$2\"" "$gh/$1.stdout" 2>/dev/null | grep -o '"address":"[^"]*"' | cut -d'"' -f4 || true
}
start_gatehouse plain
gh_pid=$plain_pid gw_addr=$plain_addr admin_addr=$plain_admin
admin_token=$(cat "$gh/admin-token")

api_at() { # ADMIN_ADDR METHOD PATH [JSON]: prints the answer; dies on anything but 2xx
    local out=$tmp/api.out status
    status=$(curl -sS -o "$out" -w '%{http_code}' -X "$2" -H "Authorization: Bearer $admin_token" \
        -H 'Content-Type: application/json' ${4:+--data-binary "$4"} "http://$1$3")
    [[ $status == 2* ]] || die "$2 $3 answered $status: $(cat "$out")"
    cat "$out"
}
api() { api_at "$admin_addr" "$@"; } # METHOD PATH [JSON], on the plain gatehouse
json_str() { grep -o "\"$1\":\"[^\"]*\"" | head -n 1 | cut -d'"' -f4; } # FIELD < JSON
pem_json() { awk '{ printf "%s\\n", $0 }' "$1"; }                       # a PEM as a JSON string body

keys=$tmp/keys
mkdir -p "$keys"
algs=(RS256 ES256 PS256 EdDSA)
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$keys/rs256.key" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$keys/ps256.key" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$keys/es256.key" 2>/dev/null
openssl genpkey -algorithm ED25519 -out "$keys/eddsa.key" 2>/dev/null
for alg in "${algs[@]}"; do
    openssl pkey -in "$keys/${alg,,}.key" -pubout -out "$keys/${alg,,}.pub"
done

issuer=https://idp.bench.example # as bench/gateway/tokens.mjs signs them
audience=api://orders
col=$(api POST /v1/collections "{\"name\":\"bench\",\"path\":\"/bench\",\"upstream\":\"http://127.0.0.1:$up_port\"}" | json_str id)
api POST "/v1/collections/$col/endpoints" '{"method":"ANY","path":"/*"}' >/dev/null
client=$(api POST /v1/clients '{"name":"bench-client"}' | json_str id)
declare -A profile_key
for alg in "${algs[@]}"; do
    lower=${alg,,}
    profile_key[$alg]=$(api POST /v1/profiles "{\"client_id\":\"$client\",\"name\":\"bench-$lower\",
        \"auth_type\":\"jwt\",\"jwt_key\":\"$(pem_json "$keys/$lower.pub")\",\"algorithms\":[\"$alg\"],
        \"collection_ids\":[\"$col\"],\"allowed_issuers\":[\"$issuer\"],\"audiences\":[\"$audience\"],
        \"required_claims\":[\"exp\",\"sub\"]}" | json_str key)
    [[ -n ${profile_key[$alg]} ]] || die "no key in the answer to POST /v1/profiles"
done

sign_tokens() { # ALG COUNT OUT
    node "$here/gateway/tokens.mjs" "$1" "$keys/${1,,}.key" "${profile_key[$1]}" "$2" "$3"
}
tokens=$tmp/tokens
mkdir -p "$tokens"
sign_tokens RS256 1 "$tokens/one.txt"

# The TLS gatehouse reads the configuration just written from the same store.
if has_scen h; then
    start_gatehouse tls --tls-cert "$tls/cert.pem" --tls-key "$tls/key.pem"
fi

path=/bench/items
gw_url="http://$gw_addr$path"
nginx_url="http://127.0.0.1:$proxy_port$path"
gw_h2_url=${tls_addr:+"https://$tls_addr$path"}
nginx_h2_url="https://127.0.0.1:$h2_port$path"
# Both proxies must answer 200 with the upstream's body before anything is measured (over HTTP/2
# for the TLS listeners).
for url in "$nginx_url" "$gw_url" ${gw_h2_url:+"$nginx_h2_url" "$gw_h2_url"}; do
    answer=$(curl -sSk -w ' %{http_code} %{http_version}' -H "Authorization: Bearer $(cat "$tokens/one.txt")" "$url")
    want='{"ok":true} 200 1.1'
    [[ $url == https:* ]] && want='{"ok":true} 200 2'
    [[ $answer == "$want" ]] || die "$url answered: $answer"
done

# ---- measuring ----
clk_tck=$(getconf CLK_TCK)
cpu_ticks() { # PID...: user+system ticks of the processes and the nginx workers under them
    local all=("$@") p total=0 stat
    for p in "$@"; do
        all+=($(cat "/proc/$p/task/$p/children" 2>/dev/null || true))
    done
    for p in "${all[@]}"; do
        stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        stat=${stat##*) }
        read -r -a f <<<"$stat"
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}
machine_ticks() { # busy total, from /proc/stat
    local _cpu user nice system idle iowait rest
    read -r _cpu user nice system idle iowait rest </proc/stat
    local irq softirq steal
    read -r irq softirq steal _ <<<"$rest"
    echo "$((user + nice + system + irq + softirq + steal)) $((user + nice + system + idle + iowait + irq + softirq + steal))"
}
gh_counters() { # [ADMIN_ADDR]: 2xx, 1xx+3xx+4xx+5xx ("none", a client gone when wrk stops, is not
    # counted), cache hits
    local m
    m=$(api_at "${1:-$admin_addr}" GET /metrics)
    awk '
      $1 == "gatehouse_requests_total{class=\"2xx\"}" { ok = $2 }
      $1 ~ /^gatehouse_requests_total\{class="[1345]xx"\}/ { bad += $2 }
      $1 == "gatehouse_token_cache_hits_total" { hits = $2 }
      END { printf "%d %d %d\n", ok, bad, hits }' <<<"$m"
}

declare -A R # results: R[target,scenario,round,field]
wrk_run() { # URL FILE FIRST COUNT SECONDS OUTFILE [ON_START]
    # Writes OUTFILE.cpu: wrk's user and system seconds. ON_START, when given, is called once wrk's
    # threads exist, that is once init() has built the requests and the timed run begins; it
    # finds wrk's pid in $wrk_pid.
    local TIMEFORMAT='%U %S' bg script=$here/gateway/tokens.lua
    [[ -z $pace_ms ]] || script=$tmp/tokens-paced.lua
    { time wrk -t"$wrk_threads" -c"$connections" -d"$5s" --timeout 10s --latency \
        -s "$script" "$1" -- "$2" "$wrk_threads" "$3" "$4" $pace_ms >"$6" 2>&1; } 2>"$6.cpu" &
    bg=$!
    if [[ -n ${7:-} ]]; then
        wrk_pid=
        while kill -0 "$bg" 2>/dev/null; do
            [[ -n $wrk_pid ]] || wrk_pid=$(pgrep -P "$bg" -x wrk || true)
            if [[ -n $wrk_pid ]] && (($(ls "/proc/$wrk_pid/task" 2>/dev/null | wc -l) > wrk_threads)); then
                "$7"
                break
            fi
            sleep 0.01
        done
    fi
    wait "$bg" || die "wrk failed: $(cat "$6")"
}
h2_run() { # URL SECONDS OUTFILE [ON_START]: h2load, one token repeated; OUTFILE.log gets the
    # per-request times, OUTFILE.cpu h2load's user and system seconds. ON_START is called right
    # after h2load is started (it finds the pid to sample in $wrk_pid; h2load builds nothing first).
    local TIMEFORMAT='%U %S' bg token
    token=$(cat "$tokens/one.txt")
    # one TLS 1.3 suite for both, h2load's first choice: nginx follows the client's order, gatehouse
    # its own (AES-256 first), and the bench compares front ends, not ciphers
    { time h2load -c"$h2_clients" -m"$h2_streams" -t1 -D "$2" -H "authorization: Bearer $token" \
        --tls13-ciphers=TLS_AES_128_GCM_SHA256 \
        --log-file="$3.log" "$1" >"$3" 2>&1; } 2>"$3.cpu" &
    bg=$!
    wrk_pid=$bg
    [[ -z ${4:-} ]] || "$4"
    wait "$bg" || die "h2load failed: $(cat "$3")"
}
h2_result() { # OUTFILE: the fields of wrk's RESULT line, from h2load's report and its log
    local out=$1 requests secs mean p50 p99 errs
    read -r requests errs < <(awk '/^requests:/ { gsub(",", ""); print $6, $12 + $14 }' "$out")
    secs=$(awk '/^finished in/ { gsub("[s,]", "", $3); print $3 }' "$out")
    # the mean of "time for request", in microseconds whatever unit h2load chose
    mean=$(awk '/^time for request:/ { v = $6; m = 1
        if (v ~ /us$/) m = 1; else if (v ~ /ms$/) m = 1000; else if (v ~ /s$/) m = 1e6
        gsub("[a-z]", "", v); printf "%.0f", v * m }' "$out")
    read -r p50 p99 < <(cut -f3 "$out.log" | sort -n | awk '{ v[NR] = $1 }
        END {
            if (NR == 0) { print 0, 0; exit }
            i = int(NR * 0.50 + 0.5); if (i < 1) i = 1
            j = int(NR * 0.99 + 0.5); if (j < 1) j = 1
            print v[i], v[j]
        }')
    rm -f "$out.log"
    [[ -n $requests && -n $secs && -n $mean ]] || die "no result from h2load: $(cat "$out")"
    echo "requests=$requests duration_us=$(awk -v s="$secs" 'BEGIN { printf "%.0f", s * 1e6 }') mean_us=$mean" \
        "p50_us=$p50 p99_us=$p99 status_errors=$((requests - $(awk '/^status codes:/ { print $3 }' "$out") + 0)) socket_errors=$errs used=$requests"
}
run_started() { # the counters at the start of a timed run
    s_c0=$(cpu_ticks "$s_pids"); s_u0=$(cpu_ticks "$up_pid"); s_m0=$(machine_ticks)
    s_w0=$(cpu_ticks "$wrk_pid")
}
measure() { # TARGET SCENARIO ROUND FILE FIRST COUNT
    local target=$1 scen=$2 round=$3 url out=$tmp/wrk.$1.$2.$3.txt admin=$admin_addr pid=$gh_pid
    if [[ $scen == h ]]; then
        admin=$tls_admin pid=$tls_pid
        if [[ $target == nginx ]]; then url=$nginx_h2_url s_pids=$proxy_pid; else url=$gw_h2_url s_pids=$tls_pid; fi
    else
        if [[ $target == nginx* ]]; then url=$nginx_url; s_pids=$proxy_pid; else url=$gw_url; s_pids=$gh_pid; fi
    fi
    local c0 u0 m0 w0 g0 c1 u1 m1 g1
    [[ $target == gatehouse ]] && g0=$(gh_counters "$admin")
    s_m0=
    if [[ $scen == h ]]; then
        h2_run "$url" "$duration" "$out" run_started
    else
        wrk_run "$url" "$4" "$5" "$6" "$duration" "$out" run_started
    fi
    m1=$(machine_ticks); c1=$(cpu_ticks "$s_pids"); u1=$(cpu_ticks "$up_pid")
    [[ -n $s_m0 ]] || die "the load ended before its run could be sampled: $(cat "$out")"
    c0=$s_c0 u0=$s_u0 m0=$s_m0 w0=$s_w0
    kill -0 "$pid" 2>/dev/null || die "gatehouse died during $target $scen: $(tail -n 20 "$gh"/*.stderr)"
    local line
    if [[ $scen == h ]]; then
        line="RESULT $(h2_result "$out")"
    else
        line=$(grep '^RESULT ' "$out") || die "no result from wrk: $(cat "$out")"
    fi
    for kv in ${line#RESULT }; do R[$target,$scen,$round,${kv%%=*}]=${kv#*=}; done
    R[$target,$scen,$round,rps]=$(awk -v r="${R[$target,$scen,$round,requests]}" \
        -v d="${R[$target,$scen,$round,duration_us]}" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
    R[$target,$scen,$round,cpu_us]=$(awk -v t=$((c1 - c0)) -v r="${R[$target,$scen,$round,requests]}" \
        -v hz="$clk_tck" 'BEGIN { printf "%.1f", t / hz * 1e6 / r }')
    R[$target,$scen,$round,up_cpu_us]=$(awk -v t=$((u1 - u0)) -v r="${R[$target,$scen,$round,requests]}" \
        -v hz="$clk_tck" 'BEGIN { printf "%.1f", t / hz * 1e6 / r }')
    read -r mb0 mt0 <<<"$m0"; read -r mb1 mt1 <<<"$m1"
    # wrk's CPU in the timed run: its total less what init() took (building the requests)
    local wrk_ticks
    wrk_ticks=$(awk -v wrk="$(cat "$out.cpu")" -v w0="$w0" -v hz="$clk_tck" \
        'BEGIN { split(wrk, w, " "); t = (w[1] + w[2]) * hz - w0; printf "%d", (t < 0 ? 0 : t) }')
    R[$target,$scen,$round,wrk_cpu_us]=$(awk -v t="$wrk_ticks" -v r="${R[$target,$scen,$round,requests]}" \
        -v hz="$clk_tck" 'BEGIN { printf "%.1f", t / hz * 1e6 / r }')
    # what one request costs the whole stack (wrk, proxy, upstream): with the CPUs as the only limit,
    # throughput is the CPUs over this
    R[$target,$scen,$round,stack_us]=$(awk -v a="${R[$target,$scen,$round,cpu_us]}" \
        -v b="${R[$target,$scen,$round,up_cpu_us]}" -v c="${R[$target,$scen,$round,wrk_cpu_us]}" \
        'BEGIN { printf "%.1f", a + b + c }')
    # what the rest of the machine (other jobs) took meanwhile, in % of all CPUs: busy time minus
    # the proxy's, the upstream's and wrk's
    R[$target,$scen,$round,others]=$(awk -v b=$((mb1 - mb0)) -v t=$((mt1 - mt0)) \
        -v ours=$((c1 - c0 + u1 - u0 + wrk_ticks)) \
        'BEGIN { o = (b - ours) / t; printf "%.0f", (o < 0 ? 0 : 100 * o) }')
    R[$target,$scen,$round,repeated]=$(( R[$target,$scen,$round,used] > $6 ? R[$target,$scen,$round,used] - $6 : 0 ))
    if [[ $target == gatehouse ]]; then
        g1=$(gh_counters "$admin")
        read -r ok0 bad0 hit0 <<<"$g0"; read -r ok1 bad1 hit1 <<<"$g1"
        R[$target,$scen,$round,gh_2xx]=$((ok1 - ok0))
        R[$target,$scen,$round,gh_non2xx]=$((bad1 - bad0))
        R[$target,$scen,$round,cache_hits]=$((hit1 - hit0))
    fi
    printf '# %-9s %s round %d: %s req/s, p99 %s us, errors %s+%s, proxy CPU %s us/req, others %s%%\n' \
        "$target" "$scen" "$((round + 1))" "${R[$target,$scen,$round,rps]}" "${R[$target,$scen,$round,p99_us]}" \
        "${R[$target,$scen,$round,status_errors]}" "${R[$target,$scen,$round,socket_errors]}" \
        "${R[$target,$scen,$round,cpu_us]}" "${R[$target,$scen,$round,others]}" >&2
}

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
echo "# machine: $(nproc) CPUs, ${cpu:-unknown CPU}, load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "# $("$nginx" -v 2>&1 | sed 's/^nginx version: //'), $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2)$(has_scen h && echo ", h2load $(h2load --version | awk '{ print $NF }')"), $(openssl version | cut -d' ' -f1-2)"
echo "# gatehouse: $gatehouse, $("$gatehouse" version 2>/dev/null | head -n 1), sha256 $(sha256sum "$gatehouse" | cut -c1-12) ($(grep -s '^CMAKE_BUILD_TYPE:' "$build/CMakeCache.txt" | cut -d= -f2 || true) build dir $build)"
echo "# gatehouse --threads $workers, nginx proxy worker_processes $workers, upstream nginx worker_processes $upstream_workers"
echo "# load: wrk -t$wrk_threads -c$connections -d${duration}s --latency -s bench/gateway/tokens.lua, the same for both proxies;"
has_scen h && echo "#   (h): h2load -c$h2_clients -m$h2_streams -t1 -D $duration --tls13-ciphers=TLS_AES_128_GCM_SHA256 (ALPN h2), one RS256 token repeated"
echo "# scenarios ${scens[*]}; rounds $rounds"
echo "\$ $cmdline"

declare -A name=([a]="(a) one token repeated (cache)" [b]="(b) fresh RS256 token per request"
    [c]="(c) fresh ES256 token per request" [d]="(d) fresh PS256 token per request"
    [e]="(e) fresh EdDSA token per request" [h]="(h) HTTP/2 over TLS, one token repeated")
declare -A scen_alg=([b]=RS256 [c]=ES256 [d]=PS256 [e]=EdDSA)
fresh_algs=()
for scen in b c d e; do has_scen $scen && fresh_algs+=("${scen_alg[$scen]}"); done

# Warm both up, unmeasured (connections to the upstream, page faults, the cache for (a)); their
# rates also size the token files.
warmup=$((warmup < 1 ? 1 : warmup))
for target in nginx gatehouse; do
    url=$nginx_url
    [[ $target == gatehouse ]] && url=$gw_url
    wrk_run "$url" "$tokens/one.txt" 0 1 "$warmup" "$tmp/warmup.$target.txt"
    if has_scen h; then
        url=$nginx_h2_url
        [[ $target == gatehouse ]] && url=$gw_h2_url
        h2_run "$url" "$warmup" "$tmp/warmup-h2.$target.txt"
        rm -f "$tmp/warmup-h2.$target.txt.log"
        # both must speak the same TLS, or (h) compares ciphers
        echo "# (h) $target: $(grep -E '^(TLS Protocol|Cipher|Server Temp Key|Application protocol):' \
            "$tmp/warmup-h2.$target.txt" | tr '\n' ' ' | sed 's/ *$//')"
    fi
done
# Only gatehouse must never see a token twice, and one token repeated is its fastest case; sized on
# the faster of the two warm-ups, since gatehouse's alone can fall on a moment when other jobs
# load the machine (and then run out), with a margin for the load, which varies from run to run.
if [[ -z $tokens_per_run ]]; then
    gh_rps=$(awk '/^Requests\/sec:/ { r = $2 > r ? $2 : r } END { printf "%d", r }' "$tmp"/warmup.*.txt)
    tokens_per_run=$(awk -v r="$gh_rps" -v d="$duration" \
        'BEGIN { n = int(r * d * 1.3) + 1; print (n < 20000 ? 20000 : n) }')
fi
if [[ ${#fresh_algs[@]} -gt 0 ]]; then
    echo "# signing $tokens_per_run tokens of each of ${fresh_algs[*]}" >&2
fi
for alg in "${fresh_algs[@]}"; do
    sign_tokens "$alg" "$tokens_per_run" "$tokens/${alg,,}.txt"
    # the first of each set must be accepted: a wrong setup would otherwise measure 401s
    answer=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(head -n 1 "$tokens/${alg,,}.txt")" "$gw_url")
    [[ $answer == 200 ]] || die "gatehouse answered $answer to an $alg token"
done

# Before each gatehouse run of a fresh-token scenario: one configuration write (the collection's
# timeout_ms), which publishes a new configuration generation and so invalidates every
# verification the cache holds; the tokens of the files are then all new to gatehouse in every
# round (the cache hits column of the report shows that they were).
generation=0
new_generation() {
    generation=$((generation + 1))
    api PATCH "/v1/collections/$col" "{\"timeout_ms\":$((30000 + generation % 2))}" >/dev/null
}
scen_load() { # SCEN: sets file and count, what measure takes
    case $1 in
    a | h) file=$tokens/one.txt count=1 ;;
    *) file=$tokens/${scen_alg[$1],,}.txt count=$tokens_per_run ;;
    esac
}

# --paced: wrk sends each connection's next request after a delay, so that nginx runs at gatehouse's
# rate: a connection's cycle is its delay plus the answer's time, and at that rate nginx answers in
# about its quiet latency (measured in the warm-up's run alone is not possible: taken as 0.3 ms,
# and the rate reached is reported beside gatehouse's). wrk's delay() is in whole milliseconds,
# so a fractional delay is drawn between the two integers around it.
if [[ $paced == 1 ]]; then
    { cat "$here/gateway/tokens.lua"
      cat <<'LUA'
-- (bench/gateway.sh --paced) the mean delay before each request of a connection, in ms: argument 5
local base_init = init
function init(args)
   base_init(args)
   pace = tonumber(args[5])
end
function delay()
   local whole = math.floor(pace)
   if math.random() < pace - whole then
      return whole + 1
   end
   return whole
end
LUA
    } >"$tmp/tokens-paced.lua"
fi
pace_for() { # SCEN ROUND: the mean delay that brings $connections connections to gatehouse's rate
    awk -v c="$connections" -v r="${R[gatehouse,$1,$2,rps]}" \
        'BEGIN { d = c / r * 1000 - 0.3; printf "%.3f", (d < 0 ? 0 : d) }'
}

for ((round = 0; round < rounds; round++)); do
    order=(nginx gatehouse) # who goes first alternates, so a drift of the machine's load evens out
    ((round % 2 == 0)) || order=(gatehouse nginx)
    for scen in "${scens[@]}"; do
        scen_load "$scen"
        for target in "${order[@]}"; do
            [[ $target == gatehouse && -n ${scen_alg[$scen]:-} ]] && new_generation
            measure "$target" "$scen" "$round" "$file" 0 "$count"
        done
        if [[ $paced == 1 && -n ${scen_alg[$scen]:-} ]]; then
            pace_ms=$(pace_for "$scen" "$round")
            measure nginx-paced "$scen" "$round" "$file" 0 "$count"
            pace_ms=
        fi
    done
done

# Bare OpenSSL's verification time of each fresh-token algorithm, measured now on this machine:
# the floor of issue 11's fresh-token CPU target.
declare -A verify_us
if [[ ${#fresh_algs[@]} -gt 0 && -x $verify_bin ]]; then
    "$verify_bin" --rounds 10 --round-ms 200 "${fresh_algs[@]}" >"$tmp/verify.txt" ||
        die "bench_verify failed: $(cat "$tmp/verify.txt")"
    for alg in "${fresh_algs[@]}"; do
        verify_us[$alg]=$(awk -v a="$alg" '$1 == a { printf "%.1f", 1e6 / $3 }' "$tmp/verify.txt")
    done
    echo "# bare OpenSSL verification (bench_verify, thread CPU time, this run):$(for alg in "${fresh_algs[@]}"; do
        printf ' %s %s µs' "$alg" "${verify_us[$alg]}"; done)"
fi

# ---- report ----
median() { tr ' ' '\n' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
field_list() { # TARGET SCEN FIELD: the values of the rounds
    local r out=()
    for ((r = 0; r < rounds; r++)); do out+=("${R[$1,$2,$r,$3]}"); done
    echo "${out[*]}"
}
ratio_list() { # SCEN FIELD: gatehouse / nginx per round
    local r out=()
    for ((r = 0; r < rounds; r++)); do
        out+=("$(awk -v g="${R[gatehouse,$1,$r,$2]}" -v n="${R[nginx,$1,$r,$2]}" 'BEGIN { printf "%.3f", g / n }')")
    done
    echo "${out[*]}"
}
diff_list() { # SCEN FIELD: gatehouse - nginx per round
    local r out=()
    for ((r = 0; r < rounds; r++)); do
        out+=("$(awk -v g="${R[gatehouse,$1,$r,$2]}" -v n="${R[nginx,$1,$r,$2]}" 'BEGIN { printf "%.1f", g - n }')")
    done
    echo "${out[*]}"
}
quiet_ratio_list() { # SCEN FIELD: as ratio_list, only the rounds where other jobs took at most 10% of
    # the machine during both runs
    local r out=()
    for ((r = 0; r < rounds; r++)); do
        ((R[gatehouse,$1,$r,others] <= 10 && R[nginx,$1,$r,others] <= 10)) || continue
        out+=("$(awk -v g="${R[gatehouse,$1,$r,$2]}" -v n="${R[nginx,$1,$r,$2]}" 'BEGIN { printf "%.3f", g / n }')")
    done
    echo "${out[*]}"
}
sum_list() { tr ' ' '\n' | awk '{ s += $1 } END { print s + 0 }'; }
range() { tr ' ' '\n' | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (lo == hi) print ""; else printf "%s..%s", lo, hi }'; }
judge() { awk -v v="$1" -v op="$2" -v w="$3" 'BEGIN { ok = (op == "<=" ? v <= w : v >= w); print (ok ? "met" : "MISSED") }'; }

echo
echo "| scenario | target | req/s | mean ms | p50 ms | p99 ms | proxy CPU µs/req | upstream CPU µs/req | load generator CPU µs/req | other jobs' CPU | errors | tokens repeated |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
for scen in "${scens[@]}"; do
    for target in nginx gatehouse; do
        printf '| %s | %s | %.0f | %s | %s | %s | %.1f | %.1f | %.1f | %.0f%% | %s | %s |\n' "${name[$scen]}" "$target" \
            "$(field_list $target $scen rps | median)" "$(ms "$(field_list $target $scen mean_us | median)")" \
            "$(ms "$(field_list $target $scen p50_us | median)")" "$(ms "$(field_list $target $scen p99_us | median)")" \
            "$(field_list $target $scen cpu_us | median)" "$(field_list $target $scen up_cpu_us | median)" \
            "$(field_list $target $scen wrk_cpu_us | median)" \
            "$(field_list $target $scen others | median)" \
            "$(( $(field_list $target $scen status_errors | sum_list) + $(field_list $target $scen socket_errors | sum_list) ))" \
            "$([[ $scen == [ah] ]] && echo "(one token)" || { [[ $target == nginx ]] && echo "– (ignored)"; } ||
                field_list $target $scen repeated | sum_list)"
    done
done
echo
echo "Issue 11's targets (section 9); ratios are gatehouse/nginx per round, then the median (range):"
echo
echo "| scenario | throughput | mean latency | p99 | proxy CPU µs/req: gatehouse vs nginx | CPU-bound estimate | quiet rounds: throughput, p99 | gatehouse non-2xx | cache hits |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
all_met=1
for scen in "${scens[@]}"; do
    t=$(ratio_list $scen rps); tm=$(median <<<"$t"); tm2=$(printf '%.2f' "$tm")
    l=$(ratio_list $scen mean_us); lm=$(median <<<"$l")
    p=$(ratio_list $scen p99_us); pm=$(median <<<"$p"); pm2=$(printf '%.2f' "$pm")
    tr_=$(range <<<"$t"); lr_=$(range <<<"$l"); pr_=$(range <<<"$p")
    gcpu=$(field_list gatehouse $scen cpu_us | median)
    ncpu=$(field_list nginx $scen cpu_us | median)
    t_goal="" p_goal="" c_goal=""
    case $scen in
    a)
        t_goal=" (≥ 1.0 $(judge "$tm2" '>=' 1.0))"
        c=$(printf '%.2f' "$(ratio_list a cpu_us | median)")
        c_goal="$gcpu vs $ncpu: ×$c (≤ 1.0 $(judge "$c" '<=' 1.0))"
        ;;
    h)
        t_goal=" (≥ 1.36, h2o's $(judge "$tm2" '>=' 1.36))"
        c_goal="$gcpu vs $ncpu: ×$(printf '%.2f' "$(ratio_list h cpu_us | median)")"
        ;;
    *)
        alg=${scen_alg[$scen]}
        d=$(diff_list $scen cpu_us | median)
        if [[ -n ${verify_us[$alg]:-} ]]; then
            c_goal="$gcpu vs $ncpu: +$d (≤ $alg ${verify_us[$alg]} + 5 $(judge "$d" '<=' "$(awk -v v="${verify_us[$alg]}" 'BEGIN { print v + 5 }')"))"
        else
            c_goal="$gcpu vs $ncpu: +$d (no bench_verify: target not judged)"
        fi
        ;;
    esac
    [[ $scen == h ]] || p_goal=" (≤ 1.5 $(judge "$pm2" '<=' 1.5))"
    [[ "$t_goal $p_goal $c_goal" != *MISSED* ]] || all_met=0
    qt=$(quiet_ratio_list $scen rps)
    if [[ -n $qt ]]; then
        quiet=$(printf '%.2f, %.2f (%d of %d)' "$(median <<<"$qt")" "$(quiet_ratio_list $scen p99_us | median)" \
            "$(wc -w <<<"$qt")" "$rounds")
    else
        quiet="none of $rounds"
    fi
    printf '| %s | **%.2f**%s%s | %.2f%s | **%.2f**%s%s | %s | %.2f | %s | %s | %s |\n' "${name[$scen]}" \
        "$tm" "${tr_:+ ($tr_)}" "$t_goal" "$lm" "${lr_:+ ($lr_)}" "$pm" "${pr_:+ ($pr_)}" "$p_goal" "$c_goal" \
        "$(awk -v r="$(ratio_list $scen stack_us | median)" 'BEGIN { print 1 / r }')" "$quiet" \
        "$(field_list gatehouse $scen gh_non2xx | sum_list)" "$(field_list gatehouse $scen cache_hits | sum_list)"
done
if [[ $paced == 1 ]]; then
    paced_diff() { # SCEN: gatehouse - nginx at gatehouse's rate, per round
        local r out=()
        for ((r = 0; r < rounds; r++)); do
            out+=("$(awk -v g="${R[gatehouse,$1,$r,cpu_us]}" -v n="${R[nginx-paced,$1,$r,cpu_us]}" 'BEGIN { printf "%.1f", g - n }')")
        done
        echo "${out[*]}"
    }
    paced_rate() { # SCEN: nginx's paced rate over gatehouse's, per round
        local r out=()
        for ((r = 0; r < rounds; r++)); do
            out+=("$(awk -v g="${R[gatehouse,$1,$r,rps]}" -v n="${R[nginx-paced,$1,$r,rps]}" 'BEGIN { printf "%.3f", n / g }')")
        done
        echo "${out[*]}"
    }
    echo
    echo "At the same rate (--paced): nginx driven at gatehouse's rate of each round, medians of the rounds:"
    echo
    echo "| scenario | nginx's rate / gatehouse's | nginx CPU µs/req at that rate | upstream CPU µs/req behind nginx, gatehouse | gatehouse − nginx CPU µs/req | target |"
    echo "|---|---:|---:|---:|---:|---|"
    for scen in b c d e; do
        has_scen $scen || continue
        alg=${scen_alg[$scen]}
        d=$(paced_diff $scen | median)
        goal="no bench_verify: not judged"
        [[ -z ${verify_us[$alg]:-} ]] ||
            goal="≤ $alg ${verify_us[$alg]} + 5 $(judge "$d" '<=' "$(awk -v v="${verify_us[$alg]}" 'BEGIN { print v + 5 }')")"
        rr=$(paced_rate $scen)
        printf '| %s | %.2f (%s) | %s | %s, %s | **+%s** (%s) | %s |\n' "${name[$scen]}" "$(median <<<"$rr")" \
            "$(range <<<"$rr")" "$(field_list nginx-paced $scen cpu_us | median)" \
            "$(field_list nginx-paced $scen up_cpu_us | median)" "$(field_list gatehouse $scen up_cpu_us | median)" \
            "$d" "$(range <<<"$(paced_diff $scen)")" "$goal"
    done
fi
echo
for scen in b c d e; do
    has_scen $scen || continue
    hits=$(field_list gatehouse $scen cache_hits | sum_list)
    repeated=$(field_list gatehouse $scen repeated | sum_list)
    [[ $hits == 0 ]] || echo "# WARNING: ${name[$scen]} had $hits cache hits: not every token was new to gatehouse"
    [[ $repeated == 0 ]] || echo "# WARNING: ${name[$scen]} ran out of tokens and sent $repeated again: raise --tokens"
done
echo "# errors: wrk's non-2xx/3xx answers plus socket errors (h2load's non-2xx plus errored and timed-out"
echo "# requests); gatehouse non-2xx from its /metrics"
echo "# fresh-token CPU target: gatehouse's proxy CPU per request minus nginx's (median of the rounds) at"
echo "# most bare OpenSSL's verification of the algorithm (bench_verify, this run) plus 5 µs"
echo "# other jobs' CPU: the machine's busy time during a run minus the proxy's, the upstream's and the load"
echo "# generator's; quiet rounds: those where it stayed at most 10% for both runs (medians of their ratios)"
echo "# CPU-bound estimate: nginx's stack CPU per request (load generator + proxy + upstream) over"
echo "# gatehouse's, the throughput ratio when the machine's CPUs are the only limit and nobody else uses them"
[[ $all_met == 1 ]] && echo "# every target met" || echo "# some targets missed (see bench/README.md, Gateway vs nginx)"

# ---- profiles (--profile DIR) ----
[[ -n $profile_dir ]] || exit 0
# System calls per request (perf stat on the proxy's processes) for both proxies, and where
# gatehouse spends its CPU (perf record -g): one more unmeasured run of each scenario per proxy.
syscalls=(raw_syscalls:sys_enter)
for sc in epoll_ctl epoll_wait epoll_pwait read write readv writev recvfrom sendto recvmsg sendmsg futex accept4 close; do
    perf list "syscalls:sys_enter_$sc" 2>/dev/null | grep -q "sys_enter_$sc" && syscalls+=("syscalls:sys_enter_$sc")
done
perf_window=$((duration > 3 ? duration - 2 : 1))
profile_started() { # attaches perf to the proxy ($s_pids and its children) for perf_window seconds:
    # perf stat counting system calls, or (prof_mode record) perf record -g alone, so that the
    # tracepoints' cost stays out of the profile
    local all=("$s_pids") p
    for p in $(cat "/proc/$s_pids/task/$s_pids/children" 2>/dev/null || true); do all+=("$p"); done
    sleep 0.5
    local IFS=,
    if [[ $prof_mode == record ]]; then
        perf record -g -F 999 -p "$s_pids" -o "$prof_out.data" -- sleep "$perf_window" >/dev/null 2>&1 &
    else
        perf stat -x, -e "${syscalls[*]}" -p "${all[*]}" -o "$prof_out.stat" -- sleep "$perf_window" 2>/dev/null &
    fi
    p_perf=$!
}
profile_run() { # URL: one run of scenario $scen on $prof_target; prints its req/s
    if [[ $scen == h ]]; then
        h2_run "$1" "$duration" "$prof_out.load" profile_started
        rm -f "$prof_out.load.log"
        awk '/^finished in/ { printf "%.0f", $4 }' "$prof_out.load"
    else
        wrk_run "$1" "$file" 0 "$count" "$duration" "$prof_out.load" profile_started
        awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$prof_out.load"
    fi
    wait "$p_perf" || true
}
echo
echo "## profiles: $profile_dir (perf stat, then perf record -g -F 999 of gatehouse in another run; ${perf_window} s inside a ${duration} s run)"
echo
echo "| scenario | proxy | req/s under perf | syscalls/req | epoll_ctl | epoll_wait | reads | writes | futex |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
for scen in "${scens[@]}"; do
    scen_load "$scen"
    for prof_target in nginx gatehouse; do
        prof_out=$profile_dir/$scen.$prof_target
        if [[ $scen == h ]]; then
            url=$nginx_h2_url s_pids=$proxy_pid
            [[ $prof_target == gatehouse ]] && url=$gw_h2_url s_pids=$tls_pid
        else
            url=$nginx_url s_pids=$proxy_pid
            [[ $prof_target == gatehouse ]] && url=$gw_url s_pids=$gh_pid
        fi
        [[ $prof_target == gatehouse && -n ${scen_alg[$scen]:-} ]] && new_generation
        prof_mode=stat
        rps=$(profile_run "$url")
        if [[ $prof_target == gatehouse ]]; then
            [[ -z ${scen_alg[$scen]:-} ]] || new_generation
            prof_mode=record
            profile_run "$url" >/dev/null
        fi
        awk -F, -v rps="$rps" -v w="$perf_window" -v s="${name[$scen]}" -v t="$prof_target" '
            { n = $1 + 0; ev = $3; sub(/^.*sys_enter_?/, "", ev); c[ev] += n }
            END {
                r = rps * w; if (r < 1) r = 1
                printf "| %s | %s | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", s, t, rps, c[""] / r,
                    c["epoll_ctl"] / r, (c["epoll_wait"] + c["epoll_pwait"]) / r,
                    (c["read"] + c["readv"] + c["recvfrom"] + c["recvmsg"]) / r,
                    (c["write"] + c["writev"] + c["sendto"] + c["sendmsg"]) / r, c["futex"] / r
            }' "$prof_out.stat"
        if [[ $prof_target == gatehouse && -s $prof_out.data ]]; then
            perf report -i "$prof_out.data" --stdio --no-children --sort dso,symbol -g none --percent-limit 0.7 \
                2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 40 >"$prof_out.self.txt" || true
            perf report -i "$prof_out.data" --stdio --children --sort symbol -g none --percent-limit 4 \
                2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 40 >"$prof_out.children.txt" || true
            perf report -i "$prof_out.data" --stdio --no-children --sort dso -g none \
                2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 12 >"$prof_out.dso.txt" || true
        fi
    done
done
echo
for scen in "${scens[@]}"; do
    f=$profile_dir/$scen.gatehouse
    [[ -s $f.self.txt ]] || continue
    echo "### gatehouse, ${name[$scen]}: by library (self)"
    sed 's/^/    /' "$f.dso.txt"
    # inclusive, user space only: the system call wrappers then carry the kernel's work under them
    # (cpu-clock sampling in a VM lands most kernel samples on pvm_irq_enable, which says little)
    echo "### gatehouse, ${name[$scen]}: user-space functions with their callees (children, ≥ 4%)"
    grep -F '[.]' "$f.children.txt" | head -n 20 | sed 's/^/    /'
    echo
done
