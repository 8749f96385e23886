// SPDX-License-Identifier: Apache-2.0
/*
 * libcurl configuration for fetching IdP documents. Header callbacks keep only the three caching
 * headers, each bounded; the body callback stops the transfer at the size cap instead of buffering
 * whatever an IdP (or an attacker in its place) sends.
 */
#include "oidc/fetch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "common/error.h"
#include "oidc/policy.h"

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct gh_fetch *f = arg;
    size_t add = size * n;

    if (add > f->max - f->len) {
        f->too_large = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (f->body == NULL && (f->body = malloc(f->max + 1)) == NULL)
        return 0;
    memcpy(f->body + f->len, data, add);
    f->len += add;
    f->body[f->len] = '\0';
    return add;
}

/* Copies the value of header `name` when `line` is that header, trimmed and bounded. */
static void keep_header(const char *line, size_t len, const char *name, char *out, size_t cap)
{
    size_t name_len = strlen(name);
    if (len <= name_len + 1 || strncasecmp(line, name, name_len) != 0 || line[name_len] != ':')
        return;
    const char *v = line + name_len + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    size_t vlen = (size_t)(end - v) < cap - 1 ? (size_t)(end - v) : cap - 1;
    memcpy(out, v, vlen);
    out[vlen] = '\0';
}

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
    struct gh_fetch *f = arg;
    size_t len = size * n;

    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) /* a new response (after 100 Continue...) */
        f->cache_control[0] = f->expires[0] = f->date[0] = '\0';
    keep_header(line, len, "Cache-Control", f->cache_control, sizeof f->cache_control);
    keep_header(line, len, "Expires", f->expires, sizeof f->expires);
    keep_header(line, len, "Date", f->date, sizeof f->date);
    return len;
}

/* Checks each address curl is about to connect to, whatever name resolved to it: a string rule on
 * the URL cannot see that a public name (or a redirect's) resolves to 127.0.0.1. */
static curl_socket_t on_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
    struct gh_fetch *f = arg;

    if (gh_oidc_addr_is_local(&addr->addr)) {
        f->refused_local = 1;
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

int gh_fetch_start(struct gh_fetch *f, const char *url, const struct gh_oidc_options *o,
                   unsigned flags, void *owner)
{
    memset(f, 0, sizeof *f);
    f->flags = flags;
    f->max = o->max_document;
    f->url = strdup(url);
    f->easy = curl_easy_init();
    if (o->resolve != NULL)
        f->resolve = curl_slist_append(NULL, o->resolve);
    if (f->url == NULL || f->easy == NULL || (o->resolve != NULL && f->resolve == NULL)) {
        gh_fetch_clear(f);
        return GH_ERR_NOMEM;
    }
    CURL *e = f->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, owner);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (o->ca_file != NULL)
        curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->fetch_timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, o->fetch_timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_document);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* the cap applies to decoded bytes */
    curl_easy_setopt(e, CURLOPT_USERAGENT, "gatehouse");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, f);
    if (flags & GH_FETCH_NO_LOCAL) {
        curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
        curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, f);
    }
    if (f->resolve != NULL)
        curl_easy_setopt(e, CURLOPT_RESOLVE, f->resolve);
    return GH_OK;
}

static int fail(struct gh_fetch *f, int code, const char *detail)
{
    if (f->flags & GH_FETCH_FOREIGN) { /* another host's answer is not ours to report */
        code = GH_ERR_FETCH_FAILED;
        detail = "";
    }
    snprintf(f->error, sizeof f->error, "GET %s: %s%s%s", f->url, gh_error_message(code),
             detail[0] ? ": " : "", detail);
    return code;
}

int gh_fetch_result(struct gh_fetch *f, CURLcode code)
{
    char detail[64];

    curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &f->status);
    if (f->refused_local) {
        snprintf(f->error, sizeof f->error, "GET %s: %s", f->url,
                 gh_error_message(GH_ERR_URL_LOCAL));
        return GH_ERR_URL_LOCAL;
    }
    if (f->too_large || code == CURLE_FILESIZE_EXCEEDED)
        return fail(f, GH_ERR_FETCH_TOO_LARGE, "");
    if (code == CURLE_OPERATION_TIMEDOUT)
        return fail(f, GH_ERR_FETCH_TIMEOUT, "");
    if (code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_CACERT_BADFILE ||
        code == CURLE_SSL_CONNECT_ERROR)
        return fail(f, GH_ERR_FETCH_TLS, curl_easy_strerror(code));
    if (code != CURLE_OK)
        return fail(f, GH_ERR_FETCH_FAILED, curl_easy_strerror(code));
    if (f->status >= 300 && f->status < 400) {
        char *target = NULL;
        curl_easy_getinfo(f->easy, CURLINFO_REDIRECT_URL, &target);
        if (target == NULL)
            return fail(f, GH_ERR_FETCH_STATUS, "a redirect without Location");
        f->redirect = strdup(target);
        return f->redirect != NULL ? 1 : GH_ERR_NOMEM;
    }
    if (f->status < 200 || f->status >= 300) {
        snprintf(detail, sizeof detail, "HTTP %ld", f->status);
        return fail(f, GH_ERR_FETCH_STATUS, detail);
    }
    if (f->body == NULL) { /* an empty 2xx answer */
        f->body = strdup("");
        if (f->body == NULL)
            return GH_ERR_NOMEM;
    }
    return GH_OK;
}

void gh_fetch_clear(struct gh_fetch *f)
{
    if (f->easy != NULL)
        curl_easy_cleanup(f->easy);
    free(f->url);
    free(f->body);
    free(f->redirect);
    curl_slist_free_all(f->resolve);
    memset(f, 0, sizeof *f);
}
