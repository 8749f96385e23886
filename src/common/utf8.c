// SPDX-License-Identifier: Apache-2.0
#include "common/utf8.h"

#include <stdlib.h>
#include <string.h>

/* No overlong forms (C0, C1, E0 80..9F, F0 80..8F), no surrogates (ED A0..BF), nothing above
 * U+10FFFF (F4 90.., F5..FF): each is refused by strict readers, which then refuse the line. */
size_t gh_utf8_sequence(const unsigned char *s, size_t n)
{
    size_t need = s[0] < 0x80 ? 1 : s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    unsigned char lo = 0x80, hi = 0xbf; /* the range of the second byte */

    if (need == 1)
        return 1;
    if (s[0] == 0xe0)
        lo = 0xa0;
    else if (s[0] == 0xed)
        hi = 0x9f;
    else if (s[0] == 0xf0)
        lo = 0x90;
    else if (s[0] == 0xf4)
        hi = 0x8f;
    if (need == 0 || s[0] > 0xf4 || need > n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return need;
}

char *gh_utf8_scrub(const char *s, size_t len, size_t max)
{
    static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */
    const unsigned char *u = (const unsigned char *)s;
    size_t used = 0;
    char *out;

    len = len < max ? len : max;
    if ((out = malloc(len * 3 + 1)) == NULL) /* each byte grows to at most 3 */
        return NULL;
    for (size_t i = 0; i < len;) {
        size_t seq = gh_utf8_sequence(u + i, len - i);
        if (seq == 0 || u[i] == 0) { /* a NUL would end the copy early */
            memcpy(out + used, replacement, 3);
            used += 3;
            i++;
        } else {
            memcpy(out + used, s + i, seq);
            used += seq;
            i += seq;
        }
    }
    out[used] = '\0';
    return out;
}
