// SPDX-License-Identifier: Apache-2.0
/*
 * The lookups behind error.h: the X-macro table expanded into arrays indexed by code, so the table
 * stays the only place where a code, its reason and its message are written.
 */
#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>

#define GH_ERROR_INDEX(code) ((code)-GH_ERR_FIRST_ - 1)
#define GH_ERROR_COUNT       (GH_ERR_LAST_ - GH_ERR_FIRST_ - 1)

static const struct {
    const char *name;
    const char *reason;
    const char *message;
} error_table[] = {
#define GH_X_ROW(name, reason, message) {#name, reason, message},
    GH_ERROR_TABLE(GH_X_ROW)
#undef GH_X_ROW
};

_Static_assert(sizeof error_table / sizeof error_table[0] == GH_ERROR_COUNT,
               "error table and enum disagree");

static int known(int code)
{
    return code > GH_ERR_FIRST_ && code < GH_ERR_LAST_;
}

const char *gh_error_reason(int code)
{
    if (code == GH_OK)
        return "ok";
    return known(code) ? error_table[GH_ERROR_INDEX(code)].reason : "internal";
}

const char *gh_error_message(int code)
{
    if (code == GH_OK)
        return "success";
    return known(code) ? error_table[GH_ERROR_INDEX(code)].message : "unknown error";
}

const char *gh_error_name(int code)
{
    if (code == GH_OK)
        return "OK";
    return known(code) ? error_table[GH_ERROR_INDEX(code)].name : "UNKNOWN";
}

void gh_error_format(char *error, size_t cap, const char *fmt, ...)
{
    va_list ap;

    if (error == NULL || cap == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(error, cap, fmt, ap);
    va_end(ap);
}
