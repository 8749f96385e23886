#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# gatehouse vs Apache + mod_auth_openidc vs a plain nginx proxy (issue 6, the side-by-side
# benchmark against a real peer). In one run, on 127.0.0.1 and free ports, it starts
#   - one nginx that is both the upstream (`200 {"ok":true}` to everything) and the identity
#     provider: the static discovery document and JWKS (bench/apache/idp.mjs publish) of an RSA
#     2048 key made for the run, issuer http://127.0.0.1:PORT, Cache-Control max-age=3600;
#   - Apache 2.4 (event MPM, its own ServerRoot and bench/apache/httpd.conf.in, nothing of
#     /etc/apache2) with Debian's mod_auth_openidc as an OAuth 2.0 resource server: local JWT
#     validation against that JWKS (OIDCOAuthVerifyJwksUri; over https, as this module version
#     takes no http URL there), `Require claim` for iss and aud, and mod_proxy_http to the upstream;
#   - gatehouse (BUILD_DIR/gatehouse) configured through its admin API with an `oidc` profile whose
#     oidc_discovery_url is that IdP, with allowed_issuers, audiences and algorithms RS256;
#   - nginx as a plain reverse proxy to the same upstream (the baseline, no auth);
# checks that both validators accept a valid token (200 with the upstream's body) and refuse a
# tampered one, a spliced one, a wrong audience, a wrong issuer, an expired one, one with alg
# "none" and no token at all (401 or 403), then drives the three with the same wrk command and
# the same requests:
#   (a) one token repeated (gatehouse may serve it from its verified-token cache),
#   (b) a fresh token per request (signed beforehand by bench/apache/idp.mjs, each with its own
#       jti; walked through by bench/gateway/tokens.lua; before each gatehouse run one
#       configuration write empties its cache, so every token is new to it);
# and prints per target the throughput, p50/p99 latency and CPU per request, then the ratios
# gatehouse/apache and gatehouse/nginx (median of the rounds). Everything it started is stopped
# by pid and its temporary directory removed, also on error or Ctrl-C. It installs nothing: it
# needs apache2, libapache2-mod-auth-openidc, nginx, wrk, node, curl and openssl.
#
# usage: bench/apache.sh BUILD_DIR [options]
#   --workers N          gatehouse --threads, nginx proxy worker_processes and Apache's processes
#                        (StartServers = ServerLimit) (default: nproc, or half of it with --pin)
#   --apache-threads T   ThreadsPerChild of each Apache process (default: twice --connections / N,
#                        rounded up: 32 for 2 processes and 32 connections). MaxRequestWorkers =
#                        N * T must exceed --connections: a request in flight holds an Apache
#                        thread while the upstream answers, and at the limit the event MPM drops
#                        keep-alive connections (AH00484, socket errors in wrk)
#   --pin                proxies (nginx proxy, Apache, gatehouse) on CPUs 0..N-1 only, the
#                        upstream/IdP nginx and wrk on the other CPUs (taskset); needs N < nproc,
#                        e.g. --workers 1 on 2 CPUs: each proxy then has a core to itself
#   --upstream-workers N worker_processes of the upstream/IdP nginx (default 1)
#   --duration S         seconds of each measured wrk run (default 10)
#   --warmup S           seconds of an unmeasured run per target before the first round (default 3)
#   --connections C      wrk -c (default 32)
#   --wrk-threads T      wrk -t (default 1)
#   --rounds R           measure every scenario R times; who goes first rotates (default 3)
#   --tokens N           fresh tokens for (b); default: 1.3 times the faster validator's warm-up
#                        rate times the duration (at least 20000); they serve every round (above)
#   --keep               keep the temporary directory (configurations, logs, tokens)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
usage() {
    sed -n '/^# usage:/,/^set -e/{ /^set -e/d; s/^# \{0,1\}//; p; }' "$0" >&2
    exit 2
}
[[ $# -ge 1 ]] || usage
cmdline="bench/apache.sh $*"
build=$(cd "$1" && pwd) || usage
shift
workers=
apache_threads=
pin=0
upstream_workers=1
duration=10
warmup=3
connections=32
wrk_threads=1
rounds=3
tokens_wanted=
keep=0
while [[ $# -gt 0 ]]; do
    case $1 in
    --workers) workers=$2; shift 2 ;;
    --apache-threads) apache_threads=$2; shift 2 ;;
    --pin) pin=1; shift ;;
    --upstream-workers) upstream_workers=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --wrk-threads) wrk_threads=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --tokens) tokens_wanted=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "apache.sh: unknown option $1" >&2; usage ;;
    esac
done
[[ -n $workers ]] || workers=$((pin == 1 ? ($(nproc) / 2 > 0 ? $(nproc) / 2 : 1) : $(nproc)))
[[ -n $apache_threads ]] || apache_threads=$((2 * ((connections + workers - 1) / workers)))
for v in "$workers" "$apache_threads" "$upstream_workers" "$duration" "$warmup" "$connections" \
    "$wrk_threads" "$rounds" ${tokens_wanted:+"$tokens_wanted"}; do
    [[ $v =~ ^[0-9]+$ && $v -ge 1 ]] || { echo "apache.sh: not a positive number: $v" >&2; exit 2; }
done
((workers * apache_threads > connections)) ||
    { echo "apache.sh: --workers x --apache-threads must exceed --connections" >&2; exit 2; }
on_proxy_cpus=() on_load_cpus=()
if [[ $pin == 1 ]]; then
    ((workers < $(nproc))) || { echo "apache.sh: --pin needs --workers below nproc ($(nproc))" >&2; exit 2; }
    command -v taskset >/dev/null || { echo "apache.sh: --pin needs taskset (util-linux)" >&2; exit 2; }
    on_proxy_cpus=(taskset -c "0-$((workers - 1))")
    on_load_cpus=(taskset -c "$workers-$(($(nproc) - 1))")
fi

gatehouse=$build/gatehouse
nginx=$(command -v nginx || echo /usr/sbin/nginx)
apache=$(command -v apache2 || echo /usr/sbin/apache2)
oidc_module=/usr/lib/apache2/modules/mod_auth_openidc.so
[[ -x $gatehouse ]] || { echo "apache.sh: $gatehouse is missing; build first (make build)" >&2; exit 2; }
[[ -x $nginx ]] || { echo "apache.sh: nginx is missing (make deps)" >&2; exit 2; }
[[ -x $apache && -f $oidc_module ]] ||
    { echo "apache.sh: apache2 and libapache2-mod-auth-openidc are missing (make deps)" >&2; exit 2; }
for tool in wrk node curl openssl; do
    command -v "$tool" >/dev/null || { echo "apache.sh: $tool is missing (make deps)" >&2; exit 2; }
done

# ---- what runs, and how it all stops: by pid, children before the temporary directory ----
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-apache-bench.XXXXXX")
# nginx's and Apache's workers may run as another user (nobody, when this runs as root): they may
# pass through $tmp, and read the IdP's public files; the private keys stay in $tmp/keys
chmod 711 "$tmp"
mkdir -m 700 "$tmp/keys"
started=()
stop_all() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${started[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${started[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ $keep == 1 ]]; then echo "# kept $tmp" >&2; else rm -rf "$tmp"; fi
    exit "$rc"
}
trap stop_all EXIT
trap 'exit 130' INT TERM
fail() {
    echo "apache.sh: $*" >&2
    exit 1
}
note() { echo "# $*" >&2; }

# N free loopback ports: the kernel picks them for sockets held open together, then they close
ports() {
    node -e '
      const net = require("node:net");
      const held = [];
      const grab = () => new Promise((done) => {
        const s = net.createServer().listen({ host: "127.0.0.1", port: 0 }, () => done(s));
      });
      (async () => {
        for (let i = 0; i < Number(process.argv[1]); i++) held.push(await grab());
        process.stdout.write(held.map((s) => s.address().port).join(" ") + "\n");
        for (const s of held) s.close();
      })();' "$1"
}
answers_at() { # URL: waits until something answers there
    for _ in $(seq 150); do
        curl -s -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.1
    done
    fail "nothing answers at $1"
}

read -r up_port idp_port idp_tls_port proxy_port apache_port < <(ports 5)
issuer=http://127.0.0.1:$idp_port
audience=api://orders
path=/bench/items

# ---- the IdP's key and documents, the upstream and the IdP: one nginx ----
idp=$tmp/idp
mkdir -p "$idp"
signing_key=$tmp/keys/signing.key
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$signing_key" 2>/dev/null
kid=$(node "$here/apache/idp.mjs" publish "$signing_key" "$issuer" "$idp/www")
# mod_auth_openidc 2.4.12 takes only an https URL for OIDCOAuthVerifyJwksUri: the IdP also serves the
# same files over TLS, with a certificate for 127.0.0.1 that Apache trusts (OIDCCABundlePath)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$tmp/keys/tls.key" -out "$idp/tls.crt" 2>/dev/null

nginx_prefix() { # DIR WORKERS proxy|load HTTP_BLOCK_BODY: writes DIR/nginx.conf, starts that nginx
    local where=("${on_load_cpus[@]}")
    [[ $3 == proxy ]] && where=("${on_proxy_cpus[@]}")
    mkdir -p "$1/temp"
    {
        echo "daemon off; worker_processes $2; pid $1/nginx.pid; error_log $1/error.log warn;"
        echo "events { worker_connections 4096; }"
        echo "http {"
        local t
        for t in client_body proxy fastcgi uwsgi scgi; do echo "    ${t}_temp_path $1/temp/$t;"; done
        echo "    keepalive_requests 1000000;"
        echo "$4"
        echo "}"
    } >"$1/nginx.conf"
    "$nginx" -t -q -p "$1" -c "$1/nginx.conf" -e "$1/error.log" || fail "nginx refuses $1/nginx.conf"
    ${where[@]+"${where[@]}"} "$nginx" -p "$1" -c "$1/nginx.conf" -e "$1/error.log" >"$1/stdout" 2>&1 &
    started+=($!)
}
nginx_prefix "$tmp/upstream" "$upstream_workers" load "
    server {
        listen 127.0.0.1:$up_port backlog=4096;
        access_log off;
        default_type application/json;
        location / { return 200 '{\"ok\":true}'; }
    }
    server {
        listen 127.0.0.1:$idp_port;
        listen 127.0.0.1:$idp_tls_port ssl;
        ssl_certificate $idp/tls.crt;
        ssl_certificate_key $tmp/keys/tls.key;
        access_log $tmp/upstream/idp-access.log;
        root $idp/www;
        default_type application/json;
        add_header Cache-Control 'max-age=3600';
        location / { try_files \$uri =404; }
    }"
up_pid=${started[-1]}
nginx_prefix "$tmp/proxy" "$workers" proxy "
    access_log $tmp/proxy/access.log;
    upstream to_upstream {
        server 127.0.0.1:$up_port;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$proxy_port backlog=4096;
        location / {
            proxy_pass http://to_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }
    }"
proxy_pid=${started[-1]}
answers_at "http://127.0.0.1:$up_port/"
answers_at "$issuer/.well-known/openid-configuration"
answers_at "http://127.0.0.1:$proxy_port/"

# ---- Apache + mod_auth_openidc ----
ap=$tmp/apache
mkdir -p "$ap"
run_as=
if [[ $(id -u) == 0 ]]; then
    # root starts it and opens the logs; the children run as nobody and read only the IdP's
    # certificate (OIDCCABundlePath) when they fetch the JWKS
    run_as="User nobody
Group $(id -gn nobody 2>/dev/null || echo nogroup)"
fi
sed -e "s|@DIR@|$ap|g" -e "s|@PORT@|$apache_port|g" -e "s|@PROCS@|$workers|g" \
    -e "s|@THREADS@|$apache_threads|g" -e "s|@WORKERS@|$((workers * apache_threads))|g" \
    -e "s|@JWKS_URI@|https://127.0.0.1:$idp_tls_port/jwks.json|g" -e "s|@CA@|$idp/tls.crt|g" \
    -e "s|@ISSUER@|$issuer|g" -e "s|@AUDIENCE@|$audience|g" -e "s|@UPSTREAM_PORT@|$up_port|g" \
    "$here/apache/httpd.conf.in" |
    awk -v u="$run_as" '$0 == "@USER@" { print u; next } { print }' >"$ap/httpd.conf"
"$apache" -t -d "$ap" -f "$ap/httpd.conf" >"$ap/configtest" 2>&1 ||
    fail "Apache refuses its configuration: $(cat "$ap/configtest")"
${on_proxy_cpus[@]+"${on_proxy_cpus[@]}"} "$apache" -d "$ap" -f "$ap/httpd.conf" -DFOREGROUND \
    >"$ap/stdout" 2>&1 &
apache_pid=$!
started+=("$apache_pid")
answers_at "http://127.0.0.1:$apache_port/"

# ---- gatehouse ----
gh=$tmp/gatehouse
mkdir -p "$gh"
env -u GATEHOUSE_ADMIN_TOKEN -u GATEHOUSE_DB -u GATEHOUSE_DATA_DIR -u GATEHOUSE_LISTEN -u GATEHOUSE_ADMIN_LISTEN \
    -u GATEHOUSE_THREADS -u GATEHOUSE_KEY_CLAIMS -u GATEHOUSE_LOG_LEVEL -u GATEHOUSE_ALLOW_INSECURE_IDP \
    ${on_proxy_cpus[@]+"${on_proxy_cpus[@]}"} "$gatehouse" serve --listen 127.0.0.1:0 \
    --admin-listen 127.0.0.1:0 --db "sqlite:$gh/gh.db" --threads "$workers" >"$gh/stdout" 2>"$gh/stderr" &
gh_pid=$!
started+=("$gh_pid")
listening() { # MSG: the address in gatehouse's first log line with that msg
    sed -n "/\"msg\":\"$1\"/{ s/.*\"address\":\"\([^\"]*\)\".*/\1/p; q; }" "$gh/stdout" 2>/dev/null
}
gw_addr='' admin_addr=''
for _ in $(seq 150); do
    gw_addr=$(listening "gateway listening")
    admin_addr=$(listening "admin API listening")
    [[ -n $gw_addr && -n $admin_addr ]] && break
    kill -0 "$gh_pid" 2>/dev/null || fail "gatehouse exited: $(cat "$gh/stderr")"
    sleep 0.1
done
[[ -n $gw_addr && -n $admin_addr ]] || fail "gatehouse did not start: $(cat "$gh/stderr")"
admin_token=$(cat "$gh/admin-token")

admin() { # METHOD PATH [BODY]: the answer's body on a 2xx; anything else ends the run
    local code
    code=$(curl -sS -o "$gh/admin.out" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $admin_token" \
        -H 'Content-Type: application/json' ${3:+--data-binary "$3"} "http://$admin_addr$2") ||
        fail "admin API: $1 $2 failed"
    [[ $code == 2?? ]] || fail "admin API: $1 $2 answered $code: $(cat "$gh/admin.out")"
    cat "$gh/admin.out"
}
field() { node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () =>
    process.stdout.write(String(JSON.parse(s)[process.argv[1]] ?? "")));' "$1"; }

collection=$(admin POST /v1/collections \
    "{\"name\":\"bench\",\"path\":\"/bench\",\"upstream\":\"http://127.0.0.1:$up_port\"}" | field id)
admin POST "/v1/collections/$collection/endpoints" '{"method":"ANY","path":"/*"}' >/dev/null
client=$(admin POST /v1/clients '{"name":"bench-client"}' | field id)
# saving an oidc profile fetches and checks the discovery document and the JWKS
profile_key=$(admin POST /v1/profiles "{\"client_id\":\"$client\",\"name\":\"bench-oidc\",
    \"auth_type\":\"oidc\",\"oidc_discovery_url\":\"$issuer/.well-known/openid-configuration\",
    \"collection_ids\":[\"$collection\"],\"algorithms\":[\"RS256\"],\"allowed_issuers\":[\"$issuer\"],
    \"audiences\":[\"$audience\"],\"required_claims\":[\"exp\",\"sub\"]}" | field key)
[[ -n $profile_key ]] || fail "POST /v1/profiles answered no key"
generation=0
empty_gatehouse_cache() { # a configuration write: cached verifications belong to the old generation
    generation=$((generation + 1))
    admin PATCH "/v1/collections/$collection" "{\"timeout_ms\":$((30000 + generation % 2))}" >/dev/null
}

# ---- tokens, and proof that both validators check what they should ----
tokens=$tmp/tokens
mkdir -p "$tokens"
sign() { # OUT COUNT [ISSUER [AUDIENCE [EXP_IN]]]
    node "$here/apache/idp.mjs" sign "$signing_key" "${3:-$issuer}" "${4:-$audience}" \
        "$profile_key" "$2" "$1" --exp-in "${5:-3600}"
}
sign "$tokens/one.txt" 1
sign "$tokens/two.txt" 2
sign "$tokens/wrong-aud.txt" 1 "$issuer" api://billing
sign "$tokens/wrong-iss.txt" 1 "http://127.0.0.1:$up_port"
sign "$tokens/expired.txt" 1 "$issuer" "$audience" -600
good=$(cat "$tokens/one.txt")
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
# one base64url character of the signature changed (not the last: its low bits may not count)
sig=${good##*.}
mid=$((${#sig} / 2))
swap=A
[[ ${sig:mid:1} == A ]] && swap=B
declare -A bad=(
    [tampered]="${good%.*}.${sig:0:mid}${swap}${sig:mid+1}"
    [spliced]="$(sed -n 1p "$tokens/two.txt" | cut -d. -f1,2).$(sed -n 2p "$tokens/two.txt" | cut -d. -f3)"
    [wrong-aud]=$(cat "$tokens/wrong-aud.txt")
    [wrong-iss]=$(cat "$tokens/wrong-iss.txt")
    [expired]=$(cat "$tokens/expired.txt")
    [alg-none]="$(printf '{"alg":"none","typ":"at+jwt","kid":"%s"}' "$kid" | b64url).$(cut -d. -f2 <<<"$good")."
    [no-token]=''
)
declare -A url=(
    [nginx]="http://127.0.0.1:$proxy_port$path"
    [apache]="http://127.0.0.1:$apache_port$path"
    [gatehouse]="http://$gw_addr$path"
)
checks=()
for target in nginx apache gatehouse; do
    body=$(curl -sS --max-time 10 -H "Authorization: Bearer $good" -w ' %{http_code}' "${url[$target]}") ||
        fail "$target: the request failed"
    [[ $body == '{"ok":true} 200' ]] || fail "$target answered a valid token with: $body"
    [[ $target == nginx ]] && continue
    line="$target: valid 200"
    for kind in tampered spliced wrong-aud wrong-iss expired alg-none no-token; do
        code=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' \
            ${bad[$kind]:+-H "Authorization: Bearer ${bad[$kind]}"} "${url[$target]}")
        [[ $code == 401 || $code == 403 ]] || fail "$target answered $code to a $kind token (want 401 or 403)"
        line+=", $kind $code"
    done
    checks+=("$line")
done

# ---- measuring ----
hz=$(getconf CLK_TCK)
ticks() { # PID...: user+system clock ticks of these processes and their children
    local p all=() sum=0 s kids
    for p in "$@"; do
        all+=("$p")
        for s in /proc/"$p"/task/*/children; do
            kids=()
            read -r -a kids <"$s" 2>/dev/null || true
            all+=(${kids[@]+"${kids[@]}"})
        done
    done
    for p in "${all[@]}"; do
        s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        s=${s##*) }
        set -- $s
        sum=$((sum + ${12} + ${13}))
    done
    echo "$sum"
}
busy_total() { # all CPUs: busy ticks, all ticks
    awk '$1 == "cpu" { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6; exit }' /proc/stat
}
jwks_fetches() { grep -c 'GET /jwks.json' "$tmp/upstream/idp-access.log" 2>/dev/null || true; }
gh_metric() { # NAME_REGEX: the sum of gatehouse's metric lines that match
    admin GET /metrics | awk -v re="$1" '$1 ~ re { s += $2 } END { printf "%d\n", s }'
}
declare -A pid_of=([nginx]=$proxy_pid [apache]=$apache_pid [gatehouse]=$gh_pid)

wrk_once() { # TARGET FILE COUNT SECONDS OUT: wrk's RESULT line in OUT, its CPU seconds in OUT.cpu
    local TIMEFORMAT='%U %S'
    { time ${on_load_cpus[@]+"${on_load_cpus[@]}"} wrk -t"$wrk_threads" -c"$connections" -d"$4s" \
        --timeout 10s --latency -s "$here/gateway/tokens.lua" "${url[$1]}" -- "$2" "$wrk_threads" 0 "$3" \
        >"$5" 2>&1; } 2>"$5.cpu" ||
        fail "wrk failed against $1: $(cat "$5")"
}
declare -A M # M[target,scenario,round,field]
measure() { # TARGET SCENARIO ROUND FILE COUNT
    local t=$1 sc=$2 r=$3 out=$tmp/wrk.$1.$2.$3 kv wu ws mb0 mt0 mb1 mt1
    local p0 u0 m0 j0 h0 n0 p1 u1 m1 j1 h1 n1
    if [[ $t == gatehouse ]]; then
        h0=$(gh_metric '^gatehouse_token_cache_hits_total$')
        n0=$(gh_metric '^gatehouse_requests_total[{]class="[1345]xx"[}]$')
    fi
    j0=$(jwks_fetches); m0=$(busy_total); p0=$(ticks "${pid_of[$t]}"); u0=$(ticks "$up_pid")
    wrk_once "$t" "$4" "$5" "$duration" "$out"
    p1=$(ticks "${pid_of[$t]}"); u1=$(ticks "$up_pid"); m1=$(busy_total); j1=$(jwks_fetches)
    kill -0 "${pid_of[$t]}" 2>/dev/null || fail "$t died during its $sc run"
    local line
    line=$(grep '^RESULT ' "$out") || fail "no RESULT from wrk: $(cat "$out")"
    for kv in ${line#RESULT }; do M[$t,$sc,$r,${kv%%=*}]=${kv#*=}; done
    local n=${M[$t,$sc,$r,requests]}
    ((n > 0)) || fail "$t answered nothing in its $sc run: $(cat "$out")"
    read -r wu ws <"$out.cpu"
    read -r mb0 mt0 <<<"$m0"
    read -r mb1 mt1 <<<"$m1"
    M[$t,$sc,$r,rps]=$(awk -v n="$n" -v us="${M[$t,$sc,$r,duration_us]}" 'BEGIN { printf "%.0f", n * 1e6 / us }')
    M[$t,$sc,$r,cpu]=$(awk -v d=$((p1 - p0)) -v n="$n" -v hz="$hz" 'BEGIN { printf "%.1f", d * 1e6 / hz / n }')
    M[$t,$sc,$r,up_cpu]=$(awk -v d=$((u1 - u0)) -v n="$n" -v hz="$hz" 'BEGIN { printf "%.1f", d * 1e6 / hz / n }')
    M[$t,$sc,$r,wrk_cpu]=$(awk -v u="$wu" -v s="$ws" -v n="$n" 'BEGIN { printf "%.1f", (u + s) * 1e6 / n }')
    # the share of all CPUs that other jobs of the machine took meanwhile
    M[$t,$sc,$r,others]=$(awk -v b=$((mb1 - mb0)) -v all=$((mt1 - mt0)) -v ours=$((p1 - p0 + u1 - u0)) \
        -v w="$wu $ws" -v hz="$hz" 'BEGIN { split(w, x, " "); o = b - ours - (x[1] + x[2]) * hz;
        printf "%.0f", (o < 0 || all == 0) ? 0 : 100 * o / all }')
    M[$t,$sc,$r,jwks]=$((j1 - j0))
    M[$t,$sc,$r,repeated]=$((M[$t,$sc,$r,used] > $5 ? M[$t,$sc,$r,used] - $5 : 0))
    M[$t,$sc,$r,hits]=-
    if [[ $t == gatehouse ]]; then
        h1=$(gh_metric '^gatehouse_token_cache_hits_total$')
        n1=$(gh_metric '^gatehouse_requests_total[{]class="[1345]xx"[}]$')
        M[$t,$sc,$r,hits]=$((h1 - h0))
        M[$t,$sc,$r,gh_non2xx]=$((n1 - n0)) # what gatehouse itself counted
    fi
    note "$(printf '%-9s %s round %d: %7s req/s  p99 %6.2f ms  %5s us CPU/req  non-2xx %s  socket errors %s' \
        "$t" "$sc" "$((r + 1))" "${M[$t,$sc,$r,rps]}" "$(awk -v u="${M[$t,$sc,$r,p99_us]}" 'BEGIN { print u / 1000 }')" \
        "${M[$t,$sc,$r,cpu]}" "${M[$t,$sc,$r,status_errors]}" "${M[$t,$sc,$r,socket_errors]}")  JWKS fetches ${M[$t,$sc,$r,jwks]}  other jobs ${M[$t,$sc,$r,others]}%"
}

# what the logs hold from here on is about the measured traffic (the checks above log refusals)
apache_log0=$(wc -l <"$ap/error.log")
gh_out0=$(wc -l <"$gh/stdout")
gh_err0=$(wc -l <"$gh/stderr")
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
deb_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo '?'; }
echo "# machine: $(nproc) CPUs, ${cpu_model:-unknown CPU}, $(sed -n 's/^MemTotal: *//p' /proc/meminfo) RAM," \
    "load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "# $("$apache" -v | sed -n 's/^Server version: //p')," \
    "mod_auth_openidc $(deb_version libapache2-mod-auth-openidc) (libcjose $(deb_version libcjose0))," \
    "$("$nginx" -v 2>&1 | sed 's/^nginx version: //'), $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2)," \
    "$("$gatehouse" version 2>/dev/null | head -n 1)" \
    "($(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null))"
echo "# gatehouse --threads $workers; Apache event MPM: $workers processes x $apache_threads threads" \
    "(MaxRequestWorkers $((workers * apache_threads))); nginx proxy worker_processes $workers;" \
    "upstream+IdP nginx worker_processes $upstream_workers"
[[ $pin == 0 ]] || echo "# pinned: the proxies on CPUs 0-$((workers - 1)), the upstream/IdP nginx and wrk on CPUs $workers-$(($(nproc) - 1))"
echo "# load: wrk -t$wrk_threads -c$connections -d${duration}s --timeout 10s --latency -s bench/gateway/tokens.lua, the same for all three; $rounds rounds"
echo "# RS256 key of 2048 bits, kid $kid; issuer $issuer, audience $audience"
for c in "${checks[@]}"; do echo "# refused before measuring: $c"; done
echo "\$ $cmdline"

# warm-up, unmeasured: connections, page faults, Apache's JWKS cache. The faster validator's rate
# sizes (b): nginx ignores the tokens, so it may get some twice
best=0
for t in nginx apache gatehouse; do
    wrk_once "$t" "$tokens/one.txt" 1 "$warmup" "$tmp/warmup.$t"
    rate=$(awk '/^Requests\/sec:/ { printf "%d", $2 }' "$tmp/warmup.$t")
    [[ $t == nginx ]] || best=$((rate > best ? rate : best))
done
n_fresh=${tokens_wanted:-$(awk -v r="$best" -v d="$duration" 'BEGIN { n = int(1.3 * r * d) + 1; print (n < 20000 ? 20000 : n) }')}
note "signing $n_fresh fresh RS256 tokens"
sign "$tokens/fresh.txt" "$n_fresh"

targets=(nginx apache gatehouse)
for ((r = 0; r < rounds; r++)); do
    order=("${targets[@]:r%3}" "${targets[@]:0:r%3}") # who goes first rotates
    for sc in a b; do
        for t in "${order[@]}"; do
            if [[ $sc == a ]]; then
                measure "$t" a "$r" "$tokens/one.txt" 1
            else
                [[ $t == gatehouse ]] && empty_gatehouse_cache
                measure "$t" b "$r" "$tokens/fresh.txt" "$n_fresh"
            fi
        done
    done
done

# ---- report ----
values() { # TARGET SCENARIO FIELD: one value per round
    local r
    for ((r = 0; r < rounds; r++)); do echo "${M[$1,$2,$r,$3]}"; done
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
total() { awk '{ s += $1 } END { print s + 0 }'; }
ratios() { # SCENARIO FIELD A B: A/B per round
    local r
    for ((r = 0; r < rounds; r++)); do
        awk -v a="${M[$3,$1,$r,$2]}" -v b="${M[$4,$1,$r,$2]}" 'BEGIN { printf "%.2f\n", a / b }'
    done
}
spread() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR > 1) printf " (%s..%s)", lo, hi }'; }
declare -A title=([a]="(a) one token repeated" [b]="(b) fresh RS256 token per request")
echo
echo "| scenario | target | req/s | p50 ms | p99 ms | proxy CPU µs/req | upstream CPU µs/req | wrk CPU µs/req | other jobs' CPU | non-2xx / socket errors | JWKS fetches | tokens sent again | gatehouse cache hits |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for sc in a b; do
    for t in "${targets[@]}"; do
        hits=-
        [[ $t == gatehouse ]] && hits=$(values "$t" "$sc" hits | total)
        again="(one token)"
        [[ $sc == b ]] && again=$(values "$t" b repeated | total)
        [[ $sc == b && $t == nginx ]] && again="– (ignored)"
        printf '| %s | %s | %.0f | %.2f | %.2f | %.1f | %.1f | %.1f | %.0f%% | %d / %d | %d | %s | %s |\n' \
            "${title[$sc]}" "$t" \
            "$(values "$t" "$sc" rps | median)" \
            "$(awk -v u="$(values "$t" "$sc" p50_us | median)" 'BEGIN { print u / 1000 }')" \
            "$(awk -v u="$(values "$t" "$sc" p99_us | median)" 'BEGIN { print u / 1000 }')" \
            "$(values "$t" "$sc" cpu | median)" "$(values "$t" "$sc" up_cpu | median)" \
            "$(values "$t" "$sc" wrk_cpu | median)" "$(values "$t" "$sc" others | median)" \
            "$(values "$t" "$sc" status_errors | total)" "$(values "$t" "$sc" socket_errors | total)" \
            "$(values "$t" "$sc" jwks | total)" "$again" "$hits"
    done
done
echo
echo "| scenario | req/s gatehouse/apache | req/s gatehouse/nginx | p99 gatehouse/apache | p99 gatehouse/nginx | CPU/req apache/gatehouse |"
echo "|---|---:|---:|---:|---:|---:|"
for sc in a b; do
    printf '| %s |' "${title[$sc]}"
    for spec in "rps gatehouse apache" "rps gatehouse nginx" "p99_us gatehouse apache" "p99_us gatehouse nginx" "cpu apache gatehouse"; do
        read -r f a b <<<"$spec"
        list=$(ratios "$sc" "$f" "$a" "$b")
        printf ' **%.2f**%s |' "$(median <<<"$list")" "$(spread <<<"$list")"
    done
    echo
done
echo
ratio_b=$(ratios b rps gatehouse apache | median)
if awk -v v="$ratio_b" 'BEGIN { exit !(v >= 3) }'; then
    echo "# target gatehouse >= 3x Apache+mod_auth_openidc throughput on fresh tokens: met ($ratio_b)"
else
    echo "# target gatehouse >= 3x Apache+mod_auth_openidc throughput on fresh tokens: MISSED ($ratio_b)"
fi
# a token sent again matters only to gatehouse: nginx ignores tokens, and mod_auth_openidc caches
# nothing of a locally validated JWT (it caches introspection results only)
[[ $(values gatehouse b repeated | total) == 0 ]] ||
    echo "# WARNING: gatehouse ran out of fresh tokens and got some again: raise --tokens"
[[ $(values gatehouse b hits | total) == 0 ]] || echo "# WARNING: gatehouse had cache hits on fresh tokens"
gh_non2xx=$(for sc in a b; do values gatehouse "$sc" gh_non2xx; done | total)
[[ $gh_non2xx == 0 ]] || echo "# WARNING: gatehouse counted $gh_non2xx answers other than 2xx in its /metrics"
apache_errors=$(tail -n +"$((apache_log0 + 1))" "$ap/error.log" | grep -c -E '\[[a-z_0-9]+:(warn|error|crit|alert|emerg)\]' || true)
gh_errors=$({ tail -n +"$((gh_out0 + 1))" "$gh/stdout"; tail -n +"$((gh_err0 + 1))" "$gh/stderr"; } |
    grep -c -E '"level":"(warn|error)"' || true)
echo "# warnings and errors logged during the measured runs: apache $apache_errors, gatehouse $gh_errors"
echo "# non-2xx / socket errors: as wrk counted them (answers >= 400; connect, read, write errors and" \
    "timeouts); p99 ratios below 1 mean gatehouse answers faster"
