// SPDX-License-Identifier: Apache-2.0
/*
 * What the admin API works on: the store, the provider manager and the published configuration
 * snapshot. `gatehouse serve` owns one of these; the admin thread is its only writer.
 */
#ifndef GH_ADMIN_APP_H
#define GH_ADMIN_APP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "admin/http.h"
#include "common/snapshot.h"
#include "oidc/provider.h"
#include "store/config.h"
#include "store/store.h"
#include "store/watch.h"

struct gh_gateway_server;
struct gh_gateway_settings;

/* Why a node rebuilt its configuration snapshot, for /metrics: its own admin write, another
 * node's write announced by NOTIFY, the periodic generation check, a catch-up after the store
 * came back, or the first load at start. */
enum gh_reload_cause {
    GH_RELOAD_START,
    GH_RELOAD_WRITE,
    GH_RELOAD_NOTIFY,
    GH_RELOAD_POLL,
    GH_RELOAD_RECONNECT,
    GH_RELOAD_CAUSE_COUNT
};

/* "start", "write", "notify", "poll", "reconnect" */
extern const char *const gh_reload_cause_names[GH_RELOAD_CAUSE_COUNT];

struct gh_app {
    struct gh_store *store;
    struct gh_oidc_manager *providers;
    struct gh_snapshot_slot config; /* struct gh_config */
    int64_t validate_timeout_ms;    /* how long saving an oidc profile may wait for its IdP */
    int64_t started_at;             /* epoch seconds, for /metrics */
    /* the data plane, for /metrics; NULL until it runs. Atomic: serve's thread sets it while the
     * admin thread reads it. */
    struct gh_gateway_server *_Atomic gateway;
    /* 1 while the gateway listens: /readyz is 503 before it starts and from SIGTERM on, so a load
     * balancer sends nothing to a node that cannot take it or is draining */
    atomic_int serving;
    const struct gh_gateway_settings *settings; /* what explain decides with: the gateway's own */
    /* snapshots published, by cause (a reload that found the generation already published is
     * not counted: it published nothing) */
    atomic_ullong reloads[GH_RELOAD_CAUSE_COUNT];
    /* the PostgreSQL watcher, for /readyz and /metrics; NULL on SQLite. Atomic: serve's thread
     * sets it while the admin thread reads it. */
    struct gh_store_watch *_Atomic watch;
};

/* Whether the store can be reached now, without waiting on it: the watcher's connection on
 * PostgreSQL (so /readyz and /metrics never block on a database that is away), a ping on SQLite. */
int gh_app_store_reachable(struct gh_app *app);

/* The admin API's routes (SPEC §6), for gh_admin_server_options. */
extern const struct gh_admin_route gh_admin_routes[];
extern const size_t gh_admin_route_count;

/*
 * Rebuilds the configuration snapshot from the store and publishes it, and makes sure every oidc
 * profile's provider exists (so its keys are fetched before the first request needs them). The
 * store is read in one transaction and the snapshot carries the generation it read; when that is
 * the generation already published, nothing is rebuilt. Safe from any thread (reloads run one at
 * a time). GH_OK, or the store's error (GH_ERR_STORE_UNAVAILABLE while its database is away: the
 * last snapshot stays published).
 */
int gh_app_reload(struct gh_app *app, enum gh_reload_cause cause);

/* gh_admin_server_options.on_denied: records a refused admin authentication in the audit log
 * (kind "auth", action "denied"); `app` is a struct gh_app. */
void gh_app_auth_denied(void *app, const struct gh_admin_denial *denial);

/* GET /metrics (src/admin/metrics.c); `ctx` is a struct gh_app. */
void gh_app_metrics(void *ctx, const struct gh_admin_request *req, struct gh_admin_response *res);

/* The current snapshot with a reference (gh_config_unref), or NULL before the first reload. */
struct gh_config *gh_app_config(struct gh_app *app);

#endif
