/*
 * Time parsing and formatting without the C library's locale- and TZ-dependent
 * functions: civil <-> days conversion is Howard Hinnant's days_from_civil algorithm,
 * exact for the proleptic Gregorian calendar.
 */
#include "pki/timefmt.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t revo_time_from_civil(int64_t y, int mon, int d, int h, int mi, int s)
{
	y -= mon <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const int64_t yoe = y - era * 400;
	const int64_t doy = (153 * (mon + (mon > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	const int64_t days = era * 146097 + doe - 719468;
	return days * 86400 + h * 3600 + mi * 60 + s;
}

static void civil_from_time(int64_t t, int64_t *y, int *mon, int *d, int *h, int *mi, int *s)
{
	int64_t days = t / 86400, rem = t % 86400;
	if (rem < 0) {
		rem += 86400;
		days--;
	}
	*h = (int)(rem / 3600);
	*mi = (int)(rem % 3600 / 60);
	*s = (int)(rem % 60);
	days += 719468;
	const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
	const int64_t doe = days - era * 146097;
	const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	const int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*mon = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*mon <= 2);
}

static int days_in_month(int64_t y, int m)
{
	static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return dm[m - 1];
}

static int digits(const char *p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)p[i]))
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	*out = v;
	return 0;
}

static int valid_civil(int64_t y, int mon, int d, int h, int mi, int s)
{
	return y >= 1 && y <= 9999 && mon >= 1 && mon <= 12 && d >= 1 &&
	       d <= days_in_month(y, mon) && h >= 0 && h <= 23 && mi >= 0 && mi <= 59 && s >= 0 &&
	       s <= 60;
}

int revo_time_parse(const char *text, int64_t *out, revo_errmsg_t *em)
{
	int y, mon, d, h, mi, s;
	const char *p = text;
	size_t n = strlen(p);

	if (n < 20 || digits(p, 4, &y) || p[4] != '-' || digits(p + 5, 2, &mon) || p[7] != '-' ||
	    digits(p + 8, 2, &d) || (p[10] != 'T' && p[10] != 't' && p[10] != ' ') ||
	    digits(p + 11, 2, &h) || p[13] != ':' || digits(p + 14, 2, &mi) || p[16] != ':' ||
	    digits(p + 17, 2, &s))
		goto bad;
	p += 19;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			goto bad;
		while (isdigit((unsigned char)*p))
			p++;
	}
	int off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om;
		if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 ||
		    om > 59)
			goto bad;
		off = (oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
		p += 6;
	} else {
		goto bad;
	}
	if (*p != '\0' || !valid_civil(y, mon, d, h, mi, s))
		goto bad;
	if (s == 60)
		s = 59; /* a leap second: the CRL formats cannot say 60 either */
	*out = revo_time_from_civil(y, mon, d, h, mi, s) - off;
	return REVO_OK;
bad:
	return revo_err_set(em, REVO_EINVAL,
			    "time '%s' is not RFC 3339 (like 2026-12-04T10:00:00Z)", text);
}

char *revo_time_format(int64_t t, char *buf)
{
	int64_t y;
	int mon, d, h, mi, s;
	civil_from_time(t, &y, &mon, &d, &h, &mi, &s);
	snprintf(buf, REVO_TIME_STR_MAX, "%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long)y, mon, d,
		 h, mi, s);
	return buf;
}

char *revo_time_format_us(int64_t t_us, char *buf)
{
	int64_t sec = t_us / 1000000, us = t_us % 1000000;
	if (us < 0) {
		us += 1000000;
		sec--;
	}
	int64_t y;
	int mon, d, h, mi, s;
	civil_from_time(sec, &y, &mon, &d, &h, &mi, &s);
	snprintf(buf, REVO_TIME_STR_MAX, "%04lld-%02d-%02dT%02d:%02d:%02d.%06lldZ", (long long)y,
		 mon, d, h, mi, s, (long long)us);
	return buf;
}

int revo_time_parse_asn1_text(const char *p, size_t n, int64_t *out)
{
	int y, mon, d, h, mi, s;
	size_t yl;
	if (n == 13)
		yl = 2;
	else if (n == 15)
		yl = 4;
	else
		return REVO_EINVAL;
	if (p[n - 1] != 'Z' || digits(p, (int)yl, &y) || digits(p + yl, 2, &mon) ||
	    digits(p + yl + 2, 2, &d) || digits(p + yl + 4, 2, &h) || digits(p + yl + 6, 2, &mi) ||
	    digits(p + yl + 8, 2, &s))
		return REVO_EINVAL;
	if (yl == 2)
		y += y >= 50 ? 1900 : 2000;
	if (!valid_civil(y, mon, d, h, mi, s))
		return REVO_EINVAL;
	*out = revo_time_from_civil(y, mon, d, h, mi, s == 60 ? 59 : s);
	return REVO_OK;
}

int revo_time_from_asn1(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;
	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return REVO_EINVAL;
	*out = revo_time_from_civil((int64_t)tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
				    tm.tm_hour, tm.tm_min, tm.tm_sec);
	return REVO_OK;
}

int revo_duration_parse(const char *text, int64_t *secs, revo_errmsg_t *em)
{
	const char *p = text;
	int64_t total = 0;
	if (*p == '\0')
		goto bad;
	while (*p) {
		if (!isdigit((unsigned char)*p))
			goto bad;
		int64_t v = 0;
		while (isdigit((unsigned char)*p)) {
			v = v * 10 + (*p - '0');
			if (v > (int64_t)1 << 40)
				goto bad;
			p++;
		}
		int64_t unit;
		switch (*p) {
		case 's': unit = 1; break;
		case 'm': unit = 60; break;
		case 'h': unit = 3600; break;
		case 'd': unit = 86400; break;
		case 'w': unit = 7 * 86400; break;
		default: goto bad;
		}
		p++;
		total += v * unit;
		if (total > (int64_t)1 << 40)
			goto bad;
	}
	if (total <= 0)
		goto bad;
	*secs = total;
	return REVO_OK;
bad:
	return revo_err_set(em, REVO_EINVAL,
			    "duration '%s' is not valid (like 30s, 15m, 1h, 7d or 1h30m)", text);
}

int64_t revo_now(void)
{
	return (int64_t)time(NULL);
}

int64_t revo_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
