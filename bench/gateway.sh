#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Gateway vs nginx (issue 5, "Prove it"): in one run, on 127.0.0.1 and free ports, it starts
#   - an upstream: nginx answering `200 {"ok":true}` to everything,
#   - nginx as a plain reverse proxy to it (no auth, keep-alive upstream connections),
#   - gatehouse (BUILD_DIR/gatehouse) in front of the same upstream, configured with curl through
#     its admin API: a collection, an endpoint `ANY /*`, a client and two `jwt` profiles (an RSA
#     2048 public key for RS256, an EC P-256 one for ES256),
# then drives both proxies with the same wrk command and the same requests:
#   (a) one RS256 token repeated (what the verified-token cache serves),
#   (b) a fresh RS256 token per request, (c) a fresh ES256 token per request
#       (distinct tokens, each with its own jti, pre-signed by bench/gateway/tokens.mjs into a file
#       that bench/gateway/tokens.lua walks through, enough that none comes twice in a run; nginx
#       just ignores the Authorization header),
# and prints, per scenario, gatehouse's throughput and p99 latency as ratios to nginx's from the same
# run. Everything it started is stopped by pid and its temporary directory removed, also on error
# or Ctrl-C. `make bench-gateway` calls it.
#
# usage: bench/gateway.sh BUILD_DIR [options]
#   --workers N        gatehouse --threads and the proxy nginx's worker_processes (default: nproc)
#   --upstream-workers N   worker_processes of the upstream nginx (default 1)
#   --duration S       seconds of each measured wrk run (default 10)
#   --warmup S         seconds of an unmeasured run per proxy before the first measurement (default 3)
#   --connections C    wrk -c (default 32)
#   --wrk-threads T    wrk -t (default 1)
#   --rounds R         measure every scenario R times, alternating the two proxies; ratios are the
#                      median of the rounds; who goes first alternates (default 3)
#   --tokens N         distinct tokens of each of (b) and (c); default: 1.3 times what gatehouse
#                      answered per second in its warm-up, times the duration (at least 20000)
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
rounds=3
tokens_per_run=
keep=0
while [[ $# -gt 0 ]]; do
    case $1 in
    --workers) workers=$2; shift 2 ;;
    --upstream-workers) upstream_workers=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --wrk-threads) wrk_threads=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --tokens) tokens_per_run=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "gateway.sh: unknown option $1" >&2; usage ;;
    esac
done
for n in "$workers" "$upstream_workers" "$duration" "$warmup" "$connections" "$wrk_threads" "$rounds" \
    ${tokens_per_run:+"$tokens_per_run"}; do
    [[ $n =~ ^[0-9]+$ && $n -ge 0 ]] || { echo "gateway.sh: not a number: $n" >&2; exit 2; }
done

gatehouse=$build/gatehouse
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $gatehouse ]] || { echo "gateway.sh: $gatehouse is missing; build first (make build)" >&2; exit 2; }
[[ -x $nginx ]] || { echo "gateway.sh: nginx is missing (apt-get install nginx, or make deps)" >&2; exit 2; }
for tool in wrk node curl openssl; do
    command -v "$tool" >/dev/null || { echo "gateway.sh: $tool is missing (make deps)" >&2; exit 2; }
done

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
        curl -s -o /dev/null --max-time 1 "$1" && return 0
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

read -r up_port proxy_port < <(free_ports 2)
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
    }"
start_nginx "$up"
up_pid=${pids[-1]}
start_nginx "$proxy"
proxy_pid=${pids[-1]}
wait_http "http://127.0.0.1:$up_port/"
wait_http "http://127.0.0.1:$proxy_port/"

# ---- gatehouse ----
gh=$tmp/gatehouse
mkdir -p "$gh"
env -u GATEHOUSE_ADMIN_TOKEN -u GATEHOUSE_DB -u GATEHOUSE_DATA_DIR -u GATEHOUSE_LISTEN -u GATEHOUSE_ADMIN_LISTEN \
    -u GATEHOUSE_THREADS -u GATEHOUSE_KEY_CLAIMS -u GATEHOUSE_LOG_LEVEL \
    "$gatehouse" serve --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --db "sqlite:$gh/gh.db" \
    --threads "$workers" >"$gh/stdout" 2>"$gh/stderr" &
gh_pid=$!
pids+=("$gh_pid")
address_of() { # MSG: the address of gatehouse's log line with that msg
    grep -m1 "\"msg\":\"$1\"" "$gh/stdout" 2>/dev/null | grep -o '"address":"[^"]*"' | cut -d'"' -f4 || true
}
for _ in $(seq 100); do
    gw_addr=$(address_of "gateway listening")
    admin_addr=$(address_of "admin API listening")
    [[ -n $gw_addr && -n $admin_addr ]] && break
    kill -0 "$gh_pid" 2>/dev/null || die "gatehouse exited: $(cat "$gh/stderr")"
    sleep 0.1
done
[[ -n $gw_addr && -n $admin_addr ]] || die "gatehouse did not start: $(cat "$gh/stderr")"
admin_token=$(cat "$gh/admin-token")

api() { # METHOD PATH [JSON]: prints the answer; dies on anything but 2xx
    local out=$tmp/api.out status
    status=$(curl -sS -o "$out" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $admin_token" \
        -H 'Content-Type: application/json' ${3:+--data-binary "$3"} "http://$admin_addr$2")
    [[ $status == 2* ]] || die "$1 $2 answered $status: $(cat "$out")"
    cat "$out"
}
json_str() { grep -o "\"$1\":\"[^\"]*\"" | head -n 1 | cut -d'"' -f4; } # FIELD < JSON
pem_json() { awk '{ printf "%s\\n", $0 }' "$1"; }                       # a PEM as a JSON string body

keys=$tmp/keys
mkdir -p "$keys"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$keys/rs256.key" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$keys/es256.key" 2>/dev/null
openssl pkey -in "$keys/rs256.key" -pubout -out "$keys/rs256.pub"
openssl pkey -in "$keys/es256.key" -pubout -out "$keys/es256.pub"

issuer=https://idp.bench.example # as bench/gateway/tokens.mjs signs them
audience=api://orders
col=$(api POST /v1/collections "{\"name\":\"bench\",\"path\":\"/bench\",\"upstream\":\"http://127.0.0.1:$up_port\"}" | json_str id)
api POST "/v1/collections/$col/endpoints" '{"method":"ANY","path":"/*"}' >/dev/null
client=$(api POST /v1/clients '{"name":"bench-client"}' | json_str id)
declare -A profile_key
for alg in RS256 ES256; do
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

path=/bench/items
gw_url="http://$gw_addr$path"
nginx_url="http://127.0.0.1:$proxy_port$path"
# Both proxies must answer 200 with the upstream's body before anything is measured.
for url in "$nginx_url" "$gw_url"; do
    answer=$(curl -sS -w ' %{http_code}' -H "Authorization: Bearer $(cat "$tokens/one.txt")" "$url")
    [[ $answer == '{"ok":true} 200' ]] || die "$url answered: $answer"
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
gh_counters() { # 2xx, 1xx+3xx+4xx+5xx ("none", a client gone when wrk stops, is not counted), cache hits
    local m
    m=$(api GET /metrics)
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
    local TIMEFORMAT='%U %S' bg
    { time wrk -t"$wrk_threads" -c"$connections" -d"$5s" --timeout 10s --latency \
        -s "$here/gateway/tokens.lua" "$1" -- "$2" "$wrk_threads" "$3" "$4" >"$6" 2>&1; } 2>"$6.cpu" &
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
run_started() { # the counters at the start of a timed run
    s_c0=$(cpu_ticks "$s_pids"); s_u0=$(cpu_ticks "$up_pid"); s_m0=$(machine_ticks)
    s_w0=$(cpu_ticks "$wrk_pid")
}
measure() { # TARGET SCENARIO ROUND FILE FIRST COUNT
    local target=$1 scen=$2 round=$3 url out=$tmp/wrk.$1.$2.$3.txt
    if [[ $target == nginx ]]; then url=$nginx_url; s_pids=$proxy_pid; else url=$gw_url; s_pids=$gh_pid; fi
    local c0 u0 m0 w0 g0 c1 u1 m1 g1
    [[ $target == gatehouse ]] && g0=$(gh_counters)
    s_m0=
    wrk_run "$url" "$4" "$5" "$6" "$duration" "$out" run_started
    m1=$(machine_ticks); c1=$(cpu_ticks "$s_pids"); u1=$(cpu_ticks "$up_pid")
    [[ -n $s_m0 ]] || die "wrk ended before its run could be sampled: $(cat "$out")"
    c0=$s_c0 u0=$s_u0 m0=$s_m0 w0=$s_w0
    kill -0 "$gh_pid" 2>/dev/null || die "gatehouse died during $target $scen: $(tail -n 20 "$gh/stderr")"
    local line
    line=$(grep '^RESULT ' "$out") || die "no result from wrk: $(cat "$out")"
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
        g1=$(gh_counters)
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
echo "# $("$nginx" -v 2>&1 | sed 's/^nginx version: //'), $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2), $("$gatehouse" version 2>/dev/null | head -n 1) ($(grep -s '^CMAKE_BUILD_TYPE:' "$build/CMakeCache.txt" | cut -d= -f2 || true))"
echo "# gatehouse --threads $workers, nginx proxy worker_processes $workers, upstream nginx worker_processes $upstream_workers"
echo "# load: wrk -t$wrk_threads -c$connections -d${duration}s --latency -s bench/gateway/tokens.lua, the same for both proxies; rounds $rounds"
echo "\$ $cmdline"

# Warm both up, unmeasured (connections to the upstream, page faults, the cache for (a)); their
# rates also size the token files.
warmup=$((warmup < 1 ? 1 : warmup))
for target in nginx gatehouse; do
    url=$nginx_url
    [[ $target == gatehouse ]] && url=$gw_url
    wrk_run "$url" "$tokens/one.txt" 0 1 "$warmup" "$tmp/warmup.$target.txt"
done
# Only gatehouse must never see a token twice, and one token repeated is its fastest case; the
# margin is for the machine's load, which varies from run to run.
if [[ -z $tokens_per_run ]]; then
    gh_rps=$(awk '/^Requests\/sec:/ { printf "%d", $2 }' "$tmp/warmup.gatehouse.txt")
    tokens_per_run=$(awk -v r="$gh_rps" -v d="$duration" \
        'BEGIN { n = int(r * d * 1.3) + 1; print (n < 20000 ? 20000 : n) }')
fi
echo "# signing $tokens_per_run RS256 and as many ES256 tokens" >&2
sign_tokens RS256 "$tokens_per_run" "$tokens/rs256.txt"
sign_tokens ES256 "$tokens_per_run" "$tokens/es256.txt"
# the first of each set must be accepted: a wrong setup would otherwise measure 401s
for alg in rs256 es256; do
    answer=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(head -n 1 "$tokens/$alg.txt")" "$gw_url")
    [[ $answer == 200 ]] || die "gatehouse answered $answer to an ${alg^^} token"
done

# Before each gatehouse run of (b) and (c): one configuration write (the collection's timeout_ms),
# which publishes a new configuration generation and so invalidates every verification the cache
# holds; the tokens of the files are then all new to gatehouse in every round (the cache hits
# column of the report shows that they were).
generation=0
new_generation() {
    generation=$((generation + 1))
    api PATCH "/v1/collections/$col" "{\"timeout_ms\":$((30000 + generation % 2))}" >/dev/null
}

for ((round = 0; round < rounds; round++)); do
    order=(nginx gatehouse) # who goes first alternates, so a drift of the machine's load evens out
    ((round % 2 == 0)) || order=(gatehouse nginx)
    for scen in a b c; do
        case $scen in
        a) file=$tokens/one.txt count=1 ;;
        b) file=$tokens/rs256.txt count=$tokens_per_run ;;
        c) file=$tokens/es256.txt count=$tokens_per_run ;;
        esac
        for target in "${order[@]}"; do
            [[ $target == gatehouse && $scen != a ]] && new_generation
            measure "$target" "$scen" "$round" "$file" 0 "$count"
        done
    done
done

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

declare -A name=([a]="(a) one token repeated (cache)" [b]="(b) fresh RS256 token per request" [c]="(c) fresh ES256 token per request")
declare -A tput_target=([a]=1.0 [b]=0.7 [c]=none)
echo
echo "| scenario | target | req/s | p50 ms | p99 ms | proxy CPU µs/req | upstream CPU µs/req | wrk CPU µs/req | other jobs' CPU | wrk errors | tokens repeated |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for scen in a b c; do
    for target in nginx gatehouse; do
        printf '| %s | %s | %.0f | %s | %s | %.1f | %.1f | %.1f | %.0f%% | %s | %s |\n' "${name[$scen]}" "$target" \
            "$(field_list $target $scen rps | median)" \
            "$(awk -v u="$(field_list $target $scen p50_us | median)" 'BEGIN { printf "%.2f", u / 1000 }')" \
            "$(awk -v u="$(field_list $target $scen p99_us | median)" 'BEGIN { printf "%.2f", u / 1000 }')" \
            "$(field_list $target $scen cpu_us | median)" "$(field_list $target $scen up_cpu_us | median)" \
            "$(field_list $target $scen wrk_cpu_us | median)" \
            "$(field_list $target $scen others | median)" \
            "$(( $(field_list $target $scen status_errors | sum_list) + $(field_list $target $scen socket_errors | sum_list) ))" \
            "$([[ $scen == a ]] && echo "(one token)" || { [[ $target == nginx ]] && echo "– (ignored)"; } ||
                field_list $target $scen repeated | sum_list)"
    done
done
echo
echo "| scenario | throughput gatehouse/nginx | target | p99 gatehouse/nginx | target | proxy CPU/req gatehouse/nginx | CPU-bound estimate | quiet rounds: throughput, p99 | gatehouse non-2xx | cache hits |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
all_met=1
for scen in a b c; do
    t=$(ratio_list $scen rps)
    p=$(ratio_list $scen p99_us)
    tm=$(median <<<"$t")
    pm=$(median <<<"$p")
    tr_=$(range <<<"$t")
    pr_=$(range <<<"$p")
    want=${tput_target[$scen]}
    if [[ $want == none ]]; then
        t_goal="— (none set)"
    else
        t_goal="≥ $want $(awk -v v="$(printf '%.2f' "$tm")" -v w="$want" 'BEGIN { print (v >= w ? "met" : "MISSED") }')"
    fi
    # judged on the two decimals shown
    p_ok=$(awk -v v="$(printf '%.2f' "$pm")" 'BEGIN { print (v <= 1.5 ? "met" : "MISSED") }')
    [[ $t_goal != *MISSED* && $p_ok == met ]] || all_met=0
    qt=$(quiet_ratio_list $scen rps)
    if [[ -n $qt ]]; then
        quiet=$(printf '%.2f, %.2f (%d of %d)' "$(median <<<"$qt")" "$(quiet_ratio_list $scen p99_us | median)" \
            "$(wc -w <<<"$qt")" "$rounds")
    else
        quiet="none of $rounds"
    fi
    printf '| %s | **%.2f**%s | %s | **%.2f**%s | ≤ 1.5 %s | %.2f | %.2f | %s | %s | %s |\n' "${name[$scen]}" "$tm" \
        "${tr_:+ ($tr_)}" "$t_goal" "$pm" "${pr_:+ ($pr_)}" "$p_ok" "$(ratio_list $scen cpu_us | median)" \
        "$(awk -v r="$(ratio_list $scen stack_us | median)" 'BEGIN { print 1 / r }')" "$quiet" \
        "$(field_list gatehouse $scen gh_non2xx | sum_list)" "$(field_list gatehouse $scen cache_hits | sum_list)"
done
echo
for scen in b c; do
    hits=$(field_list gatehouse $scen cache_hits | sum_list)
    repeated=$(field_list gatehouse $scen repeated | sum_list)
    [[ $hits == 0 ]] || echo "# WARNING: ${name[$scen]} had $hits cache hits: not every token was new to gatehouse"
    [[ $repeated == 0 ]] || echo "# WARNING: ${name[$scen]} ran out of tokens and sent $repeated again: raise --tokens"
done
echo "# wrk counted errors as non-2xx/3xx answers plus socket errors; gatehouse non-2xx from its /metrics"
echo "# other jobs' CPU: the machine's busy time during a run minus the proxy's, the upstream's and wrk's;"
echo "# quiet rounds: those where it stayed at most 10% for both runs (medians of their ratios)"
echo "# CPU-bound estimate: nginx's stack CPU per request (wrk + proxy + upstream) over gatehouse's, the"
echo "# throughput ratio when the machine's CPUs are the only limit and nobody else uses them"
[[ $all_met == 1 ]] && echo "# every target met" || echo "# some targets missed (see bench/README.md, Gateway vs nginx)"
