// SPDX-License-Identifier: Apache-2.0
/*
 * The store watcher of watch.h. One thread, one PostgreSQL connection, one poll() on the
 * connection's socket and a wake-up pipe: a notification is acted on the moment it arrives, the
 * generation check runs when the poll period runs out, and stopping never waits for a period to
 * end. Everything the watcher says goes to the log once per change of state (lost, back), never
 * once per attempt, and names the database by host, port and name only.
 */
#define _GNU_SOURCE /* pipe2 */
#include "store/watch.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "store/backend.h"
#include "store/pgconn.h"

/* Reconnecting: the first retry soon (a restart takes a moment), then doubling to a ceiling that
 * keeps the catch-up within seconds of the database's return. */
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS   5000
/* A reload that failed (the admin connection still reconnecting) is asked for again after this. */
#define RELOAD_RETRY_MS 200
/* The watcher's own connection attempts give up after this many seconds (libpq's minimum). */
#define CONNECT_TIMEOUT "2"

struct gh_store_watch {
    char *conninfo; /* a copy: holds the password, wiped at stop */
    char location[320];
    struct gh_store_watch_hooks hooks;
    int64_t poll_ms;
    pthread_t thread;
    int wake[2]; /* written by stop */
    atomic_int reachable;
    atomic_ullong reconnects;
    /* the thread's own from here on */
    PGconn *conn;
    int64_t backoff_ms;
    int said_lost;     /* the loss is in the log, the return not yet */
    int64_t lost_at;   /* when it was lost (monotonic ms) */
    int pending;       /* a reload to ask for (enum gh_store_watch_cause), or -1 */
    int64_t reload_at; /* ... not before this */
    int64_t next_poll; /* the next generation check */
    unsigned seed;
};

/* Sleeps `ms` unless stop is asked for first; 1 when it is. */
static int sleep_or_stop(struct gh_store_watch *w, int64_t ms)
{
    struct pollfd p = {.fd = w->wake[0], .events = POLLIN};
    return poll(&p, 1, (int)ms) > 0;
}

/* Between half and all of the backoff, so that nodes that lost the database together do not all
 * knock at the same instant when it returns. */
static int64_t jittered(struct gh_store_watch *w)
{
    int64_t half = w->backoff_ms / 2;
    return half + (half > 0 ? (int64_t)(rand_r(&w->seed) % (half + 1)) : 0);
}

static void say_lost(struct gh_store_watch *w, const char *why)
{
    atomic_store(&w->reachable, 0);
    if (w->said_lost)
        return;
    w->said_lost = 1;
    w->lost_at = gh_clock_monotonic_ms();
    gh_log(GH_LOG_WARN,
           "the configuration store cannot be reached: this node keeps serving its last "
           "configuration, admin writes answer 503 store_unavailable, reconnecting",
           json_pack("{s:s, s:s}", "store", w->location, "error", why));
}

static void lose(struct gh_store_watch *w, const char *why)
{
    PQfinish(w->conn);
    w->conn = NULL;
    w->backoff_ms = BACKOFF_FIRST_MS;
    say_lost(w, why);
}

/* The server's messages to an idle session ("terminating connection due to administrator command"
 * when it shuts down) would go to stderr by libpq's default: the watcher logs the loss itself, in
 * its own words, once. */
static void quiet(void *arg, const PGresult *r)
{
    (void)arg, (void)r;
}

/* A connection and LISTEN on it; GH_OK, or GH_ERR_STORE_UNAVAILABLE (said once) */
static int connect_and_listen(struct gh_store_watch *w)
{
    char why[512];
    PGconn *conn = gh_pg_connect(w->conninfo, CONNECT_TIMEOUT);
    PGresult *r = NULL;

    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        if (conn != NULL)
            gh_pg_connection_error(conn, w->conninfo, w->location, why, sizeof why);
        else
            snprintf(why, sizeof why, "out of memory");
        PQfinish(conn);
        say_lost(w, why);
        return GH_ERR_STORE_UNAVAILABLE;
    }
    PQsetNoticeReceiver(conn, quiet, NULL);
    r = PQexec(conn, "LISTEN " GH_PG_CHANNEL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        PQclear(r);
        PQfinish(conn);
        say_lost(w, "LISTEN failed");
        return GH_ERR_STORE_UNAVAILABLE;
    }
    PQclear(r);
    w->conn = conn;
    w->backoff_ms = BACKOFF_FIRST_MS;
    atomic_store(&w->reachable, 1);
    if (w->said_lost) {
        w->said_lost = 0;
        atomic_fetch_add(&w->reconnects, 1);
        gh_log(GH_LOG_INFO, "the configuration store is reachable again",
               json_pack("{s:s, s:I}", "store", w->location, "unreachable_ms",
                         (json_int_t)(gh_clock_monotonic_ms() - w->lost_at)));
    }
    /* whatever was committed while this node was not listening: catch up now */
    w->pending = GH_STORE_WATCH_RECONNECT;
    w->reload_at = 0;
    w->next_poll = gh_clock_monotonic_ms() + w->poll_ms;
    return GH_OK;
}

/* Whether `generation` is news to this node (or the node has no configuration at all). */
static int is_news(struct gh_store_watch *w, uint64_t generation)
{
    uint64_t published = 0;
    return !w->hooks.published(w->hooks.ctx, &published) || generation > published;
}

static void want_reload(struct gh_store_watch *w, enum gh_store_watch_cause cause)
{
    if (w->pending < 0) {
        w->pending = (int)cause;
        w->reload_at = 0;
    }
}

static void drain_notifications(struct gh_store_watch *w)
{
    PGnotify *n;
    while ((n = PQnotifies(w->conn)) != NULL) {
        if (is_news(w, strtoull(n->extra, NULL, 10)))
            want_reload(w, GH_STORE_WATCH_NOTIFY);
        PQfreemem(n);
    }
}

/* The safety net: the generation read directly. A database not migrated yet has no generation:
 * not news unless the node has nothing (its reload then migrates through the store). */
static void check_generation(struct gh_store_watch *w)
{
    PGresult *r = PQexec(w->conn, "SELECT value FROM meta WHERE name = 'generation'");

    w->next_poll = gh_clock_monotonic_ms() + w->poll_ms;
    if (PQstatus(w->conn) != CONNECTION_OK) {
        PQclear(r);
        lose(w, "the connection was lost");
        return;
    }
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        if (is_news(w, strtoull(PQgetvalue(r, 0, 0), NULL, 10)))
            want_reload(w, GH_STORE_WATCH_POLL);
    } else if (is_news(w, 0))
        want_reload(w, GH_STORE_WATCH_POLL);
    PQclear(r);
    drain_notifications(w); /* those that came with the answer */
}

static void ask_reload(struct gh_store_watch *w)
{
    if (w->pending < 0 || gh_clock_monotonic_ms() < w->reload_at)
        return;
    if (w->hooks.reload(w->hooks.ctx, (enum gh_store_watch_cause)w->pending) == GH_OK)
        w->pending = -1;
    else
        w->reload_at = gh_clock_monotonic_ms() + RELOAD_RETRY_MS;
}

/* One wait on the connection and the stop pipe; 1 when stop was asked for. */
static int wait_once(struct gh_store_watch *w)
{
    struct pollfd p[2] = {{.fd = w->wake[0], .events = POLLIN},
                          {.fd = PQsocket(w->conn), .events = POLLIN}};
    int64_t now = gh_clock_monotonic_ms(), until = w->next_poll;

    if (w->pending >= 0 && w->reload_at < until)
        until = w->reload_at;
    int n = poll(p, 2, until > now ? (int)(until - now) : 0);
    if (n < 0 && errno != EINTR)
        return 1;
    if (n > 0 && (p[0].revents & POLLIN))
        return 1;
    if (n > 0 && (p[1].revents & (POLLIN | POLLERR | POLLHUP))) {
        if (!PQconsumeInput(w->conn) || PQstatus(w->conn) != CONNECTION_OK) {
            lose(w, "the connection was lost");
            return 0;
        }
        drain_notifications(w);
    }
    if (gh_clock_monotonic_ms() >= w->next_poll)
        check_generation(w);
    return 0;
}

static void *watch_thread(void *arg)
{
    struct gh_store_watch *w = arg;

    for (;;) {
        if (w->conn == NULL && connect_and_listen(w) != GH_OK) {
            if (sleep_or_stop(w, jittered(w)))
                break;
            w->backoff_ms = w->backoff_ms * 2 < BACKOFF_MAX_MS ? w->backoff_ms * 2 : BACKOFF_MAX_MS;
            continue;
        }
        ask_reload(w);
        if (wait_once(w))
            break;
    }
    return NULL;
}

int gh_store_watch_start(struct gh_store *s, int64_t poll_ms, int reachable,
                         const struct gh_store_watch_hooks *hooks, struct gh_store_watch **out)
{
    const char *conninfo = gh_store_conninfo(s);
    struct gh_store_watch *w;

    *out = NULL;
    if (conninfo == NULL)
        return GH_OK; /* SQLite: one node, which makes every change itself */
    if (poll_ms < GH_STORE_WATCH_MIN_POLL_MS || hooks == NULL)
        return GH_ERR_INVALID_ARG;
    if ((w = calloc(1, sizeof *w)) == NULL)
        return GH_ERR_NOMEM;
    w->wake[0] = w->wake[1] = -1;
    if ((w->conninfo = strdup(conninfo)) == NULL || pipe2(w->wake, O_CLOEXEC) != 0) {
        gh_store_watch_stop(w);
        return GH_ERR_NOMEM;
    }
    snprintf(w->location, sizeof w->location, "%s", gh_store_location(s));
    w->hooks = *hooks;
    w->poll_ms = poll_ms;
    w->backoff_ms = BACKOFF_FIRST_MS;
    w->pending = -1;
    w->said_lost = !reachable; /* the owner said it; the return is still to be said */
    w->lost_at = gh_clock_monotonic_ms();
    w->seed = (unsigned)getpid() ^ (unsigned)gh_clock_monotonic_ms();
    atomic_store(&w->reachable, reachable);
    if (pthread_create(&w->thread, NULL, watch_thread, w) != 0) {
        close(w->wake[0]), close(w->wake[1]);
        w->wake[0] = w->wake[1] = -1;
        gh_store_watch_stop(w);
        return GH_ERR_NOMEM;
    }
    *out = w;
    return GH_OK;
}

void gh_store_watch_stop(struct gh_store_watch *w)
{
    if (w == NULL)
        return;
    if (w->wake[1] >= 0) {
        if (write(w->wake[1], "x", 1) != 1)
            gh_log(GH_LOG_ERROR, "cannot wake the store watcher", NULL);
        pthread_join(w->thread, NULL);
        close(w->wake[0]);
        close(w->wake[1]);
    }
    PQfinish(w->conn);
    if (w->conninfo != NULL) {
        OPENSSL_cleanse(w->conninfo, strlen(w->conninfo));
        free(w->conninfo);
    }
    free(w);
}

int gh_store_watch_reachable(const struct gh_store_watch *w)
{
    return atomic_load(&((struct gh_store_watch *)w)->reachable);
}

uint64_t gh_store_watch_reconnects(const struct gh_store_watch *w)
{
    return atomic_load(&((struct gh_store_watch *)w)->reconnects);
}
