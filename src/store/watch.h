// SPDX-License-Identifier: Apache-2.0
/*
 * The store watcher: how a node learns that another node changed the configuration they share in
 * PostgreSQL, and how it lives through the database going away. It runs on a thread of its own
 * with a connection of its own (never a gateway worker's loop nor the admin listener's), LISTENs
 * for the generation each write transaction announces at commit, checks the generation every
 * poll period as a safety net for what a reconnect may have missed, and asks its owner to reload
 * when the generation moved past what the node publishes. When the database goes away it says so
 * once, reconnects with backoff and jitter, says so once when it is back, and then catches up.
 */
#ifndef GH_STORE_WATCH_H
#define GH_STORE_WATCH_H

#include <stdint.h>

#include "store/store.h"

/* Why the watcher asks for a reload. */
enum gh_store_watch_cause {
    GH_STORE_WATCH_NOTIFY,    /* a node's write was announced */
    GH_STORE_WATCH_POLL,      /* the periodic check found a newer generation */
    GH_STORE_WATCH_RECONNECT, /* the connection came (back): catch up with what happened */
};

struct gh_store_watch_hooks {
    void *ctx;
    /* 1 and the generation of the configuration the node publishes now, or 0 when it has none */
    int (*published)(void *ctx, uint64_t *generation);
    /* reloads the configuration from the store (on the watcher's thread); GH_OK, or an error
     * after which the watcher asks again a little later */
    int (*reload)(void *ctx, enum gh_store_watch_cause cause);
};

/* The shortest period of the generation check: below it the check would be a load, not a net. */
#define GH_STORE_WATCH_MIN_POLL_MS 100

struct gh_store_watch;

/*
 * Starts watching the PostgreSQL store `s` (borrowed; it must outlive the watcher): *out is NULL
 * and GH_OK for a store that nothing else writes to (SQLite). `poll_ms` is the period of the
 * generation check (at least GH_STORE_WATCH_MIN_POLL_MS); `reachable` whether the store could be
 * reached when it was opened (if not, the owner has said so and the watcher does not say it
 * again). The hooks are copied.
 */
int gh_store_watch_start(struct gh_store *s, int64_t poll_ms, int reachable,
                         const struct gh_store_watch_hooks *hooks, struct gh_store_watch **out);

/* Stops the thread and closes its connection; NULL is fine. */
void gh_store_watch_stop(struct gh_store_watch *w);

/* 1 while the watcher's connection is up (the database answers), 0 while it is away. */
int gh_store_watch_reachable(const struct gh_store_watch *w);

/* How many times the watcher connected again after the database had been away. */
uint64_t gh_store_watch_reconnects(const struct gh_store_watch *w);

#endif
