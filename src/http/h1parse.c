// SPDX-License-Identifier: Apache-2.0
/*
 * RFC 9112 strictly, both ways: the request heads clients send the front end, the response heads
 * upstreams send the gateway, and chunked bodies from either. Lines end in CRLF only, field names
 * are tokens, values hold no control bytes but HTAB, no obsolete line folding, chunk sizes are hex
 * that fits 60 bits; extension and trailer lines are skipped, each capped and the trailers capped
 * together. One file for all of it so the request and the response side share one notion of a
 * token, a field and a line end: two notions are how a smuggled request slips between them.
 */
#include "http/h1parse.h"

#include <string.h>

#define MAX_LINE     8192  /* a chunk extension or trailer line */
#define MAX_TRAILERS 16384 /* all trailer lines of a body together, CRLFs included */

static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* VCHAR, obs-text, SP and HTAB */
static int is_field_char(unsigned char c)
{
    return c == '\t' || c == ' ' || (c >= 0x21 && c != 0x7f);
}

static int is_hex(unsigned char c, unsigned *value)
{
    if (c >= '0' && c <= '9')
        *value = c - '0';
    else if (c >= 'a' && c <= 'f')
        *value = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
        *value = c - 'A' + 10;
    else
        return 0;
    return 1;
}

/* The line starting at `p` without its CRLF: its end, NULL when no CRLF is there yet, and
 * `*bad` when a lone CR or LF or a NUL comes first. */
static const char *line_end(const char *p, const char *end, int *bad)
{
    for (; p < end; p++) {
        if (*p == '\r') {
            if (p + 1 == end)
                return NULL;
            if (p[1] != '\n')
                break;
            return p;
        }
        if (*p == '\n' || *p == '\0')
            break;
    }
    *bad = p < end;
    return NULL;
}

static int parse_status_line(const char *p, const char *eol, struct gh_h1_response *out)
{
    if (eol - p < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ')
        return -1;
    out->minor_version = p[7] - '0';
    if (p[9] < '1' || p[9] > '9' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9')
        return -1;
    out->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    p += 12;
    if (p < eol && *p++ != ' ')
        return -1;
    out->reason = p;
    out->reason_len = (size_t)(eol - p);
    for (; p < eol; p++)
        if (!is_field_char((unsigned char)*p))
            return -1;
    return 0;
}

static int parse_field(const char *p, const char *eol, struct gh_h1_header *h)
{
    const char *name = p;

    while (p < eol && is_tchar((unsigned char)*p))
        p++;
    if (p == name || p == eol || *p != ':')
        return -1; /* also refuses "name :" and a folded line starting with a space */
    h->name = name;
    h->name_len = (size_t)(p - name);
    p++;
    while (p < eol && (*p == ' ' || *p == '\t'))
        p++;
    const char *value_end = eol;
    while (value_end > p && (value_end[-1] == ' ' || value_end[-1] == '\t'))
        value_end--;
    for (const char *q = p; q < value_end; q++)
        if (!is_field_char((unsigned char)*q))
            return -1;
    h->value = p;
    h->value_len = (size_t)(value_end - p);
    return 0;
}

long gh_h1_parse_response(const char *buf, size_t len, struct gh_h1_response *out)
{
    const char *p = buf, *end, *eol;
    int bad = 0;

    out->n_headers = 0;
    if (len == 0)
        return 0; /* and an empty buffer may have no bytes at all (NULL) */
    end = buf + len;
    if ((eol = line_end(p, end, &bad)) == NULL)
        return bad ? -1 : 0;
    if (parse_status_line(p, eol, out) != 0)
        return -1;
    for (p = eol + 2;; p = eol + 2) {
        if ((eol = line_end(p, end, &bad)) == NULL)
            return bad ? -1 : 0;
        if (eol == p)
            return (long)(eol + 2 - buf);
        if (out->n_headers == sizeof out->headers / sizeof out->headers[0] ||
            parse_field(p, eol, &out->headers[out->n_headers]) != 0)
            return -1;
        out->n_headers++;
    }
}

/* ---- chunked ---- */

enum {
    CH_SIZE,     /* hex digits */
    CH_SIZE_END, /* spaces or tabs before ';' or CR */
    CH_EXT,      /* a chunk extension, skipped up to CR */
    CH_SIZE_LF,  /* the LF of the size line */
    CH_DATA,     /* `left` data bytes */
    CH_DATA_CR,  /* the CRLF after the data */
    CH_DATA_LF,
    CH_TRAILER, /* start of a trailer line, or of the final empty line */
    CH_TRAILER_LINE,
    CH_TRAILER_LF,
    CH_FINAL_LF,
    CH_DONE,
};

int gh_h1_chunked_decode(struct gh_h1_chunked *c, char *data, size_t *len, size_t *consumed)
{
    size_t in = 0, out = 0, n = *len;
    unsigned digit;

    while (in < n && c->state != CH_DONE) {
        unsigned char ch = (unsigned char)data[in];
        switch (c->state) {
        case CH_SIZE:
            if (is_hex(ch, &digit)) {
                if (++c->size_digits > 15)
                    return -1; /* no chunk is that large; an overflow is an attack */
                c->left = c->left * 16 + digit;
                in++;
                break;
            }
            if (c->size_digits == 0)
                return -1;
            c->state = CH_SIZE_END;
            break;
        case CH_SIZE_END:
            if (ch == ' ' || ch == '\t') {
                in++;
            } else if (ch == ';') {
                c->state = CH_EXT;
                c->line_len = 0;
                in++;
            } else if (ch == '\r') {
                c->state = CH_SIZE_LF;
                in++;
            } else {
                return -1;
            }
            break;
        case CH_EXT:
            if (ch == '\r') {
                c->state = CH_SIZE_LF;
            } else if (ch == '\n' || ch == '\0' || ++c->line_len > MAX_LINE) {
                return -1;
            }
            in++;
            break;
        case CH_SIZE_LF:
            if (ch != '\n')
                return -1;
            in++;
            c->state = c->left == 0 ? CH_TRAILER : CH_DATA;
            break;
        case CH_DATA: {
            size_t take = n - in < c->left ? n - in : (size_t)c->left;
            memmove(data + out, data + in, take);
            in += take;
            out += take;
            c->left -= take;
            if (c->left == 0)
                c->state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            if (ch != '\r')
                return -1;
            in++;
            c->state = CH_DATA_LF;
            break;
        case CH_DATA_LF:
            if (ch != '\n')
                return -1;
            in++;
            c->state = CH_SIZE;
            c->size_digits = 0;
            break;
        case CH_TRAILER:
            if (ch == '\r') {
                c->state = CH_FINAL_LF;
            } else if (is_tchar(ch) && ++c->trailer_bytes <= MAX_TRAILERS) {
                c->state = CH_TRAILER_LINE;
                c->line_len = 1;
            } else {
                return -1;
            }
            in++;
            break;
        case CH_TRAILER_LINE:
            if (++c->trailer_bytes > MAX_TRAILERS)
                return -1; /* many short lines add up to as much memory as one long line */
            if (ch == '\r') {
                c->state = CH_TRAILER_LF;
            } else if (ch == '\n' || ch == '\0' || ++c->line_len > MAX_LINE) {
                return -1;
            }
            in++;
            break;
        case CH_TRAILER_LF:
            if (ch != '\n' || ++c->trailer_bytes > MAX_TRAILERS)
                return -1;
            in++;
            c->state = CH_TRAILER;
            break;
        case CH_FINAL_LF:
            if (ch != '\n')
                return -1;
            in++;
            c->state = CH_DONE;
            break;
        }
    }
    *len = out;
    *consumed = in;
    return c->state == CH_DONE ? 1 : 0;
}
