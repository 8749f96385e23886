// SPDX-License-Identifier: Apache-2.0
/*
 * What the front end's files share and nobody above them sees: a client connection, the private
 * side of a request, and the worker that owns both. server.c accepts, counts and drains
 * connections and owns the workers; request.c is the request's life (arena, handler calls, the
 * public answering functions, which dispatch to the protocol); h1conn.c and h2conn.c speak the
 * two protocols. Everything here is touched by its worker's thread only, but the counters.
 */
#ifndef GH_HTTP_CONN_H
#define GH_HTTP_CONN_H

#include <pthread.h>
#include <stdatomic.h>

#include "http/server.h"
#include "http/sock.h"

struct gh_http_conn;

/* The protocol's side of answering and reading, called through request.c's public functions. */
struct gh_http_proto {
    const char *name; /* "http/1.1", "h2" */
    /* `headers` as the handler gave them (front-end-owned names already removed by request.c) */
    int (*respond_start)(struct gh_http_request *req, int status,
                         const struct gh_http_header *headers, size_t n, int64_t content_length);
    /* 1 may write more, 0 wait for on_writable, -1 gone */
    int (*respond_write)(struct gh_http_request *req, const void *data, size_t len, int last);
    void (*respond_abort)(struct gh_http_request *req);
    void (*body_start)(struct gh_http_request *req);
    void (*body_pause)(struct gh_http_request *req);
    void (*body_resume)(struct gh_http_request *req);
    /* the server drains: finish what runs, take nothing new (HTTP/1: close when idle or after the
     * answer; HTTP/2: GOAWAY) */
    void (*drain)(struct gh_http_conn *c);
    /* the drain is over: close now, ending every request (on_done with completed 0) */
    void (*cut)(struct gh_http_conn *c);
};

struct gh_http_conn {
    struct gh_sock sock;
    struct gh_http_worker *worker;
    const struct gh_http_proto *proto; /* NULL during the TLS handshake */
    void *proto_state;                 /* h1conn's or h2conn's */
    struct gh_http_conn *prev, *next;  /* the worker's connections */
    struct sockaddr_storage peer;
    socklen_t peer_len;
    struct gh_timer timer; /* handshake, or the protocol's (head, idle, body) */
    int tls;
};

/* The private side of a request; the public struct is its first member. */
struct gh_http_req_impl {
    struct gh_http_request pub;
    struct gh_http_conn *conn;
    void *proto_req; /* the protocol's per-request state (an HTTP/2 stream) */
    struct gh_http_arena_chunk *arena;
    size_t arena_used;  /* bytes handed out beyond the head (bounded) */
    int answer_started; /* a head went out */
    int answer_ended;   /* the last body byte was handed to the protocol */
    int body_started;
    int dispatched; /* the handler has it (on_request ran) */
    int done;       /* on_done ran */
    int is_head;    /* HEAD: no body goes out */
    int close_after;
};

struct gh_http_worker {
    struct gh_http_server *server;
    unsigned index;
    pthread_t thread;
    int thread_started;
    int listen_fds[GH_LISTEN_MAX];
    struct gh_io listeners[GH_LISTEN_MAX];
    size_t n_listeners;
    struct gh_loop *loop;
    struct gh_http_conn *conns; /* every open client connection */
    unsigned n_conns;
    int draining;
    void *data; /* worker_init's */
};

/* server.c: what the protocols read */
const struct gh_http_server_options *gh_http_options(const struct gh_http_worker *w);
struct gh_http_metrics *gh_http_metrics_of(const struct gh_http_worker *w);
void gh_http_count(atomic_uint_fast64_t *counter);
void gh_http_count_limit(const struct gh_http_worker *w, enum gh_http_limit which);
/* Ends a connection: its protocol has ended its requests already. Unlinks, closes, frees. */
void gh_http_conn_free(struct gh_http_conn *c);

/* request.c: a request's life */
/* A request of `c` with `arena_hint` bytes of arena ready (for its head's copy) and the handler's
 * state; NULL when out of memory. */
struct gh_http_req_impl *gh_http_req_new(struct gh_http_conn *c, size_t arena_hint);
/* Arena memory beyond the arena limit (the protocol's copies of the head). */
void *gh_http_req_arena(struct gh_http_req_impl *r, size_t size);
/* Hands a complete head to the handler. */
void gh_http_req_dispatch(struct gh_http_req_impl *r);
/* Hands a refusal to the handler (req->refusal set), which answers it. */
void gh_http_req_refuse(struct gh_http_req_impl *r, const struct gh_http_refusal *refusal);
/* Body bytes or the body's end or failure to the handler. */
void gh_http_req_body(struct gh_http_req_impl *r, const char *data, size_t len, int state);
void gh_http_req_writable(struct gh_http_req_impl *r);
/* The request is over: on_done, then freed. */
void gh_http_req_end(struct gh_http_req_impl *r, int completed);
/* The standard refusals (static). */
extern const struct gh_http_refusal gh_http_refusal_header_bytes, gh_http_refusal_header_count,
    gh_http_refusal_body_too_large, gh_http_refusal_head_timeout, gh_http_refusal_body_timeout,
    gh_http_refusal_bad_request;

/* The Date of an answer sent now (RFC 9110 5.6.7), formatted once per second and thread; the
 * calling thread's until its next call. */
const char *gh_http_date(void);

/* 1 for names the front end writes itself in answers (content-length, transfer-encoding,
 * connection, keep-alive, date, server, upgrade, proxy-connection, te, trailer). */
int gh_http_front_owned(const char *lc_name, size_t len);

/* The protocols: a connection's first bytes are theirs from here (after TLS, if any). */
void gh_h1_conn_start(struct gh_http_conn *c);
void gh_h2_conn_start(struct gh_http_conn *c);

#endif
