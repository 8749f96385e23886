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

struct gh_fetch {
    CURL *easy;
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

/* Prepares a GET of `url` (the caller adds f->easy to a multi handle). */
int gh_fetch_start(struct gh_fetch *f, const char *url, const struct gh_oidc_options *o,
                   void *owner);

/* Classifies the finished transfer: GH_OK for a 2xx answer with its body, 1 for a redirect
 * (f->redirect set), else a GH_ERR_FETCH_* with a message in f->error naming the URL and cause. */
int gh_fetch_result(struct gh_fetch *f, CURLcode code);

/* Frees the handle and buffers (after the caller removed the handle from its multi). */
void gh_fetch_clear(struct gh_fetch *f);

#endif
