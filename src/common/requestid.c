// SPDX-License-Identifier: Apache-2.0
/* Request ids of the gateway and the admin API: see requestid.h. */
#include "common/requestid.h"

#include <stdint.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

int gh_request_id_is_sane(const char *s, size_t len)
{
    if (s == NULL || len == 0 || len > GH_REQUEST_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* 16 random bytes from a per-thread batch: RAND_bytes costs a getpid() system call per call (its
 * fork check), so one call serves 64 request ids. 0 when the generator fails. */
static int random_id_bytes(unsigned char out[16])
{
    static _Thread_local unsigned char batch[64 * 16];
    static _Thread_local size_t used = sizeof batch;

    if (used == sizeof batch) {
        if (RAND_bytes(batch, sizeof batch) != 1)
            return 0;
        used = 0;
    }
    memcpy(out, batch + used, 16);
    OPENSSL_cleanse(batch + used, 16); /* handed out once */
    used += 16;
    return 1;
}

void gh_request_id_make(const char *sent, size_t sent_len, const void *salt,
                        char out[GH_REQUEST_ID_MAX + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char random[16];

    if (gh_request_id_is_sane(sent, sent_len)) {
        memcpy(out, sent, sent_len);
        out[sent_len] = '\0';
        return;
    }
    if (!random_id_bytes(random)) {
        /* never expected; a time and an address still tell requests apart */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t a = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        uint64_t b = (uint64_t)(uintptr_t)salt;
        memcpy(random, &a, 8);
        memcpy(random + 8, &b, 8);
    }
    for (size_t i = 0; i < sizeof random; i++) {
        out[2 * i] = hex[random[i] >> 4];
        out[2 * i + 1] = hex[random[i] & 15];
    }
    out[2 * sizeof random] = '\0';
}
