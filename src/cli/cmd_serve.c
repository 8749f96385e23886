// SPDX-License-Identifier: Apache-2.0
/*
 * `gatehouse serve` (SPEC §7): reads its flags (each with an environment twin), opens the store,
 * starts the provider manager, the admin listener and the gateway (the data plane), and waits for
 * SIGTERM or SIGINT to stop them in order: the gateway first, so that its requests in flight are
 * drained while the configuration, the providers and the store they use are still there.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin/app.h"
#include "cli/cli.h"
#include "common/base64url.h"
#include "common/error.h"
#include "common/listen.h"
#include "common/log.h"
#include "gateway/ratelimit.h"
#include "gateway/server.h"
#include "jose/keyclaims.h"

#ifndef GH_VERSION
#define GH_VERSION "0.0.0"
#endif

struct serve_opts {
    const char *listen, *admin_listen, *admin_tls_cert, *admin_tls_key, *db, *data_dir, *threads,
        *tls_cert, *tls_key, *key_claims, *max_stale, *max_body, *log_level, *allow_insecure_idp,
        *upstream_ca_file, *trusted_proxies, *max_header_bytes, *max_headers, *max_target_bytes,
        *head_timeout_ms, *idle_timeout_ms, *body_timeout_ms, *max_connections, *h2_max_streams,
        *h2_max_resets, *store_poll_ms;
    char data_dir_buf[4096], db_buf[4200]; /* the resolved ones, when not given */
};

/* Each flag's value lands in the member of struct serve_opts named by its id. */
#define OPT(member) ((int)offsetof(struct serve_opts, member))

static const struct gh_cli_flag flags[] = {
    {"--listen", "GATEHOUSE_LISTEN", "ADDR", "0.0.0.0:8080",
     "the gateway's listener: host:port, [v6]:port, *:port, or name:port for every address of "
     "the name",
     OPT(listen)},
    {"--admin-listen", "GATEHOUSE_ADMIN_LISTEN", "ADDR", "127.0.0.1:9901",
     "the admin API's listener (numeric); off loopback, give it TLS", OPT(admin_listen)},
    {"--admin-tls-cert", "GATEHOUSE_ADMIN_TLS_CERT", "FILE", NULL,
     "certificate chain (PEM) for HTTPS on the admin listener; needs --admin-tls-key",
     OPT(admin_tls_cert)},
    {"--admin-tls-key", "GATEHOUSE_ADMIN_TLS_KEY", "FILE", NULL,
     "private key (PEM) of --admin-tls-cert", OPT(admin_tls_key)},
    {"--data-dir", "GATEHOUSE_DATA_DIR", "DIR", NULL,
     "where the store and admin-token live, made (mode 0700) when missing; default: the "
     "directory of an sqlite: --db, else " GH_CLI_DATA_DIR_DEFAULT,
     OPT(data_dir)},
    {"--db", "GATEHOUSE_DB", "URL", NULL,
     "the store: sqlite:PATH (default: sqlite:DIR/gatehouse.db in the data directory), or "
     "PostgreSQL: postgres://USER:PASSWORD@HOST:PORT/DBNAME, postgres:KEY=VALUE... (libpq's "
     "form), postgres: alone (libpq's PG* environment variables)",
     OPT(db)},
    {"--store-poll-ms", "GATEHOUSE_STORE_POLL_MS", "MS", "5000",
     "PostgreSQL: how often each node checks the configuration's generation, the safety net "
     "behind LISTEN/NOTIFY (changes normally arrive within milliseconds); 100 to 3600000",
     OPT(store_poll_ms)},
    {"--threads", "GATEHOUSE_THREADS", "N", NULL,
     "gateway worker threads; one per core when not given", OPT(threads)},
    {"--tls-cert", "GATEHOUSE_TLS_CERT", "FILE", NULL,
     "certificate chain (PEM) for HTTPS with HTTP/2 on the gateway; needs --tls-key",
     OPT(tls_cert)},
    {"--tls-key", "GATEHOUSE_TLS_KEY", "FILE", NULL, "private key (PEM) of --tls-cert",
     OPT(tls_key)},
    {"--key-claims", "GATEHOUSE_KEY_CLAIMS", "LIST", GH_KEY_CLAIMS_DEFAULT,
     "where tokens carry the access profile key, in order", OPT(key_claims)},
    {"--max-stale", "GATEHOUSE_MAX_STALE", "DURATION", "24h",
     "how long an IdP's last keys serve when refreshing them fails", OPT(max_stale)},
    {"--max-body", "GATEHOUSE_MAX_BODY", "SIZE", "8MiB", "largest request body the gateway accepts",
     OPT(max_body)},
    {"--allow-insecure-idp", "GATEHOUSE_ALLOW_INSECURE_IDP", NULL, NULL,
     "allow http:// discovery and JWKS URLs of non-loopback IdPs", OPT(allow_insecure_idp)},
    {"--log-level", "GATEHOUSE_LOG_LEVEL", "LEVEL", "info", "debug, info, warn or error",
     OPT(log_level)},
    {"--upstream-ca-file", "GATEHOUSE_UPSTREAM_CA_FILE", "FILE", NULL,
     "PEM CA bundle trusted for https upstreams beside the system store (a collection's "
     "upstream_ca adds its own)",
     OPT(upstream_ca_file)},
    {"--trusted-proxies", "GATEHOUSE_TRUSTED_PROXIES", "LIST", NULL,
     "CIDR blocks of the proxies in front of the gateway, comma-separated: only from them are "
     "X-Forwarded-For, Forwarded and X-Real-IP believed and passed on",
     OPT(trusted_proxies)},
    {"--max-header-bytes", "GATEHOUSE_MAX_HEADER_BYTES", "SIZE", "64KiB",
     "a request head (HTTP/1.1) or decoded header list (HTTP/2) larger than this gets 431",
     OPT(max_header_bytes)},
    {"--max-headers", "GATEHOUSE_MAX_HEADERS", "N", "100",
     "a request with more header fields than this gets 431", OPT(max_headers)},
    {"--max-target-bytes", "GATEHOUSE_MAX_TARGET_BYTES", "SIZE", "8KiB",
     "a request target (path and query) longer than this gets 414", OPT(max_target_bytes)},
    {"--head-timeout-ms", "GATEHOUSE_HEAD_TIMEOUT_MS", "MS", "10000",
     "a request head not complete this long after its first byte gets 408 and the connection "
     "closes",
     OPT(head_timeout_ms)},
    {"--idle-timeout-ms", "GATEHOUSE_IDLE_TIMEOUT_MS", "MS", "60000",
     "a kept-alive or HTTP/2 connection with nothing to do this long is closed",
     OPT(idle_timeout_ms)},
    {"--body-timeout-ms", "GATEHOUSE_BODY_TIMEOUT_MS", "MS", "30000",
     "a request body that makes no progress (not one byte) this long gets 408; a steady slow "
     "upload is never cut",
     OPT(body_timeout_ms)},
    {"--max-connections", "GATEHOUSE_MAX_CONNECTIONS", "N", NULL,
     "client connections the gateway holds at once (more are closed at accept); default: what "
     "the open-file limit allows, raised to its hard limit",
     OPT(max_connections)},
    {"--h2-max-streams", "GATEHOUSE_H2_MAX_STREAMS", "N", "100",
     "concurrent HTTP/2 streams per connection", OPT(h2_max_streams)},
    {"--h2-max-resets", "GATEHOUSE_H2_MAX_RESETS", "N", "200",
     "HTTP/2 streams a client may reset per 10 s before its connection ends (GOAWAY)",
     OPT(h2_max_resets)},
};

#define N_FLAGS (sizeof flags / sizeof flags[0])

const struct gh_cli_flag *gh_cli_serve_flags(size_t *n)
{
    *n = N_FLAGS;
    return flags;
}

void gh_cli_serve_help(FILE *out)
{
    fputs(
        "usage: gatehouse serve [options]\n"
        "\n"
        "Runs the gateway (the data plane), the admin API and the manager of the IdPs' signing\n"
        "keys, until SIGTERM or SIGINT (which drain the requests in flight). Each option may also\n"
        "come from its environment variable; the option wins.\n"
        "\n",
        out);
    gh_cli_flags_help(flags, N_FLAGS, out);
    fputs("\n"
          "The admin token is GATEHOUSE_ADMIN_TOKEN (16 to 255 characters), or one made at the\n"
          "first start into the file admin-token of the data directory (mode 0600), where the\n"
          "admin commands find it.\n",
          out);
}

static int usage(const char *what, const char *value)
{
    fprintf(stderr, "gatehouse serve: %s: %s\nrun `gatehouse help serve` for usage\n", what, value);
    return GH_EXIT_USAGE;
}

static void set_opt(struct serve_opts *o, const struct gh_cli_flag *flag, const char *value)
{
    *(const char **)((char *)o + flag->id) = value;
}

/* The environment and the defaults first, then the command line over them. */
static int parse_flags(int argc, char **argv, struct serve_opts *o)
{
    const struct gh_cli_flag *flag;
    const char *value;

    for (size_t f = 0; f < N_FLAGS; f++) {
        const char *env = gh_cli_flag_env(&flags[f]);
        set_opt(o, &flags[f], env != NULL ? env : flags[f].fallback);
    }
    for (int i = 1; i < argc; i++) {
        if (gh_cli_is_help(argv[i])) {
            gh_cli_serve_help(stdout);
            return -1;
        }
        int m = gh_cli_flag_match(flags, N_FLAGS, argc, argv, &i, &flag, &value);
        if (m < 0)
            return usage("option needs a value", flag->name);
        if (m == 0)
            return usage("unknown option", argv[i]);
        set_opt(o, flag, value);
    }
    if (gh_log_set_level(o->log_level) != GH_OK)
        return usage("--log-level must be debug, info, warn or error, not", o->log_level);
    return GH_EXIT_OK;
}

/* "90s", "30m", "24h", "2d" or plain seconds → milliseconds; -1 when malformed. */
static int64_t parse_duration_ms(const char *text)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || v < 0 || v > 366LL * 86400 || text[0] == '-' || text[0] == '+')
        return -1;
    long long unit = strcmp(end, "") == 0 || strcmp(end, "s") == 0 ? 1
                     : strcmp(end, "m") == 0                       ? 60
                     : strcmp(end, "h") == 0                       ? 3600
                     : strcmp(end, "d") == 0                       ? 86400
                                                                   : -1;
    if (unit < 0 || v * unit > 366LL * 86400)
        return -1;
    return v * unit * 1000;
}

/* "8MiB", "512KiB", "1MB", "64k" or plain bytes → bytes; 0 when malformed, 0 or above 1 GiB
 * (the gateway holds a whole body in memory before proxying it). */
static size_t parse_size(const char *text)
{
    static const struct {
        const char *suffix;
        unsigned long long factor;
    } units[] = {{"", 1},
                 {"B", 1},
                 {"k", 1024},
                 {"K", 1024},
                 {"KiB", 1024},
                 {"KB", 1000},
                 {"M", 1024 * 1024},
                 {"MiB", 1024 * 1024},
                 {"MB", 1000000},
                 {"G", 1024 * 1024 * 1024},
                 {"GiB", 1024 * 1024 * 1024},
                 {"GB", 1000000000}};
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);

    if (errno != 0 || end == text || text[0] == '-' || text[0] == '+' || v == 0)
        return 0;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].suffix) == 0)
            return v <= (1ULL << 30) / units[i].factor ? (size_t)(v * units[i].factor) : 0;
    }
    return 0;
}

/* A whole decimal number from `min` to `max`; -1 when malformed or out of range. */
static long long parse_count(const char *text, long long min, long long max)
{
    char *end;
    long long v;

    if (text == NULL || *text == '\0' || text[0] == '-' || text[0] == '+')
        return -1;
    errno = 0;
    v = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    return v;
}

/* The front end's limits from their flags; a flag not given leaves its default (0). */
static int limit_flags(const struct serve_opts *o, struct gh_http_limits *l)
{
    long long v;

    if (o->max_header_bytes != NULL) {
        size_t n = parse_size(o->max_header_bytes);
        if (n < 1024 || n > (16u << 20))
            return usage("--max-header-bytes must be a size from 1KiB to 16MiB, not",
                         o->max_header_bytes);
        l->header_bytes = n;
    }
    if (o->max_target_bytes != NULL) {
        /* past --max-header-bytes the head's limit answers first (431) */
        size_t n = parse_size(o->max_target_bytes);
        if (n < 256 || n > (16u << 20))
            return usage("--max-target-bytes must be a size from 256 bytes to 16MiB, not",
                         o->max_target_bytes);
        l->target_bytes = n;
    }
#define COUNT(opt, flag, min, max, field)                                                          \
    if (o->opt != NULL) {                                                                          \
        if ((v = parse_count(o->opt, min, max)) < 0)                                               \
            return usage(flag " must be a number from " #min " to " #max ", not", o->opt);         \
        l->field = v;                                                                              \
    }
    COUNT(max_headers, "--max-headers", 1, 10000, header_count)
    COUNT(head_timeout_ms, "--head-timeout-ms", 100, 3600000, head_ms)
    COUNT(idle_timeout_ms, "--idle-timeout-ms", 100, 86400000, idle_ms)
    COUNT(body_timeout_ms, "--body-timeout-ms", 100, 3600000, body_ms)
    COUNT(max_connections, "--max-connections", 1, 10000000, conns_total)
    COUNT(h2_max_streams, "--h2-max-streams", 1, 10000, h2_streams)
    COUNT(h2_max_resets, "--h2-max-resets", 1, 1000000, h2_resets_per_10s)
#undef COUNT
    return GH_EXIT_OK;
}

/* --threads: 1..1024, or unset for one per core (0). */
static int parse_threads(const char *text, unsigned *out)
{
    char *end;
    long v;

    *out = 0;
    if (text == NULL || *text == '\0')
        return 0;
    errno = 0;
    v = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || end == text || v < 1 || v > 1024)
        return -1;
    *out = (unsigned)v;
    return 0;
}

/*
 * The data directory (made mode 0700 when missing, the process's umask being 077) and the store
 * in it unless --db names one. Earlier versions kept the store and admin-token in the working
 * directory: a store left there is pointed out, never taken over in silence.
 */
static int prepare_data_dir(struct serve_opts *o)
{
    struct stat st;
    char error[512];
    int given = o->data_dir != NULL || o->db != NULL;

    if (o->db != NULL && gh_store_check_url(o->db, error, sizeof error) != GH_OK) {
        fprintf(stderr, "gatehouse serve: --db: %s\n", error);
        return GH_EXIT_USAGE;
    }

    if (gh_cli_data_dir(o->data_dir, o->db, o->data_dir_buf, sizeof o->data_dir_buf) != 0)
        return usage("the data directory's path is too long", o->data_dir ? o->data_dir : o->db);
    o->data_dir = o->data_dir_buf;
    if (o->db == NULL) {
        snprintf(o->db_buf, sizeof o->db_buf, "sqlite:%s/gatehouse.db", o->data_dir);
        o->db = o->db_buf;
    }
    if (mkdir(o->data_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "gatehouse serve: cannot make the data directory %s: %s\n", o->data_dir,
                strerror(errno));
        return GH_EXIT_USAGE;
    }
    if (stat(o->data_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "gatehouse serve: the data directory %s is not a directory\n", o->data_dir);
        return GH_EXIT_USAGE;
    }
    if (!given && stat("gatehouse.db", &st) == 0)
        gh_log(GH_LOG_WARN,
               "./gatehouse.db is an earlier version's store; this one keeps its data in "
               "./data: move gatehouse.db and admin-token there, or start with --db "
               "sqlite:./gatehouse.db",
               json_pack("{s:o}", "data_dir", gh_log_text(o->data_dir)));
    return GH_EXIT_OK;
}

/* GATEHOUSE_ADMIN_TOKEN, or the token file, made (0600, never overwritten) at first start. */
static int admin_token(const char *dir, char *token, size_t cap)
{
    const char *env = getenv("GATEHOUSE_ADMIN_TOKEN");
    char path[4200];
    unsigned char random[32];

    if (env != NULL && *env != '\0') {
        if (strlen(env) < 16 || strlen(env) >= cap)
            return usage("GATEHOUSE_ADMIN_TOKEN must have 16 to 255 characters", "(not shown)");
        snprintf(token, cap, "%s", env);
        return GH_EXIT_OK;
    }
    snprintf(path, sizeof path, "%s/admin-token", dir);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        size_t n = fread(token, 1, cap - 1, f);
        fclose(f);
        while (n > 0 && (token[n - 1] == '\n' || token[n - 1] == '\r' || token[n - 1] == ' '))
            n--;
        token[n] = '\0';
        if (n < 16)
            return usage("the admin token file is too short (16 characters at least)", path);
        return GH_EXIT_OK;
    }
    if (RAND_bytes(random, sizeof random) != 1)
        return usage("cannot make an admin token", "the random number generator failed");
    memcpy(token, "gha_", 4);
    gh_b64url_encode(random, sizeof random, token + 4);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || write(fd, token, strlen(token)) != (ssize_t)strlen(token) ||
        write(fd, "\n", 1) != 1) {
        if (fd >= 0)
            close(fd);
        fprintf(stderr, "gatehouse serve: cannot write %s: %s\n", path, strerror(errno));
        return GH_EXIT_USAGE;
    }
    close(fd);
    /* an admin change like any other (issue 10, item 6), never the token itself */
    gh_log(GH_LOG_INFO, "admin token written",
           json_pack("{s:o, s:s, s:s, s:s, s:s}", "file", gh_log_text(path), "action", "create",
                     "kind", "admin-tokens", "id", "bootstrap", "actor", "bootstrap"));
    return GH_EXIT_OK;
}

struct services {
    struct gh_store *store;
    struct gh_store_watch *watch;
    int64_t store_poll_ms;
    int store_reached; /* whether the store could be reached when it was opened */
    struct gh_oidc_manager *manager;
    struct gh_oidc_options oidc;
    struct gh_app app;
    struct gh_admin_server *admin;
    struct gh_admin_server_options admin_options;
    char token[256];
    struct gh_gateway_settings settings;
    int settings_ready;
    struct gh_quota_persistence quota;
    struct gh_ratelimiter *ratelimiter;
    struct gh_gateway_options gateway_options;
    struct gh_trusted_proxies trusted_proxies;
    struct gh_gateway_server *gateway;
};

/* The watcher's view of the node: the generation it publishes, and a reload for each cause. */
static int published_generation(void *ctx, uint64_t *generation)
{
    struct gh_config *config = gh_app_config(ctx);
    if (config == NULL)
        return 0;
    *generation = config->generation;
    gh_config_unref(config);
    return 1;
}

static int reload_for_watch(void *ctx, enum gh_store_watch_cause cause)
{
    static const enum gh_reload_cause causes[] = {
        [GH_STORE_WATCH_NOTIFY] = GH_RELOAD_NOTIFY,
        [GH_STORE_WATCH_POLL] = GH_RELOAD_POLL,
        [GH_STORE_WATCH_RECONNECT] = GH_RELOAD_RECONNECT,
    };
    return gh_app_reload(ctx, causes[cause]);
}

/*
 * The store, and what a node sharing it needs: a node started while PostgreSQL is away still
 * starts, serves nothing (the gateway's 503, no configuration yet) and says why; the watcher
 * connects when the database is back and the first reload makes the node serve.
 */
static int open_store(const struct serve_opts *o, struct services *s)
{
    char error[512];
    int rc = gh_store_open_waiting(o->db, &s->store, error, sizeof error);

    if (rc == GH_ERR_STORE_UNAVAILABLE && s->store != NULL) {
        gh_log(GH_LOG_WARN,
               "the configuration store cannot be reached: the gateway answers 503 (no "
               "configuration yet) until it can; retrying",
               json_pack("{s:s, s:s}", "store", gh_store_location(s->store), "error", error));
        return GH_EXIT_OK;
    }
    if (rc != GH_OK) {
        fprintf(stderr, "gatehouse serve: %s\n", error);
        return GH_EXIT_FAIL;
    }
    s->store_reached = 1;
    return GH_EXIT_OK;
}

static int start_watch(struct services *s, int reachable)
{
    struct gh_store_watch_hooks hooks = {&s->app, published_generation, reload_for_watch};
    if (gh_store_watch_start(s->store, s->store_poll_ms, reachable, &hooks, &s->watch) != GH_OK) {
        fprintf(stderr, "gatehouse serve: cannot start the store watcher\n");
        return GH_EXIT_FAIL;
    }
    atomic_store(&s->app.watch, s->watch);
    return GH_EXIT_OK;
}

/* The rate limiter's quota counters live in the store (they survive a restart). */
static int quota_load_all(void *ctx, gh_quota_visit visit, void *arg)
{
    return gh_store_quota_load_all(ctx, visit, arg);
}

static int quota_save(void *ctx, const char *profile_id, int64_t window, int64_t count)
{
    return gh_store_quota_save(ctx, profile_id, window, count);
}

/*
 * The admin listener's flags. The admin API can change everything the gateway does: when it
 * listens where the network can reach it in plain text, its token and every configuration go over
 * the wire readable, so say so loudly, on stderr where an operator starting it by hand looks.
 */
static int admin_flags(const struct serve_opts *o)
{
    if ((o->admin_tls_cert == NULL) != (o->admin_tls_key == NULL))
        return usage("--admin-tls-cert and --admin-tls-key go together; missing",
                     o->admin_tls_cert == NULL ? "--admin-tls-cert" : "--admin-tls-key");
    if (o->admin_tls_cert == NULL && gh_listen_is_loopback(o->admin_listen, 0) == 0)
        fprintf(stderr,
                "gatehouse serve: WARNING: --admin-listen %s is not a loopback address: the admin "
                "API would be reachable from the network without TLS (give --admin-tls-cert and "
                "--admin-tls-key, or listen on 127.0.0.1)\n",
                o->admin_listen);
    return GH_EXIT_OK;
}

/* The gateway's flags, checked before anything starts. */
static int gateway_flags(const struct serve_opts *o, struct services *s)
{
    struct gh_gateway_options *g = &s->gateway_options;

    memset(g, 0, sizeof *g);
    if ((g->max_body = parse_size(o->max_body)) == 0)
        return usage("--max-body must be a size from 1 byte to 1GiB, like 8MiB or 65536, not",
                     o->max_body);
    if (parse_threads(o->threads, &g->threads) != 0)
        return usage("--threads must be a number from 1 to 1024, not", o->threads);
    if (limit_flags(o, &g->limits) != GH_EXIT_OK)
        return GH_EXIT_USAGE;
    if ((o->tls_cert == NULL) != (o->tls_key == NULL))
        return usage("--tls-cert and --tls-key go together; missing",
                     o->tls_cert == NULL ? "--tls-cert" : "--tls-key");
    if (gh_key_claims_parse(o->key_claims, &s->settings.default_claims) != GH_OK)
        return usage("--key-claims must be a comma-separated list of 1 to 16 claim names, not",
                     o->key_claims);
    s->settings_ready = 1;
    s->app.settings = &s->settings; /* explain decides as the gateway does */
    g->listen = o->listen;
    g->tls_cert = o->tls_cert;
    g->tls_key = o->tls_key;
    g->upstream_ca_file = o->upstream_ca_file;
    if (o->trusted_proxies != NULL && o->trusted_proxies[0] != '\0') {
        char why[256];
        if (gh_trusted_proxies_parse(o->trusted_proxies, &s->trusted_proxies, why, sizeof why) !=
            GH_OK)
            return usage("--trusted-proxies must be comma-separated CIDR blocks", why);
        g->trusted_proxies = &s->trusted_proxies;
    }
    g->settings = &s->settings;
    return GH_EXIT_OK;
}

static int start_gateway(const struct serve_opts *o, struct services *s)
{
    char error[512];

    s->quota = (struct gh_quota_persistence){s->store, quota_load_all, quota_save};
    if (gh_ratelimiter_new(&s->quota, &s->ratelimiter) != GH_OK) {
        fprintf(stderr, "gatehouse serve: cannot make the rate limiter\n");
        return GH_EXIT_FAIL;
    }
    s->gateway_options.config = &s->app.config;
    s->gateway_options.ratelimiter = s->ratelimiter;
    if (gh_gateway_server_start(&s->gateway_options, &s->gateway, error, sizeof error) != GH_OK) {
        fprintf(stderr, "gatehouse serve: --listen %s: %s\n", o->listen, error);
        return GH_EXIT_FAIL;
    }
    s->app.gateway = s->gateway;
    atomic_store(&s->app.serving, 1);
    /* a host name stands for each of its addresses: say which were bound */
    json_t *addresses = json_array();
    for (size_t i = 0; i < gh_gateway_server_address_count(s->gateway); i++)
        json_array_append_new(addresses, json_string(gh_gateway_server_address_at(s->gateway, i)));
    gh_log(GH_LOG_INFO, "gateway listening",
           json_pack("{s:s, s:o, s:i, s:b, s:I}", "address", gh_gateway_server_address(s->gateway),
                     "addresses", addresses, "threads", (int)gh_gateway_server_threads(s->gateway),
                     "tls", o->tls_cert != NULL, "max_body",
                     (json_int_t)s->gateway_options.max_body));
    return GH_EXIT_OK;
}

static int start_services(const struct serve_opts *o, struct services *s)
{
    char error[512];
    int64_t max_stale = parse_duration_ms(o->max_stale);
    int rc;

    if (max_stale < 0)
        return usage("--max-stale must be a duration like 90s, 30m, 24h or 2d, not", o->max_stale);
    if ((rc = gateway_flags(o, s)) != GH_EXIT_OK)
        return rc;
    if ((rc = admin_token(o->data_dir, s->token, sizeof s->token)) != GH_EXIT_OK)
        return rc;
    if ((s->store_poll_ms = parse_count(o->store_poll_ms, GH_STORE_WATCH_MIN_POLL_MS, 3600000)) < 0)
        return usage("--store-poll-ms must be a number from 100 to 3600000, not", o->store_poll_ms);
    if ((rc = open_store(o, s)) != GH_EXIT_OK)
        return rc;
    gh_oidc_options_default(&s->oidc);
    s->oidc.max_stale_ms = max_stale;
    s->oidc.allow_insecure = o->allow_insecure_idp != NULL;
    s->oidc.persistence = gh_store_persistence(s->store);
    if (gh_oidc_manager_new(&s->oidc, &s->manager) != GH_OK) {
        fprintf(stderr, "gatehouse serve: cannot start the provider manager\n");
        return GH_EXIT_FAIL;
    }
    s->app.store = s->store;
    s->app.providers = s->manager;
    s->app.validate_timeout_ms = 2 * s->oidc.fetch_timeout_ms + 2000;
    s->app.started_at = (int64_t)time(NULL);
    gh_snapshot_slot_init(&s->app.config);
    rc = gh_app_reload(&s->app, GH_RELOAD_START);
    if (rc != GH_OK && rc != GH_ERR_STORE_UNAVAILABLE) {
        fprintf(stderr, "gatehouse serve: cannot build the configuration from the store\n");
        return GH_EXIT_FAIL;
    }
    /* its own thread and connection; with a configuration or without, it keeps the node current */
    if ((rc = start_watch(s, s->store_reached)) != GH_EXIT_OK)
        return rc;
    /* the gateway first: once the admin API answers, /readyz can say the node serves */
    if ((rc = start_gateway(o, s)) != GH_EXIT_OK)
        return rc;
    s->admin_options = (struct gh_admin_server_options){.listen = o->admin_listen,
                                                        .admin_token = s->token,
                                                        .routes = gh_admin_routes,
                                                        .n_routes = gh_admin_route_count,
                                                        .app = &s->app,
                                                        .tls_cert = o->admin_tls_cert,
                                                        .tls_key = o->admin_tls_key,
                                                        .on_denied = gh_app_auth_denied};
    if (gh_admin_server_start(&s->admin_options, &s->admin, error, sizeof error) != GH_OK) {
        fprintf(stderr, "gatehouse serve: --admin-listen %s: %s\n", o->admin_listen, error);
        return GH_EXIT_FAIL;
    }
    gh_log(GH_LOG_INFO, "admin API listening",
           /* paths are bytes: gh_log_text keeps them (and the address) in the line when not UTF-8;
            * the store by its location, never --db itself: a PostgreSQL URL may hold a password */
           json_pack("{s:s, s:b, s:o, s:o}", "address", gh_admin_server_address(s->admin), "tls",
                     o->admin_tls_cert != NULL, "store", gh_log_text(gh_store_location(s->store)),
                     "data_dir", gh_log_text(o->data_dir)));
    return GH_EXIT_OK;
}

static void stop_services(struct services *s)
{
    atomic_store(&s->app.serving, 0); /* /readyz says so while the gateway drains */
    /* first, with a drain: its requests still use the configuration, providers and store */
    gh_gateway_server_stop(s->gateway);
    if (s->ratelimiter != NULL)
        gh_ratelimiter_flush(s->ratelimiter); /* quota counters into the store */
    gh_admin_server_stop(s->admin);
    atomic_store(&s->app.watch, NULL);
    gh_store_watch_stop(s->watch); /* before the store: it reloads from it */
    s->app.gateway = NULL;
    gh_gateway_server_free(s->gateway); /* its counters served /metrics until the admin stopped */
    gh_ratelimiter_free(s->ratelimiter);
    if (s->settings_ready)
        gh_key_claims_clear(&s->settings.default_claims);
    gh_oidc_manager_free(s->manager); /* before the store: it saves into it */
    gh_snapshot_slot_clear(&s->app.config);
    gh_store_close(s->store);
    OPENSSL_cleanse(s->token, sizeof s->token);
}

/* Waits for SIGTERM or SIGINT; meanwhile, every few seconds, saves the quota counters (off the
 * worker loops, which never do I/O) so a crash loses at most those seconds of counting. */
static int wait_for_stop(const sigset_t *stop_signals, struct services *s)
{
    const struct timespec period = {5, 0};
    for (;;) {
        int sig = sigtimedwait(stop_signals, NULL, &period);
        if (sig == SIGTERM || sig == SIGINT)
            return sig;
        if (s->ratelimiter != NULL)
            gh_ratelimiter_flush(s->ratelimiter);
    }
}

int gh_cli_serve(int argc, char **argv)
{
    struct serve_opts o = {0};
    struct services s;
    sigset_t stop_signals;
    int rc, sig = 0;

    memset(&s, 0, sizeof s);
    if ((rc = parse_flags(argc, argv, &o)) != GH_EXIT_OK)
        return rc < 0 ? GH_EXIT_OK : rc; /* < 0: the help was asked for and printed */
    /* every thread started from here on inherits the mask: only sigwait below sees these */
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* the database holds key hashes and HMAC secrets: nothing we create is for other users */
    umask(077);
    if ((rc = admin_flags(&o)) != GH_EXIT_OK || (rc = prepare_data_dir(&o)) != GH_EXIT_OK)
        return rc;
    if ((rc = start_services(&o, &s)) == GH_EXIT_OK) {
        gh_log(GH_LOG_INFO, "gatehouse started",
               json_pack("{s:s, s:i}", "version", GH_VERSION, "pid", (int)getpid()));
        sig = wait_for_stop(&stop_signals, &s);
        gh_log(GH_LOG_INFO, "stopping",
               json_pack("{s:s}", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"));
    }
    stop_services(&s);
    if (rc == GH_EXIT_OK)
        gh_log(GH_LOG_INFO, "stopped", NULL);
    return rc;
}
