// SPDX-License-Identifier: Apache-2.0
/*
 * base64url with the strictness of SPEC §3. Decoding is table driven and branch-light because every
 * request decodes three segments of a token.
 */
#include "common/base64url.h"

#include <stdint.h>
#include <stdlib.h>

#include "common/error.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* One more than the value (1..64) for alphabet characters, 0 for every other byte. */
static const uint8_t decode_table[256] = {
    ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,  ['H'] = 8,
    ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
    ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
    ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
    ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['-'] = 63, ['_'] = 64,
};

/* 0..63, or a value above 63 (all bits set) for a byte outside the alphabet. */
#define VALUE(ch) ((uint32_t)decode_table[(ch)] - 1u)

int gh_b64url_decode(const char *in, size_t len, unsigned char *out, size_t *out_len)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t full = len / 4, rest = len % 4, o = 0;

    *out_len = 0;
    if (rest == 1) /* one character carries only 6 bits: never a whole byte */
        return GH_ERR_BASE64URL;
    for (size_t i = 0; i < full; i++, p += 4) {
        uint32_t a = VALUE(p[0]), b = VALUE(p[1]), c = VALUE(p[2]), d = VALUE(p[3]);
        if ((a | b | c | d) > 63)
            return GH_ERR_BASE64URL;
        uint32_t v = a << 18 | b << 12 | c << 6 | d;
        out[o++] = (unsigned char)(v >> 16);
        out[o++] = (unsigned char)(v >> 8);
        out[o++] = (unsigned char)v;
    }
    if (rest) {
        uint32_t a = VALUE(p[0]), b = VALUE(p[1]), c = rest == 3 ? VALUE(p[2]) : 0;
        if ((a | b | c) > 63)
            return GH_ERR_BASE64URL;
        uint32_t v = a << 18 | b << 12 | c << 6;
        /* The bits below the last whole byte must be zero, or two encodings mean the same bytes. */
        if (rest == 2 ? (v & 0xffff) : (v & 0xff))
            return GH_ERR_BASE64URL;
        out[o++] = (unsigned char)(v >> 16);
        if (rest == 3)
            out[o++] = (unsigned char)(v >> 8);
    }
    *out_len = o;
    return GH_OK;
}

void gh_b64url_encode(const unsigned char *in, size_t len, char *out)
{
    size_t i = 0, o = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
        out[o++] = alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
    }
    out[o] = '\0';
}

char *gh_b64url_encode_alloc(const unsigned char *in, size_t len)
{
    char *out = malloc(gh_b64url_encoded_len(len) + 1);
    if (out != NULL)
        gh_b64url_encode(in, len, out);
    return out;
}
