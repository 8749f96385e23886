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

#include <arpa/inet.h>
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

/* ---- requests ---- */

#define MAX_EMPTY_LINES 2 /* CRLFs before a request line (RFC 9112 2.2: ignore at least one) */
#define MAX_LENGTH      ((int64_t)1 << 62) /* no body is larger; more is an overflow attempt */

enum { MORE = 0, DONE = 1 }; /* what a step of the request parser returns, or -(enum gh_h1_error) */

static const struct {
    const char *name, *message;
    int status;
} h1_errors[GH_H1_ERROR_COUNT] = {
    [GH_H1_INCOMPLETE] = {"incomplete", "The request head is not complete.", 400},
    [GH_H1_BAD_REQUEST_LINE] = {"bad_request_line",
                                "The request line is not: method, target and HTTP/1.x, each "
                                "separated by one space, ending with CRLF.",
                                400},
    [GH_H1_BAD_VERSION] = {"bad_version", "Only HTTP/1.0 and HTTP/1.1 are spoken here.", 505},
    [GH_H1_BAD_TARGET] = {"bad_target", "The request target is not valid for this method.", 400},
    [GH_H1_TARGET_TOO_LONG] = {"target_too_long", "The request target is too long.", 414},
    [GH_H1_BAD_LINE_END] = {"bad_line_end",
                            "A line of the request head does not end with CRLF, or holds a NUL.",
                            400},
    [GH_H1_BAD_FIELD] = {"bad_field", "A header field is malformed.", 400},
    [GH_H1_OBS_FOLD] = {"obs_fold", "Header fields may not be folded over several lines.", 400},
    [GH_H1_HEAD_TOO_LARGE] = {"head_too_large", "The request head is too large.", 431},
    [GH_H1_TOO_MANY_HEADERS] = {"too_many_headers", "The request has too many header fields.", 431},
    [GH_H1_NO_HOST] = {"no_host", "An HTTP/1.1 request needs a Host header field.", 400},
    [GH_H1_MANY_HOSTS] = {"many_hosts", "The request has more than one Host header field.", 400},
    [GH_H1_BAD_HOST] = {"bad_host", "The Host header field is not a host and optional port.", 400},
    [GH_H1_BAD_LENGTH] = {"bad_length",
                          "Content-Length must appear once, as a plain decimal number.", 400},
    [GH_H1_LENGTH_AND_CHUNKED] = {"length_and_chunked",
                                  "Content-Length and Transfer-Encoding may not be combined.", 400},
    [GH_H1_BAD_CODING] = {"bad_coding", "The only transfer coding accepted is chunked, once.", 501},
};

/* One parse of a request head; `end` stops at the head size limit. */
struct req_parse {
    const char *buf, *p, *end;
    const struct gh_h1_limits *limits;
    struct gh_h1_request *out;
    int status; /* when an error is answered with another status than its usual one */
    int hosts, lengths, codings, close, keep_alive;
};

const char *gh_h1_error_message(enum gh_h1_error e)
{
    return (unsigned)e < GH_H1_ERROR_COUNT ? h1_errors[e].message : "The request is malformed.";
}

const char *gh_h1_error_name(enum gh_h1_error e)
{
    return (unsigned)e < GH_H1_ERROR_COUNT ? h1_errors[e].name : "unknown";
}

void gh_h1_lower(char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] >= 'A' && s[i] <= 'Z')
            s[i] = (char)(s[i] - 'A' + 'a');
}

/* `s` is the lower-case ASCII literal `lit`, ignoring case. */
static int ieq(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);

    if (len != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
        if (c != lit[i])
            return 0;
    }
    return 1;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* A CR, LF or NUL met inside the request line, before the line may end: more input needed for a
 * CR that is the last byte, a premature end for CRLF, a bad line end for the rest. */
static int line_break(const char *p, const char *end)
{
    if (*p == '\r' && p + 1 == end)
        return MORE;
    if (*p == '\r' && p[1] == '\n')
        return -GH_H1_BAD_REQUEST_LINE;
    return -GH_H1_BAD_LINE_END;
}

/* reg-name's bytes (RFC 3986 3.2.2) besides pct-encoded: unreserved and sub-delims */
static int is_reg_name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("-._~!$&'()*+,;=", c) != NULL);
}

/* An IP-literal's inside: an IPv6 address. IPvFuture and zone identifiers are refused; no client
 * has a reason to send them to a gateway. */
static int is_ipv6(const char *p, size_t len)
{
    char text[INET6_ADDRSTRLEN];
    unsigned char addr[16];

    if (len == 0 || len >= sizeof text)
        return 0;
    memcpy(text, p, len);
    text[len] = '\0';
    return inet_pton(AF_INET6, text, addr) == 1;
}

/* The end of the reg-name or IP-literal at `p`, or NULL when there is none. */
static const char *host_end(const char *p, const char *end)
{
    const char *start = p;
    unsigned digit;

    if (p < end && *p == '[') {
        const char *close = memchr(p, ']', (size_t)(end - p));
        return close != NULL && is_ipv6(p + 1, (size_t)(close - p - 1)) ? close + 1 : NULL;
    }
    while (p < end) {
        if (*p == '%' && end - p >= 3 && is_hex((unsigned char)p[1], &digit) &&
            is_hex((unsigned char)p[2], &digit))
            p += 3;
        else if (is_reg_name_char((unsigned char)*p))
            p++;
        else
            break;
    }
    return p > start ? p : NULL;
}

/* uri-host [":" port] (the port required when `need_port`), as RFC 3986 has them, but stricter
 * in two places: the host is not empty and the port is 1 to 5 digits up to 65535 (an empty or
 * larger port names no service, and a host string that means nothing is not worth passing on). */
static int is_host_port(const char *p, size_t len, int need_port)
{
    const char *end = p + len;
    unsigned port = 0;
    size_t digits = 0;

    if (len == 0 || (p = host_end(p, end)) == NULL)
        return 0;
    if (p == end)
        return !need_port;
    if (*p++ != ':')
        return 0;
    for (; p < end && *p >= '0' && *p <= '9' && digits < 5; p++, digits++)
        port = port * 10 + (unsigned)(*p - '0');
    return p == end && digits > 0 && port <= 65535;
}

/* absolute-form: http or https, "://", an authority, then path-abempty and query, whose bytes
 * were checked already. userinfo is refused (RFC 9110 4.2.4), since '@' is no host byte. */
static int is_absolute_form(const char *t, size_t len)
{
    const char *end = t + len, *auth, *p;

    if (len > 7 && ieq(t, 7, "http://"))
        auth = t + 7;
    else if (len > 8 && ieq(t, 8, "https://"))
        auth = t + 8;
    else
        return 0;
    for (p = auth; p < end && *p != '/' && *p != '?'; p++)
        ;
    return is_host_port(auth, (size_t)(p - auth), 0);
}

/* RFC 9112 3.2: CONNECT takes the authority-form only, '*' is for OPTIONS only; anything else is
 * an origin-form (a path from the root) or an absolute-form. */
static int check_target_form(const struct gh_h1_request *r)
{
    const char *t = r->target;
    size_t len = r->target_len;

    if (r->method_len == 7 && memcmp(r->method, "CONNECT", 7) == 0)
        return is_host_port(t, len, 1) ? DONE : -GH_H1_BAD_TARGET;
    if (t[0] == '/')
        return DONE;
    if (len == 1 && t[0] == '*')
        return r->method_len == 7 && memcmp(r->method, "OPTIONS", 7) == 0 ? DONE
                                                                          : -GH_H1_BAD_TARGET;
    return is_absolute_form(t, len) ? DONE : -GH_H1_BAD_TARGET;
}

/* Up to MAX_EMPTY_LINES CRLFs a client may leave before the request line (after a body it
 * framed one CRLF too long); a bare LF is no empty line. */
static int skip_empty_lines(struct req_parse *st)
{
    for (int i = 0; i < MAX_EMPTY_LINES && st->p < st->end && *st->p == '\r'; i++) {
        if (st->p + 1 == st->end)
            return MORE;
        if (st->p[1] != '\n')
            return -GH_H1_BAD_LINE_END;
        st->p += 2;
    }
    return DONE;
}

static int read_method(struct req_parse *st)
{
    const char *p = st->p;

    while (p < st->end && is_tchar((unsigned char)*p))
        p++;
    if (p == st->end)
        return MORE;
    if (*p == '\r' || *p == '\n' || *p == '\0')
        return line_break(p, st->end);
    if (*p != ' ' || p == st->p)
        return -GH_H1_BAD_REQUEST_LINE;
    st->out->method = st->p;
    st->out->method_len = (size_t)(p - st->p);
    st->p = p + 1;
    return DONE;
}

/* Visible ASCII but '#' (a fragment is never sent); refused as too long as soon as it is. */
static int read_target(struct req_parse *st)
{
    const char *p = st->p;
    size_t max = st->limits->target_bytes;

    for (; p < st->end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c > 0x20 && c < 0x7f && c != '#') {
            if ((size_t)(p - st->p) >= max)
                return -GH_H1_TARGET_TOO_LONG;
            continue;
        }
        if (c == ' ')
            break;
        if (c == '\r' || c == '\n' || c == '\0')
            return line_break(p, st->end);
        return -GH_H1_BAD_TARGET; /* CTLs, DEL, obs-text, HTAB, '#' */
    }
    if (p == st->end)
        return MORE;
    if (p == st->p)
        return -GH_H1_BAD_REQUEST_LINE; /* two spaces after the method */
    st->out->target = st->p;
    st->out->target_len = (size_t)(p - st->p);
    st->p = p + 1;
    return check_target_form(st->out);
}

/* "HTTP/" 1*DIGIT [ "." 1*DIGIT ]: a version, if not one spoken here (505, not 400). */
static int is_other_version(const char *p, size_t len)
{
    size_t i = 5, digits = 0;

    if (len < 6 || memcmp(p, "HTTP/", 5) != 0)
        return 0;
    for (; i < len && p[i] >= '0' && p[i] <= '9'; i++)
        digits++;
    if (digits == 0)
        return 0;
    if (i == len)
        return 1;
    if (p[i++] != '.' || i == len)
        return 0;
    for (; i < len && p[i] >= '0' && p[i] <= '9'; i++)
        ;
    return i == len;
}

static int read_version(struct req_parse *st)
{
    int bad = 0;
    const char *p = st->p, *eol = line_end(p, st->end, &bad);
    size_t len;

    if (eol == NULL)
        return bad ? -GH_H1_BAD_LINE_END : MORE;
    len = (size_t)(eol - p);
    if (len == 8 && memcmp(p, "HTTP/1.", 7) == 0 && (p[7] == '0' || p[7] == '1')) {
        st->out->minor_version = p[7] - '0';
        st->p = eol + 2;
        return DONE;
    }
    return is_other_version(p, len) ? -GH_H1_BAD_VERSION : -GH_H1_BAD_REQUEST_LINE;
}

/* Content-Length: 1*DIGIT (no sign, no list, no second field, even with the same value: two
 * parsers that resolve a repeat differently are a smuggling channel). */
static int take_length(struct req_parse *st, const struct gh_h1_header *h)
{
    int64_t n = 0;

    if (++st->lengths > 1 || h->value_len == 0)
        return -GH_H1_BAD_LENGTH;
    for (size_t i = 0; i < h->value_len; i++) {
        char c = h->value[i];
        if (c < '0' || c > '9' || n > (MAX_LENGTH - (c - '0')) / 10)
            return -GH_H1_BAD_LENGTH;
        n = n * 10 + (c - '0');
    }
    st->out->content_length = n;
    return DONE;
}

/* A transfer-coding list element: a token, then parameters for any coding but chunked (which
 * has none). 1 for chunked, 0 for another coding, -1 when malformed. */
static int coding_element(const char *p, const char *end)
{
    const char *name = p;

    while (p < end && is_tchar((unsigned char)*p))
        p++;
    if (p == name)
        return -1;
    if (ieq(name, (size_t)(p - name), "chunked"))
        return p == end ? 1 : -1;
    while (p < end && is_ows(*p))
        p++;
    return p == end || *p == ';' ? 0 : -1;
}

/* Transfer-Encoding in HTTP/1.1: exactly "chunked" is accepted. RFC 9112 6.3 makes a request
 * whose last coding is not chunked a 400 (its length cannot be known), as are a malformed list,
 * chunked twice (6.1) and a second Transfer-Encoding field; a list ending in chunked after
 * codings we do not implement (gzip, chunked) is a 501 (6.1). HTTP/1.0 has no transfer codings
 * (a 1.0 message with one is framed wrongly by someone, RFC 9112 6.1): 400. */
static int take_coding(struct req_parse *st, const struct gh_h1_header *h)
{
    const char *p = h->value, *end = h->value + h->value_len;
    int chunked = 0, others = 0, last = -1;

    st->status = 400;
    if (st->out->minor_version == 0 || ++st->codings > 1 || p == end)
        return -GH_H1_BAD_CODING;
    for (;;) {
        const char *e = memchr(p, ',', (size_t)(end - p)), *a = p, *b;
        b = e != NULL ? e : end;
        while (a < b && is_ows(*a))
            a++;
        while (b > a && is_ows(b[-1]))
            b--;
        if ((last = coding_element(a, b)) < 0)
            return -GH_H1_BAD_CODING;
        chunked += last;
        others += !last;
        if (e == NULL)
            break;
        p = e + 1;
    }
    if (chunked != 1 || last != 1)
        return -GH_H1_BAD_CODING;
    if (others > 0) {
        st->status = 501;
        return -GH_H1_BAD_CODING;
    }
    st->status = 0;
    st->out->chunked = 1;
    return DONE;
}

/* Connection: a comma list whose close and keep-alive options are ours to read. */
static void take_connection(struct req_parse *st, const struct gh_h1_header *h)
{
    const char *p = h->value, *end = h->value + h->value_len;

    while (p < end) {
        const char *e = memchr(p, ',', (size_t)(end - p)), *a = p, *b;
        b = e != NULL ? e : end;
        while (a < b && is_ows(*a))
            a++;
        while (b > a && is_ows(b[-1]))
            b--;
        if (ieq(a, (size_t)(b - a), "close"))
            st->close = 1;
        else if (ieq(a, (size_t)(b - a), "keep-alive"))
            st->keep_alive = 1;
        p = e != NULL ? e + 1 : end;
    }
}

/* What the fields the parser understands say; a later field never undoes an earlier one. */
static int take_field(struct req_parse *st, const struct gh_h1_header *h)
{
    struct gh_h1_request *out = st->out;
    int r = DONE;

    if (ieq(h->name, h->name_len, "host")) {
        if (++st->hosts > 1)
            return -GH_H1_MANY_HOSTS;
        /* RFC 9112 3.2: empty when the target has no authority */
        if (h->value_len > 0 && !is_host_port(h->value, h->value_len, 0))
            return -GH_H1_BAD_HOST;
        out->host = h->value;
        out->host_len = h->value_len;
    } else if (ieq(h->name, h->name_len, "content-length")) {
        r = take_length(st, h);
    } else if (ieq(h->name, h->name_len, "transfer-encoding")) {
        r = take_coding(st, h);
    } else if (ieq(h->name, h->name_len, "expect")) {
        /* RFC 9110 10.1.1: a 1.0 client's 100-continue is ignored; it would not expect a 100 */
        if (ieq(h->value, h->value_len, "100-continue"))
            out->expect_continue = out->minor_version == 1;
        else
            out->expect_other = 1;
    } else if (ieq(h->name, h->name_len, "connection")) {
        take_connection(st, h);
    } else if (ieq(h->name, h->name_len, "upgrade")) {
        out->upgrade = 1;
    }
    if (r == DONE && st->lengths > 0 && st->codings > 0)
        return -GH_H1_LENGTH_AND_CHUNKED; /* RFC 9112 6.1: a smuggling attempt, not a choice */
    return r;
}

static int read_fields(struct req_parse *st)
{
    struct gh_h1_request *out = st->out;
    size_t max =
        st->limits->header_count < GH_H1_MAX_HEADERS ? st->limits->header_count : GH_H1_MAX_HEADERS;

    for (;;) {
        int bad = 0, r;
        const char *p = st->p, *eol;
        if (p == st->end)
            return MORE;
        if (*p == ' ' || *p == '\t')
            return -GH_H1_OBS_FOLD; /* or whitespace before the first field: both 400 */
        if ((eol = line_end(p, st->end, &bad)) == NULL)
            return bad ? -GH_H1_BAD_LINE_END : MORE;
        if (eol == p) {
            st->p = eol + 2;
            return DONE;
        }
        if (out->n_headers == max)
            return -GH_H1_TOO_MANY_HEADERS;
        if (parse_field(p, eol, &out->headers[out->n_headers]) != 0)
            return -GH_H1_BAD_FIELD;
        if ((r = take_field(st, &out->headers[out->n_headers++])) < 0)
            return r;
        st->p = eol + 2;
    }
}

static long parse_head(struct req_parse *st)
{
    int r;

    if ((r = skip_empty_lines(st)) != DONE || (r = read_method(st)) != DONE ||
        (r = read_target(st)) != DONE || (r = read_version(st)) != DONE ||
        (r = read_fields(st)) != DONE)
        return r;
    if (st->out->minor_version == 1 && st->hosts == 0)
        return -GH_H1_NO_HOST;
    st->out->keep_alive = !st->close && (st->out->minor_version == 1 || st->keep_alive);
    return (long)(st->p - st->buf);
}

long gh_h1_parse_request(const char *buf, size_t len, const struct gh_h1_limits *limits,
                         struct gh_h1_request *out, int *status)
{
    struct req_parse st = {.buf = buf, .p = buf, .end = buf, .limits = limits, .out = out};
    long r;

    out->method = out->target = out->host = NULL;
    out->method_len = out->target_len = out->host_len = out->n_headers = 0;
    out->minor_version = out->chunked = out->keep_alive = out->upgrade = 0;
    out->expect_continue = out->expect_other = 0;
    out->content_length = -1;
    *status = 0;
    if (len == 0)
        return 0; /* and an empty buffer may have no bytes at all (NULL) */
    /* Only the first head_bytes bytes are read: the outcome is then the same however the bytes
     * arrive, and a head still incomplete there is too large, whatever follows. */
    st.end = buf + (len < limits->head_bytes ? len : limits->head_bytes);
    r = parse_head(&st);
    if (r == 0 && len > limits->head_bytes)
        r = -GH_H1_HEAD_TOO_LARGE;
    if (r < 0)
        *status = st.status != 0 ? st.status : h1_errors[-r].status;
    return r;
}
