/*
 * Times and durations. Internally a time is int64 seconds since the Unix epoch, UTC.
 * Text forms: RFC 3339 ("2026-12-04T10:00:00Z") for users, OpenSSL's index.txt form
 * ("261204100000Z" or "20261204100000Z") for imports, and durations "30s 15m 1h 7d".
 */
#ifndef REVO_PKI_TIMEFMT_H
#define REVO_PKI_TIMEFMT_H

#include "pki/err.h"

#include <openssl/asn1.h>
#include <stdint.h>

/* "2026-12-04T10:00:00.123456Z" and a NUL */
#define REVO_TIME_STR_MAX 32

/**
 * Parse an RFC 3339 date-time: "YYYY-MM-DDTHH:MM:SS" then "Z" or "+HH:MM"/"-HH:MM";
 * 't'/' ' for 'T' and 'z' accepted, fractional seconds ignored. Errors: REVO_EINVAL.
 */
int revo_time_parse(const char *text, int64_t *out, revo_errmsg_t *em);

/** Format @t as "YYYY-MM-DDTHH:MM:SSZ" into @buf (REVO_TIME_STR_MAX bytes). Returns @buf. */
char *revo_time_format(int64_t t, char *buf);

/** Format microseconds since the epoch as "YYYY-MM-DDTHH:MM:SS.uuuuuuZ". Returns @buf. */
char *revo_time_format_us(int64_t t_us, char *buf);

/**
 * Parse an ASN.1 UTCTime/GeneralizedTime in OpenSSL's index.txt spelling, @n
 * characters at @p: "YYMMDDHHMMSSZ" (years 50-99 are 19xx) or "YYYYMMDDHHMMSSZ".
 * Errors: REVO_EINVAL.
 */
int revo_time_parse_asn1_text(const char *p, size_t n, int64_t *out);

/** Convert an ASN1_TIME. Errors: REVO_EINVAL. */
int revo_time_from_asn1(const ASN1_TIME *t, int64_t *out);

/**
 * Parse a duration: one or more <number><unit> with units s, m, h, d, w ("1h30m").
 * Must be positive. Errors: REVO_EINVAL.
 */
int revo_duration_parse(const char *text, int64_t *secs, revo_errmsg_t *em);

/** Seconds since the epoch for a UTC civil date-time; no range checks. */
int64_t revo_time_from_civil(int64_t y, int mon, int d, int h, int mi, int s);

/** Current time, seconds / microseconds since the epoch. */
int64_t revo_now(void);
int64_t revo_now_us(void);

#endif
