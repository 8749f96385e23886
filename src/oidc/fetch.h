// SPDX-License-Identifier: Apache-2.0
/*
 * One HTTP GET of an IdP document on a libcurl easy handle, with the limits of SPEC §4: TLS always
 * verified, a size cap, a time limit, no automatic redirects (the manager follows them itself, so
 * that every hop passes the URL rules). Internal to src/oidc.
 */
#ifndef GH_OIDC_FETCH_H
#define GH_OIDC_FETCH_H

#include <curl/curl.h>
#include <stddef.h>

#include "oidc/provider.h"

/* Flags for gh_fetch_start. */
/* The URL is not of the provider's own origin: a failure reports only that it could not be
 * reached, never what it answered (status, redirect target, TLS or connection detail), so that a
 * discovery document cannot turn the gateway into a probe of other hosts (issue 11). */
#define GH_FETCH_FOREIGN 0x1u
/* Refuse to connect to this machine (loopback or unspecified, by whatever name it resolves from):
 * for URLs a non-loopback provider leads to. */
#define GH_FETCH_NO_LOCAL 0x2u

struct gh_fetch {
    CURL *easy;
    unsigned flags;
    int refused_local; /* GH_FETCH_NO_LOCAL stopped a connection */
    struct curl_slist *resolve;
    char *url;
    char *body; /* NUL-terminated */
    size_t len;
    size_t max;
    int too_large;
    char cache_control[256];
    char expires[64];
    char date[64];
    long status;
    char *redirect; /* absolute target of a 3xx answer */
    char error[512];
};

/* Prepares a GET of `url` with GH_FETCH_* `flags` (the caller adds f->easy to a multi handle). */
int gh_fetch_start(struct gh_fetch *f, const char *url, const struct gh_oidc_options *o,
                   unsigned flags, void *owner);

/* Classifies the finished transfer: GH_OK for a 2xx answer with its body, 1 for a redirect
 * (f->redirect set), else a GH_ERR_FETCH_* with a message in f->error naming the URL and cause
 * (GH_ERR_FETCH_FAILED only, for GH_FETCH_FOREIGN; GH_ERR_URL_LOCAL when GH_FETCH_NO_LOCAL refused
 * the address). */
int gh_fetch_result(struct gh_fetch *f, CURLcode code);

/* Frees the handle and buffers (after the caller removed the handle from its multi). */
void gh_fetch_clear(struct gh_fetch *f);

#endif
