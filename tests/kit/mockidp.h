// SPDX-License-Identifier: Apache-2.0
/*
 * A scriptable mock identity provider for the tests of the OIDC provider manager (SPEC §4). The
 * manager fetches discovery documents and key sets with libcurl on its own thread, and its rules
 * (caching headers, size cap, time limit, redirect limit, keeping the last good keys when the IdP
 * misbehaves) can only be proven against a server that misbehaves on demand. This is that server:
 * HTTP/1.1 (optionally over TLS) on 127.0.0.1 with an ephemeral port, one thread per connection,
 * every answer followed by `Connection: close`. Test code only; never linked into the gatehouse
 * binary. Link with -lssl -lcrypto -lpthread.
 */
#ifndef GH_MOCKIDP_H
#define GH_MOCKIDP_H

#include <stddef.h>

struct gh_mockidp;

/* What one route answers. Zero-initialise it and set what the test needs. */
struct gh_mock_response {
    int status;                /* 0 means 200 */
    const char *content_type;  /* NULL: no Content-Type header */
    const char *extra_headers; /* raw header lines, e.g. "Cache-Control: max-age=120\r\n"; a
                                  missing final CRLF is added */
    const char *body;          /* NULL: empty body */
    size_t body_len;           /* 0: strlen(body) */
    size_t pad_to;             /* body repeated (spaces if empty) up to this many bytes */
    int delay_ms;              /* wait before answering (cut short by stop) */
    int hang;                  /* read the request, never answer until stop or the client closes */
    const char *location;      /* Location header (3xx), relative or absolute, sent verbatim */
    int garbage;               /* answer bytes that are not HTTP at all, then close */
    int truncate;              /* announce more Content-Length than is sent, then close */
};

/* Starts a plain HTTP mock on 127.0.0.1, ephemeral port. NULL on failure. The caller owns the
 * result and releases it with gh_mockidp_stop(). */
struct gh_mockidp *gh_mockidp_start(void);

/* The same over TLS with the certificate chain and private key read from PEM files (only read
 * during the call; the caller keeps the files). NULL on failure. */
struct gh_mockidp *gh_mockidp_start_tls(const char *cert_pem_file, const char *key_pem_file);

/* "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT", without a final slash; owned by `m`, valid
 * until gh_mockidp_stop(). */
const char *gh_mockidp_base_url(const struct gh_mockidp *m);
int gh_mockidp_port(const struct gh_mockidp *m);

/* Makes `path` (exact match, query string ignored) answer `r`, replacing any previous answer in one
 * step: a request in flight finishes with the answer it started with. Every string of `r` is
 * copied; the caller keeps `r`. `r` NULL removes the route (it answers 404 again). Thread-safe. */
void gh_mockidp_set(struct gh_mockidp *m, const char *path, const struct gh_mock_response *r);

/* Shorthand: `json` (copied) with Content-Type application/json and `extra_headers` (copied, may
 * be NULL). */
void gh_mockidp_set_json(struct gh_mockidp *m, const char *path, int status, const char *json,
                         const char *extra_headers);

/* Serves /.well-known/openid-configuration with `issuer` (NULL: the base URL) and jwks_uri = base
 * URL + `jwks_path`, plus the other fields an OpenID Provider must publish. Both strings copied. */
void gh_mockidp_serve_discovery(struct gh_mockidp *m, const char *issuer, const char *jwks_path);

/* Requests fully received for `path` (query string ignored, known route or not) since the start or
 * the last reset. Counted before any delay or hang. Thread-safe. */
unsigned gh_mockidp_hits(struct gh_mockidp *m, const char *path);
void gh_mockidp_reset_hits(struct gh_mockidp *m);

/* Blocks until `path` has at least `at_least` hits or `timeout_ms` has passed; returns the hits. */
unsigned gh_mockidp_wait_hits(struct gh_mockidp *m, const char *path, unsigned at_least,
                              int timeout_ms);

/* Closes the listener and every connection (hanging and delayed ones included), joins every
 * thread and frees `m` and all it owns. Accepts NULL. */
void gh_mockidp_stop(struct gh_mockidp *m);

#endif
