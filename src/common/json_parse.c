// SPDX-License-Identifier: Apache-2.0
/*
 * A strict JSON reader that builds Jansson values. Jansson's own reader spends about 85% of a
 * token's verification overhead lexing (it reads one character at a time through a stream
 * abstraction); this one walks the bytes once, validates exactly what RFC 8259 and SPEC §3 allow
 * (UTF-8, escapes, surrogate pairs, no NUL, number grammar, duplicates, depth), and only then hands
 * ready values to Jansson's constructors. Used through gh_json_parse_object (json.c).
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/json.h"

struct reader {
    const unsigned char *p, *end;
    int depth;
    int error; /* GH_ERR_JSON_* once something is wrong */
};

static json_t *read_value(struct reader *r);

static void skip_space(struct reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static json_t *fail(struct reader *r, int code)
{
    if (r->error == 0)
        r->error = code;
    return NULL;
}

static int hex4(const unsigned char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d = c >= '0' && c <= '9' ? c - '0' : (c | 32) >= 'a' && (c | 32) <= 'f' ? (c | 32) - 'a' + 10 : 16;
        if (d > 15)
            return 0;
        v = v << 4 | d;
    }
    *out = v;
    return 1;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0: no overlongs, surrogates or > U+10FFFF. */
static size_t utf8_length(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (n == 0 || (size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    }
    if ((n == 2 && c < 0xc2) || (n == 3 && c == 0xe0 && p[1] < 0xa0) || (n == 3 && c == 0xed && p[1] >= 0xa0) ||
        (n == 4 && c == 0xf0 && p[1] < 0x90) || (n == 4 && (c > 0xf4 || (c == 0xf4 && p[1] >= 0x90))))
        return 0;
    return n;
}

static size_t put_utf8(unsigned cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* One escape after the backslash at *pp; writes its UTF-8 into out; 0 when invalid. */
static size_t read_escape(const unsigned char **pp, const unsigned char *end, char *out)
{
    const unsigned char *p = *pp + 1;
    unsigned cp, low;
    if (p >= end)
        return 0;
    switch (*p) {
    case '"': case '\\': case '/':
        out[0] = (char)*p;
        break;
    case 'b': out[0] = '\b'; break;
    case 'f': out[0] = '\f'; break;
    case 'n': out[0] = '\n'; break;
    case 'r': out[0] = '\r'; break;
    case 't': out[0] = '\t'; break;
    case 'u':
        if (end - p < 5 || !hex4(p + 1, &cp))
            return 0;
        p += 4;
        if (cp >= 0xdc00 && cp <= 0xdfff)
            return 0; /* a low surrogate alone */
        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (end - p < 7 || p[1] != '\\' || p[2] != 'u' || !hex4(p + 3, &low) || low < 0xdc00 || low > 0xdfff)
                return 0;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
            p += 6;
        }
        if (cp == 0)
            return 0; /* NUL would cut C strings short: never accepted */
        *pp = p + 1;
        return put_utf8(cp, out);
    default:
        return 0;
    }
    *pp = p + 1;
    return 1;
}

/* A string at r->p (on the opening quote): its decoded bytes in *out (malloc'd when escapes or long). */
static int read_string(struct reader *r, char *stack, size_t cap, char **out, size_t *len)
{
    const unsigned char *start = ++r->p, *p = start;
    int escapes = 0;

    while (p < r->end && *p != '"') { /* first pass: validate and measure */
        if (*p >= 0x20 && *p < 0x80 && *p != '\\') { /* plain ASCII, nearly every byte of a token */
            p++;
            continue;
        }
        if (*p < 0x20)
            return 0;
        if (*p == '\\') {
            char tmp[4];
            if (read_escape(&p, r->end, tmp) == 0)
                return 0;
            escapes = 1;
            continue;
        }
        size_t n = utf8_length(p, r->end);
        if (n == 0)
            return 0;
        p += n;
    }
    if (p >= r->end)
        return 0;
    size_t raw = (size_t)(p - start);
    char *buf = raw < cap ? stack : malloc(raw + 1);
    if (buf == NULL)
        return 0;
    if (!escapes) {
        memcpy(buf, start, raw);
        *len = raw;
    } else { /* second pass: decode (never longer than the text) */
        size_t o = 0;
        for (const unsigned char *q = start; q < p;) {
            if (*q == '\\')
                o += read_escape(&q, p, buf + o);
            else
                buf[o++] = (char)*q++;
        }
        *len = o;
    }
    buf[*len] = '\0';
    *out = buf;
    r->p = p + 1;
    return 1;
}

static json_t *read_number(struct reader *r)
{
    const unsigned char *p = r->p, *start = p;
    int real = 0;
    if (p < r->end && *p == '-')
        p++;
    if (p < r->end && *p == '0')
        p++;
    else if (p < r->end && *p >= '1' && *p <= '9')
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
    else
        return fail(r, GH_ERR_JSON_SYNTAX);
    if (p < r->end && *p == '.') {
        real = 1;
        if (++p >= r->end || *p < '0' || *p > '9')
            return fail(r, GH_ERR_JSON_SYNTAX);
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < r->end && (*p == 'e' || *p == 'E')) {
        real = 1;
        if (++p < r->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= r->end || *p < '0' || *p > '9')
            return fail(r, GH_ERR_JSON_SYNTAX);
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
    }
    char text[64];
    if ((size_t)(p - start) >= sizeof text)
        return fail(r, GH_ERR_JSON_SYNTAX); /* no sane claim needs more digits */
    memcpy(text, start, (size_t)(p - start));
    text[p - start] = '\0';
    r->p = p;
    errno = 0;
    if (!real) {
        long long v = strtoll(text, NULL, 10);
        return errno == ERANGE ? fail(r, GH_ERR_JSON_SYNTAX) : json_integer(v); /* as Jansson: no silent rounding */
    }
    double v = strtod(text, NULL);
    return errno == ERANGE && (v > 1 || v < -1) ? fail(r, GH_ERR_JSON_SYNTAX) : json_real(v);
}

static json_t *read_object(struct reader *r)
{
    json_t *obj = json_object();
    char stack[128], *key = NULL;
    size_t len;

    r->p++; /* '{' */
    skip_space(r);
    if (r->p < r->end && *r->p == '}') {
        r->p++;
        return obj;
    }
    for (;;) {
        skip_space(r);
        if (r->p >= r->end || *r->p != '"' || !read_string(r, stack, sizeof stack, &key, &len))
            break;
        if (json_object_get(obj, key) != NULL) { /* the same name twice: which one would count? */
            fail(r, GH_ERR_JSON_DUPLICATE);
            break;
        }
        skip_space(r);
        json_t *value = NULL;
        if (r->p < r->end && *r->p == ':') {
            r->p++;
            value = read_value(r);
        }
        if (value == NULL || json_object_set_new_nocheck(obj, key, value) != 0)
            break;
        if (key != stack)
            free(key);
        key = NULL;
        skip_space(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        if (r->p < r->end && *r->p == '}') {
            r->p++;
            return obj;
        }
        break;
    }
    if (key != stack)
        free(key);
    json_decref(obj);
    return fail(r, GH_ERR_JSON_SYNTAX);
}

static json_t *read_array(struct reader *r)
{
    json_t *array = json_array();

    r->p++; /* '[' */
    skip_space(r);
    if (r->p < r->end && *r->p == ']') {
        r->p++;
        return array;
    }
    for (;;) {
        json_t *value = read_value(r);
        if (value == NULL || json_array_append_new(array, value) != 0)
            break;
        skip_space(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        if (r->p < r->end && *r->p == ']') {
            r->p++;
            return array;
        }
        break;
    }
    json_decref(array);
    return fail(r, GH_ERR_JSON_SYNTAX);
}

static json_t *read_literal(struct reader *r, const char *word, json_t *value)
{
    size_t len = strlen(word);
    if ((size_t)(r->end - r->p) < len || memcmp(r->p, word, len) != 0)
        return fail(r, GH_ERR_JSON_SYNTAX);
    r->p += len;
    return value;
}

static json_t *read_value(struct reader *r)
{
    json_t *value;
    char stack[256], *text;
    size_t len;

    skip_space(r);
    if (r->p >= r->end)
        return fail(r, GH_ERR_JSON_SYNTAX);
    switch (*r->p) {
    case '{':
    case '[':
        if (++r->depth > GH_JSON_MAX_DEPTH)
            return fail(r, GH_ERR_JSON_DEPTH);
        value = *r->p == '{' ? read_object(r) : read_array(r);
        r->depth--;
        return value;
    case '"':
        if (!read_string(r, stack, sizeof stack, &text, &len))
            return fail(r, GH_ERR_JSON_SYNTAX);
        value = json_stringn_nocheck(text, len); /* validated UTF-8 without NUL */
        if (text != stack)
            free(text);
        return value;
    case 't':
        return read_literal(r, "true", json_true());
    case 'f':
        return read_literal(r, "false", json_false());
    case 'n':
        return read_literal(r, "null", json_null());
    default:
        return read_number(r);
    }
}

int gh_json_read(const void *buf, size_t len, json_t **out)
{
    struct reader r = {buf, (const unsigned char *)buf + len, 0, 0};
    json_t *value = read_value(&r);

    *out = NULL;
    if (value != NULL) {
        skip_space(&r);
        if (r.p != r.end) { /* nothing but whitespace may follow the value */
            json_decref(value);
            return GH_ERR_JSON_SYNTAX;
        }
        *out = value;
        return GH_OK;
    }
    return r.error != 0 ? r.error : GH_ERR_JSON_SYNTAX;
}
