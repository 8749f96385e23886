// SPDX-License-Identifier: Apache-2.0
/*
 * GET /metrics (SPEC §6): the node's counters in Prometheus' text format, read from the store, the
 * published configuration, the provider manager, the gateway and its front end. Only atomics and
 * snapshots are read, so it runs on the admin listener's loop (an inline route) and answers even
 * while handlers wait for IdPs. Apart from api.c, whose handlers change things, because this one
 * only reads and is long.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/app.h"
#include "gateway/server.h"
#include "http/server.h"

static void metric(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void metric(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < *cap - *len) {
            *len += (size_t)n;
            return;
        }
        char *grown = realloc(*buf, *cap * 2);
        if (grown == NULL)
            return;
        *buf = grown;
        *cap *= 2;
    }
}

/* The data plane's counters (SPEC §5): requests by status class, refusals by code and reason,
 * upstream failures, cache hits, parked requests and the latency histogram (cumulative buckets). */
/* The gateway's front end: its connections and what each of its limits refused. */
static void frontend_metrics(const struct gh_http_metrics *h, char **buf, size_t *len, size_t *cap)
{
    metric(buf, len, cap,
           "# HELP gatehouse_connections Client connections of the gateway open now.\n"
           "# TYPE gatehouse_connections gauge\ngatehouse_connections %lld\n"
           "# HELP gatehouse_connections_total Client connections the gateway accepted.\n"
           "# TYPE gatehouse_connections_total counter\ngatehouse_connections_total %llu\n"
           "# HELP gatehouse_http2_connections_total Of them, connections that spoke HTTP/2.\n"
           "# TYPE gatehouse_http2_connections_total counter\n"
           "gatehouse_http2_connections_total %llu\n"
           "# HELP gatehouse_tls_handshake_failures_total TLS handshakes of clients that failed.\n"
           "# TYPE gatehouse_tls_handshake_failures_total counter\n"
           "gatehouse_tls_handshake_failures_total %llu\n"
           "# HELP gatehouse_malformed_requests_total Requests refused for their framing (400, "
           "501, 505).\n# TYPE gatehouse_malformed_requests_total counter\n"
           "gatehouse_malformed_requests_total %llu\n"
           "# HELP gatehouse_idle_closed_total Connections closed after the idle timeout.\n"
           "# TYPE gatehouse_idle_closed_total counter\ngatehouse_idle_closed_total %llu\n"
           "# HELP gatehouse_limit_refusals_total What the front end's limits refused, by limit.\n"
           "# TYPE gatehouse_limit_refusals_total counter\n",
           (long long)atomic_load(&h->connections_open),
           (unsigned long long)atomic_load(&h->connections_total),
           (unsigned long long)atomic_load(&h->connections_http2),
           (unsigned long long)atomic_load(&h->tls_handshake_failures),
           (unsigned long long)atomic_load(&h->malformed),
           (unsigned long long)atomic_load(&h->idle_closed));
    for (int i = 0; i < GH_HTTP_LIMIT_COUNT; i++)
        metric(buf, len, cap, "gatehouse_limit_refusals_total{limit=\"%s\"} %llu\n",
               gh_http_limit_names[i], (unsigned long long)atomic_load(&h->limits[i]));
}

static void gateway_metrics(const struct gh_gateway_metrics *g, char **buf, size_t *len,
                            size_t *cap)
{
    static const char *const classes[6] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
    metric(buf, len, cap,
           "# HELP gatehouse_requests_total Gateway requests by status class (none: client gone).\n"
           "# TYPE gatehouse_requests_total counter\n");
    for (int i = 0; i < 6; i++)
        metric(buf, len, cap, "gatehouse_requests_total{class=\"%s\"} %llu\n", classes[i],
               (unsigned long long)atomic_load(&g->by_class[i]));
    metric(buf, len, cap,
           "# HELP gatehouse_collection_requests_total Gateway requests by collection and status "
           "class.\n# TYPE gatehouse_collection_requests_total counter\n");
    for (int i = 0; i < GH_GW_COLLECTION_SLOTS; i++) {
        const struct gh_gateway_collection_count *c = &g->collections[i];
        for (int k = 0; atomic_load(&c->ready) && k < 6; k++) {
            unsigned long long n = (unsigned long long)atomic_load(&c->by_class[k]);
            if (n > 0)
                metric(buf, len, cap,
                       "gatehouse_collection_requests_total{collection=\"%s\",class=\"%s\"} %llu\n",
                       c->id, classes[k], n);
        }
    }
    metric(buf, len, cap,
           "# HELP gatehouse_refusals_total Error answers by code.\n# TYPE "
           "gatehouse_refusals_total counter\n");
    for (int i = 0; i < GH_GW_CODE_COUNT; i++)
        metric(buf, len, cap, "gatehouse_refusals_total{code=\"%s\"} %llu\n",
               gh_gateway_code_names[i], (unsigned long long)atomic_load(&g->refusals[i]));
    metric(buf, len, cap,
           "# HELP gatehouse_invalid_token_total 401 invalid_token answers by reason.\n"
           "# TYPE gatehouse_invalid_token_total counter\n");
    for (int i = 0; i < GH_GW_REASON_COUNT; i++)
        metric(buf, len, cap, "gatehouse_invalid_token_total{reason=\"%s\"} %llu\n",
               gh_gateway_reason_names[i], (unsigned long long)atomic_load(&g->invalid_token[i]));
    metric(
        buf, len, cap,
        "# HELP gatehouse_upstream_errors_total Upstream requests that failed, by kind.\n"
        "# TYPE gatehouse_upstream_errors_total "
        "counter\ngatehouse_upstream_errors_total{kind=\"refused_or_reset\"} %llu\n"
        "gatehouse_upstream_errors_total{kind=\"timeout\"} "
        "%llu\ngatehouse_upstream_errors_total{kind=\"broken_answer\"} %llu\n"
        "gatehouse_upstream_errors_total{kind=\"tls\"} %llu\n"
        "gatehouse_upstream_errors_total{kind=\"bytes_after_answer\"} %llu\n"
        "# HELP gatehouse_token_cache_hits_total Tokens accepted from the verified-token cache.\n"
        "# TYPE gatehouse_token_cache_hits_total counter\ngatehouse_token_cache_hits_total %llu\n"
        "# HELP gatehouse_parked_requests_total Requests that waited for a refetch of IdP keys.\n"
        "# TYPE gatehouse_parked_requests_total counter\ngatehouse_parked_requests_total %llu\n"
        "# HELP gatehouse_access_log_dropped_total Access log lines lost because standard output "
        "was stuck.\n"
        "# TYPE gatehouse_access_log_dropped_total counter\ngatehouse_access_log_dropped_total "
        "%llu\n",
        (unsigned long long)atomic_load(&g->upstream_errors),
        (unsigned long long)atomic_load(&g->upstream_timeouts),
        (unsigned long long)atomic_load(&g->upstream_broken),
        (unsigned long long)atomic_load(&g->upstream_tls),
        (unsigned long long)atomic_load(&g->upstream_extra_bytes),
        (unsigned long long)atomic_load(&g->cache_hits),
        (unsigned long long)atomic_load(&g->parked),
        (unsigned long long)atomic_load(&g->log_lines_dropped));
    metric(buf, len, cap,
           "# HELP gatehouse_request_duration_seconds Gateway request latency.\n"
           "# TYPE gatehouse_request_duration_seconds histogram\n");
    unsigned long long total = 0;
    for (int i = 0; i <= GH_GW_LATENCY_BUCKETS; i++) {
        total += (unsigned long long)atomic_load(&g->latency[i]);
        if (i < GH_GW_LATENCY_BUCKETS)
            metric(buf, len, cap, "gatehouse_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                   (double)gh_gateway_latency_bounds_us[i] / 1e6, total);
    }
    metric(buf, len, cap,
           "gatehouse_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
           "gatehouse_request_duration_seconds_sum %.6f\ngatehouse_request_duration_seconds_count "
           "%llu\n",
           total, (double)atomic_load(&g->latency_sum_us) / 1e6, total);
}

/* One sample per provider and family, each provider's figures read once. */
static void provider_metrics(struct gh_provider **all, size_t n, char **buf, size_t *len,
                             size_t *cap)
{
    static const struct {
        const char *name, *type, *help;
    } families[] = {
        {"gatehouse_provider_fetches_total", "counter", "HTTP fetches of IdP documents."},
        {"gatehouse_provider_failures_total", "counter", "Refreshes of IdP keys that failed."},
        {"gatehouse_provider_available", "gauge", "Whether the provider has usable keys."},
        {"gatehouse_provider_refetches_total", "counter",
         "Key set refetches asked by unknown kids."},
        {"gatehouse_provider_kid_refusals_total", "counter",
         "Unknown kids refused at once, without a fetch (remembered, too soon, budget spent)."},
        {"gatehouse_provider_unknown_kid_evictions_total", "counter",
         "Remembered unknown kids dropped to make room in the provider's fixed-size table."},
    };
    enum { FAMILIES = sizeof families / sizeof families[0] };
    unsigned long long(*values)[FAMILIES] = calloc(n + 1, sizeof *values);
    if (values == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        struct gh_provider_counters c;
        json_t *status = gh_provider_status(all[i]);
        gh_provider_counters(all[i], &c);
        values[i][0] = (unsigned long long)c.fetches;
        values[i][1] = (unsigned long long)c.failures;
        values[i][2] = json_is_true(json_object_get(status, "available"));
        values[i][3] = (unsigned long long)c.refetches;
        values[i][4] = (unsigned long long)c.kid_refusals;
        values[i][5] = (unsigned long long)c.unknown_kid_evictions;
        json_decref(status);
    }
    for (size_t f = 0; f < FAMILIES; f++) {
        metric(buf, len, cap, "# HELP %s %s\n# TYPE %s %s\n", families[f].name, families[f].help,
               families[f].name, families[f].type);
        for (size_t i = 0; i < n; i++)
            metric(buf, len, cap, "%s{provider=\"%s\"} %llu\n", families[f].name,
                   gh_provider_id(all[i]), values[i][f]);
    }
    free(values);
}

/* How the node keeps its configuration current: snapshots published by cause, and how often the
 * PostgreSQL watcher had to connect again. */
static void store_metrics(struct gh_app *app, char **buf, size_t *len, size_t *cap)
{
    struct gh_store_watch *watch = atomic_load(&app->watch);

    metric(buf, len, cap,
           "# HELP gatehouse_config_reloads_total Configuration snapshots published, by cause "
           "(start, write: this node's admin API, notify: another node's write, poll: the "
           "generation check, reconnect: the catch-up after the store came back).\n"
           "# TYPE gatehouse_config_reloads_total counter\n");
    for (int c = 0; c < GH_RELOAD_CAUSE_COUNT; c++)
        metric(buf, len, cap, "gatehouse_config_reloads_total{cause=\"%s\"} %llu\n",
               gh_reload_cause_names[c], (unsigned long long)atomic_load(&app->reloads[c]));
    metric(
        buf, len, cap,
        "# HELP gatehouse_store_reconnects_total Times the store watcher connected again after "
        "the database had been away (PostgreSQL).\n"
        "# TYPE gatehouse_store_reconnects_total counter\ngatehouse_store_reconnects_total %llu\n",
        watch != NULL ? (unsigned long long)gh_store_watch_reconnects(watch) : 0ULL);
}

void gh_app_metrics(void *ctx, const struct gh_admin_request *req, struct gh_admin_response *res)
{
    struct gh_app *app = ctx;
    size_t len = 0, cap = 4096, n = 0;
    char *buf = malloc(cap);
    struct gh_config *config = gh_app_config(app);
    struct gh_provider **all = app->providers ? gh_oidc_providers(app->providers, &n) : NULL;
    (void)req;
    buf[0] = '\0';
    metric(&buf, &len, &cap,
           "# HELP gatehouse_store_up Whether the store can be reached (PostgreSQL: the "
           "watcher's connection is up).\n# TYPE gatehouse_store_up gauge\n"
           "gatehouse_store_up %d\n",
           gh_app_store_reachable(app));
    store_metrics(app, &buf, &len, &cap);
    metric(&buf, &len, &cap,
           "# HELP gatehouse_config_generation Generation of the published configuration.\n"
           "# TYPE gatehouse_config_generation gauge\ngatehouse_config_generation %llu\n",
           config ? (unsigned long long)config->generation : 0ULL);
    metric(&buf, &len, &cap,
           "# HELP gatehouse_config_objects Objects in the published configuration.\n"
           "# TYPE gatehouse_config_objects gauge\n"
           "gatehouse_config_objects{kind=\"collections\"} %zu\n"
           "gatehouse_config_objects{kind=\"profiles\"} %zu\n",
           config ? config->n_collections : 0, config ? config->n_profiles : 0);
    provider_metrics(all, n, &buf, &len, &cap);
    free(all);
    if (app->providers != NULL) {
        struct gh_oidc_manager_counters mc;
        gh_oidc_manager_counters(app->providers, &mc);
        metric(&buf, &len, &cap,
               "# HELP gatehouse_provider_manager_wakeups_total Passes of the provider thread's "
               "loop (about one a second when idle; a fast rise means it spins).\n"
               "# TYPE gatehouse_provider_manager_wakeups_total counter\n"
               "gatehouse_provider_manager_wakeups_total %llu\n",
               (unsigned long long)mc.wakeups);
    }
    gh_config_unref(config);
    if (app->gateway != NULL) {
        gateway_metrics(gh_gateway_server_metrics(app->gateway), &buf, &len, &cap);
        frontend_metrics(&gh_gateway_server_metrics(app->gateway)->http, &buf, &len, &cap);
    }
    res->text = buf;
    res->content_type = "text/plain; version=0.0.4";
}
