// SPDX-License-Identifier: Apache-2.0
/*
 * Trusted proxies and the client behind them (see forwarded.h for why they are needed and how
 * little is believed).
 */
#include "gateway/forwarded.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"

int gh_trusted_proxies_parse(const char *list, struct gh_trusted_proxies *out, char *why,
                             size_t cap)
{
    char item[72], reason[256]; /* a CIDR block is at most 64 bytes: store/validate.c */

    memset(out, 0, sizeof *out);
    if (why != NULL && cap > 0)
        why[0] = '\0';
    for (const char *p = list != NULL ? list : ""; *p != '\0';) {
        p += strspn(p, " ");
        size_t len = strcspn(p, ",");
        size_t end = len;
        while (end > 0 && p[end - 1] == ' ')
            end--;
        if (end == 0 || end >= sizeof item) {
            snprintf(why, cap, "an entry of the list is %s",
                     end == 0 ? "empty" : "too long for a CIDR block");
            return GH_ERR_INVALID_ARG;
        }
        if (out->n == GH_TRUSTED_PROXIES_MAX) {
            snprintf(why, cap, "at most %d CIDR blocks", GH_TRUSTED_PROXIES_MAX);
            return GH_ERR_INVALID_ARG;
        }
        memcpy(item, p, end);
        item[end] = '\0';
        if (gh_cidr_parse(item, &out->cidrs[out->n], reason, sizeof reason) != GH_OK) {
            snprintf(why, cap, "%s", reason);
            return GH_ERR_INVALID_ARG;
        }
        out->n++;
        p += len;
        if (*p == ',' && *++p == '\0') {
            snprintf(why, cap, "an entry of the list is empty");
            return GH_ERR_INVALID_ARG;
        }
    }
    return GH_OK;
}

int gh_trusted_proxies_contains(const struct gh_trusted_proxies *t, int family, const uint8_t *addr)
{
    for (size_t i = 0; t != NULL && i < t->n; i++)
        if (gh_cidr_contains(&t->cidrs[i], family, addr))
            return 1;
    return 0;
}

/* One X-Forwarded-For entry as an address: IPv4, IPv6, or IPv6 in brackets (with an optional
 * port after them, which some proxies add); 0 when it is none of those. */
static int parse_entry(const char *s, size_t len, int *family, uint8_t addr[16])
{
    char text[INET6_ADDRSTRLEN + 1];

    while (len > 0 && (s[0] == ' ' || s[0] == '\t'))
        s++, len--;
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len > 2 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL)
            return 0;
        len = (size_t)(close - s - 1);
        s++;
    }
    if (len == 0 || len >= sizeof text)
        return 0;
    memcpy(text, s, len);
    text[len] = '\0';
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, text, addr) == 1) {
        *family = 4;
        return 1;
    }
    if (inet_pton(AF_INET6, text, addr) != 1)
        return 0;
    *family = 6;
    if (memcmp(addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) { /* IPv4-mapped: as IPv4 */
        memmove(addr, addr + 12, 4);
        memset(addr + 4, 0, 12);
        *family = 4;
    }
    return 1;
}

void gh_forwarded_client(const struct gh_trusted_proxies *t, int peer_family,
                         const uint8_t *peer_addr, const char *xff, size_t xff_len, int *family,
                         uint8_t addr[16])
{
    uint8_t entry[16];
    int entry_family;

    *family = peer_family;
    memset(addr, 0, 16);
    memcpy(addr, peer_addr, peer_family == 4 ? 4 : 16);
    if (xff == NULL || !gh_trusted_proxies_contains(t, peer_family, peer_addr))
        return;
    for (size_t end = xff_len; end > 0;) {
        size_t start = end;
        while (start > 0 && xff[start - 1] != ',')
            start--;
        if (!parse_entry(xff + start, end - start, &entry_family, entry))
            return; /* the client is the last hop we could read */
        *family = entry_family;
        memcpy(addr, entry, 16);
        if (!gh_trusted_proxies_contains(t, entry_family, entry))
            return;
        end = start > 0 ? start - 1 : 0;
    }
}
