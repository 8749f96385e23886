/*
 * `gatehouse serve` (SPEC §7): reads its flags (each with an environment twin), opens the store,
 * starts the provider manager and the admin listener, and waits for SIGTERM or SIGINT to stop them
 * in order. The data plane listener joins here with the gateway (issue #5).
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
#include "common/log.h"
#include "jose/keyclaims.h"

#ifndef GH_VERSION
#define GH_VERSION "0.0.0"
#endif

struct serve_opts {
    const char *listen, *admin_listen, *db, *threads, *tls_cert, *tls_key, *key_claims, *max_stale,
        *max_body, *log_level;
    int allow_insecure_idp;
};

struct flag {
    const char *name, *env;
    size_t offset;
    const char *fallback;
};

static const struct flag flags[] = {
    {"--listen", "GATEHOUSE_LISTEN", offsetof(struct serve_opts, listen), "0.0.0.0:8080"},
    {"--admin-listen", "GATEHOUSE_ADMIN_LISTEN", offsetof(struct serve_opts, admin_listen),
     "127.0.0.1:9901"},
    {"--db", "GATEHOUSE_DB", offsetof(struct serve_opts, db), "sqlite:./gatehouse.db"},
    {"--threads", "GATEHOUSE_THREADS", offsetof(struct serve_opts, threads), NULL},
    {"--tls-cert", "GATEHOUSE_TLS_CERT", offsetof(struct serve_opts, tls_cert), NULL},
    {"--tls-key", "GATEHOUSE_TLS_KEY", offsetof(struct serve_opts, tls_key), NULL},
    {"--key-claims", "GATEHOUSE_KEY_CLAIMS", offsetof(struct serve_opts, key_claims),
     GH_KEY_CLAIMS_DEFAULT},
    {"--max-stale", "GATEHOUSE_MAX_STALE", offsetof(struct serve_opts, max_stale), "24h"},
    {"--max-body", "GATEHOUSE_MAX_BODY", offsetof(struct serve_opts, max_body), "8MiB"},
    {"--log-level", "GATEHOUSE_LOG_LEVEL", offsetof(struct serve_opts, log_level), "info"},
};

void gh_cli_serve_help(FILE *out)
{
    fputs("usage: gatehouse serve [options]   (each option also reads the environment variable "
          "shown)\n"
          "  --listen ADDR          gateway listener (GATEHOUSE_LISTEN, 0.0.0.0:8080)\n"
          "  --admin-listen ADDR    admin API listener (GATEHOUSE_ADMIN_LISTEN, 127.0.0.1:9901)\n"
          "  --db URL               store (GATEHOUSE_DB, sqlite:./gatehouse.db); its directory is "
          "the\n"
          "                         data directory, where admin-token is kept\n"
          "  --threads N            gateway worker threads (GATEHOUSE_THREADS, one per core)\n"
          "  --tls-cert FILE, --tls-key FILE   HTTPS with HTTP/2 on the gateway listener\n"
          "  --key-claims LIST      where tokens carry the access profile key "
          "(GATEHOUSE_KEY_CLAIMS,\n"
          "                         " GH_KEY_CLAIMS_DEFAULT ")\n"
          "  --max-stale DURATION   how long IdP keys serve past expiry when refresh fails (24h)\n"
          "  --max-body SIZE        largest request body the gateway accepts (8MiB)\n"
          "  --allow-insecure-idp   allow http:// for non-loopback IdPs "
          "(GATEHOUSE_ALLOW_INSECURE_IDP=1)\n"
          "  --log-level LEVEL      debug, info, warn, error (GATEHOUSE_LOG_LEVEL)\n"
          "The admin token is GATEHOUSE_ADMIN_TOKEN, or made at first start into <data "
          "dir>/admin-token.\n",
          out);
}

static int usage(const char *what, const char *value)
{
    fprintf(stderr, "gatehouse serve: %s: %s\nrun `gatehouse help serve` for usage\n", what, value);
    return GH_EXIT_USAGE;
}

static int parse_flags(int argc, char **argv, struct serve_opts *o)
{
    for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++) {
        const char *env = getenv(flags[f].env);
        *(const char **)((char *)o + flags[f].offset) =
            env != NULL && *env ? env : flags[f].fallback;
    }
    const char *insecure = getenv("GATEHOUSE_ALLOW_INSECURE_IDP");
    o->allow_insecure_idp = insecure != NULL && strcmp(insecure, "1") == 0;
    for (int i = 1; i < argc; i++) {
        size_t f = 0;
        if (strcmp(argv[i], "--allow-insecure-idp") == 0) {
            o->allow_insecure_idp = 1;
            continue;
        }
        for (; f < sizeof flags / sizeof flags[0]; f++) {
            size_t len = strlen(flags[f].name);
            if (strncmp(argv[i], flags[f].name, len) != 0 ||
                (argv[i][len] != '\0' && argv[i][len] != '='))
                continue;
            const char *v = argv[i][len] == '=' ? argv[i] + len + 1
                            : i + 1 < argc      ? argv[++i]
                                                : NULL;
            if (v == NULL)
                return usage("option needs a value", flags[f].name);
            *(const char **)((char *)o + flags[f].offset) = v;
            break;
        }
        if (f == sizeof flags / sizeof flags[0])
            return usage("unknown option", argv[i]);
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

/* The directory of the store's file ("." for sqlite::memory:), where admin-token lives. */
static void data_dir_of(const char *db, char *out, size_t cap)
{
    char copy[4096];
    const char *path = strncmp(db, "sqlite:", 7) == 0 ? db + 7 : db;
    if (strcmp(path, ":memory:") == 0) {
        snprintf(out, cap, ".");
        return;
    }
    snprintf(copy, sizeof copy, "%s", path);
    snprintf(out, cap, "%s", dirname(copy));
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
    gh_log(GH_LOG_INFO, "admin token written", json_pack("{s:s}", "file", path));
    return GH_EXIT_OK;
}

struct services {
    struct gh_store *store;
    struct gh_oidc_manager *manager;
    struct gh_oidc_options oidc;
    struct gh_app app;
    struct gh_admin_server *admin;
    struct gh_admin_server_options admin_options;
    char token[256];
};

static int start_services(const struct serve_opts *o, struct services *s)
{
    char error[512], dir[4096];
    int64_t max_stale = parse_duration_ms(o->max_stale);
    int rc;

    if (max_stale < 0)
        return usage("--max-stale must be a duration like 90s, 30m, 24h or 2d, not", o->max_stale);
    data_dir_of(o->db, dir, sizeof dir);
    if ((rc = admin_token(dir, s->token, sizeof s->token)) != GH_EXIT_OK)
        return rc;
    if (gh_store_open(o->db, &s->store, error, sizeof error) != GH_OK) {
        fprintf(stderr, "gatehouse serve: %s\n", error);
        return GH_EXIT_FAIL;
    }
    gh_oidc_options_default(&s->oidc);
    s->oidc.max_stale_ms = max_stale;
    s->oidc.allow_insecure = o->allow_insecure_idp;
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
    if (gh_app_reload(&s->app) != GH_OK) {
        fprintf(stderr, "gatehouse serve: cannot build the configuration from the store\n");
        return GH_EXIT_FAIL;
    }
    s->admin_options = (struct gh_admin_server_options){o->admin_listen, s->token, gh_admin_routes,
                                                        gh_admin_route_count, &s->app};
    if (gh_admin_server_start(&s->admin_options, &s->admin, error, sizeof error) != GH_OK) {
        fprintf(stderr, "gatehouse serve: admin listener %s: %s\n", o->admin_listen, error);
        return GH_EXIT_FAIL;
    }
    gh_log(GH_LOG_INFO, "admin API listening",
           json_pack("{s:s, s:s}", "address", gh_admin_server_address(s->admin), "store", o->db));
    return GH_EXIT_OK;
}

static void stop_services(struct services *s)
{
    gh_admin_server_stop(s->admin);
    gh_oidc_manager_free(s->manager); /* before the store: it saves into it */
    gh_snapshot_slot_clear(&s->app.config);
    gh_store_close(s->store);
    OPENSSL_cleanse(s->token, sizeof s->token);
}

int gh_cli_serve(int argc, char **argv)
{
    struct serve_opts o = {0};
    struct services s;
    sigset_t stop_signals;
    int rc, sig = 0;

    memset(&s, 0, sizeof s);
    if ((rc = parse_flags(argc, argv, &o)) != GH_EXIT_OK)
        return rc;
    /* every thread started from here on inherits the mask: only sigwait below sees these */
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    if ((rc = start_services(&o, &s)) == GH_EXIT_OK) {
        gh_log(GH_LOG_INFO, "gatehouse started",
               json_pack("{s:s, s:i}", "version", GH_VERSION, "pid", (int)getpid()));
        sigwait(&stop_signals, &sig);
        gh_log(GH_LOG_INFO, "stopping",
               json_pack("{s:s}", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"));
    }
    stop_services(&s);
    if (rc == GH_EXIT_OK)
        gh_log(GH_LOG_INFO, "stopped", NULL);
    return rc;
}
