// SPDX-License-Identifier: Apache-2.0
/*
 * The resolver pool of resolve.h. A request has two holders: its owner (until the callback runs
 * or it cancels) and the pool (until the answer was handed to the loop, or refused by it); the
 * last one to let go frees it, so a cancel racing with a lookup in progress needs no lock.
 */
#include "http/resolve.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

#define RESOLVE_THREADS   4
#define RESOLVE_QUEUE_MAX 1024
#define RESOLVE_HOST_MAX  255
#define RESOLVE_PORT_MAX  15

struct gh_resolve {
    struct gh_loop_msg msg; /* the answer's way back */
    struct gh_loop *loop;
    gh_resolve_cb cb;
    void *data;
    char host[RESOLVE_HOST_MAX + 1], port[RESOLVE_PORT_MAX + 1];
    struct addrinfo *res;
    const char *error;
    struct gh_resolve *next; /* the pool's queue */
    atomic_int refs;
    int cancelled; /* the loop's thread only */
};

static struct {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    struct gh_resolve *head, *tail;
    size_t queued;
    pthread_t threads[RESOLVE_THREADS];
    unsigned n_threads, idle;
    int stopping;
} pool = {.mutex = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void resolve_release(struct gh_resolve *r)
{
    if (atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    if (r->res != NULL)
        freeaddrinfo(r->res);
    free(r);
}

static const char *resolve_error_text(int rc)
{
    switch (rc) {
    case EAI_NONAME:
        return "unknown host name";
    case EAI_AGAIN:
        return "name resolution failed for now";
    case EAI_MEMORY:
        return "out of memory";
    case EAI_SERVICE:
        return "invalid port";
    default:
        return "name resolution failed";
    }
}

/* The loop's thread. */
static void resolve_answer(struct gh_loop_msg *msg)
{
    struct gh_resolve *r = msg->data;

    if (!r->cancelled) {
        r->cancelled = 1; /* the handle is spent */
        r->cb(r->data, r->res, r->error);
        resolve_release(r); /* the owner's hold */
    }
    resolve_release(r); /* the pool's hold */
}

static void resolve_lookup(struct gh_resolve *r, int stopping)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV};
    int rc;

    if (stopping) {
        r->error = "resolver stopped";
    } else if ((rc = getaddrinfo(r->host, r->port, &hints, &r->res)) != 0) {
        r->res = NULL;
        r->error = resolve_error_text(rc);
    } else if (r->res == NULL) {
        r->error = "unknown host name";
    }
    r->msg.cb = resolve_answer;
    r->msg.data = r;
    if (!gh_loop_post(r->loop, &r->msg))
        resolve_release(r); /* the loop takes no more: dropped */
}

static void *resolve_thread(void *arg)
{
    pthread_mutex_lock(&pool.mutex);
    for (;;) {
        struct gh_resolve *r;
        while (pool.head == NULL && !pool.stopping) {
            pool.idle++;
            pthread_cond_wait(&pool.cond, &pool.mutex);
            pool.idle--;
        }
        if ((r = pool.head) == NULL)
            break; /* stopping, and nothing left to answer */
        if ((pool.head = r->next) == NULL)
            pool.tail = NULL;
        pool.queued--;
        int stopping = pool.stopping;
        pthread_mutex_unlock(&pool.mutex);
        resolve_lookup(r, stopping);
        pthread_mutex_lock(&pool.mutex);
    }
    pthread_mutex_unlock(&pool.mutex);
    return NULL;
}

/* With the mutex held: one more thread when none is idle and the pool is not full. 0 when the
 * pool has no thread at all. */
static int resolve_grow(void)
{
    sigset_t all, old;

    if (pool.idle > 0 || pool.n_threads == RESOLVE_THREADS)
        return 1;
    sigfillset(&all); /* signals are for the process's own threads */
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (pthread_create(&pool.threads[pool.n_threads], NULL, resolve_thread, NULL) == 0)
        pool.n_threads++;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return pool.n_threads > 0;
}

int gh_resolve_start(struct gh_loop *loop, const char *host, const char *port, gh_resolve_cb cb,
                     void *data, struct gh_resolve **out)
{
    size_t hl = strlen(host), pl = strlen(port);
    struct gh_resolve *r;
    int rc = GH_OK;

    *out = NULL;
    if (hl == 0 || hl > RESOLVE_HOST_MAX || pl == 0 || pl > RESOLVE_PORT_MAX)
        return GH_ERR_INVALID_ARG;
    if ((r = calloc(1, sizeof *r)) == NULL)
        return GH_ERR_NOMEM;
    r->loop = loop;
    r->cb = cb;
    r->data = data;
    memcpy(r->host, host, hl);
    memcpy(r->port, port, pl);
    atomic_init(&r->refs, 2);
    pthread_mutex_lock(&pool.mutex);
    if (pool.stopping || pool.queued >= RESOLVE_QUEUE_MAX || !resolve_grow()) {
        rc = GH_ERR_IO;
        goto out;
    }
    if (pool.tail != NULL)
        pool.tail->next = r;
    else
        pool.head = r;
    pool.tail = r;
    pool.queued++;
    pthread_cond_signal(&pool.cond);
    *out = r;
    r = NULL;
out:
    pthread_mutex_unlock(&pool.mutex);
    free(r);
    return rc;
}

void gh_resolve_cancel(struct gh_resolve *r)
{
    if (r == NULL || r->cancelled)
        return;
    r->cancelled = 1;
    resolve_release(r);
}

void gh_resolve_shutdown(void)
{
    pthread_t threads[RESOLVE_THREADS];
    unsigned n;

    pthread_mutex_lock(&pool.mutex);
    pool.stopping = 1;
    n = pool.n_threads;
    memcpy(threads, pool.threads, sizeof threads);
    pthread_cond_broadcast(&pool.cond);
    pthread_mutex_unlock(&pool.mutex);
    for (unsigned i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    pthread_mutex_lock(&pool.mutex);
    pool.n_threads = 0;
    pool.stopping = 0;
    pthread_mutex_unlock(&pool.mutex);
}
