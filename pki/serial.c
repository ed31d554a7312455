/*
 * Serial number parsing and formatting. The magnitude form (no leading zeros) is what
 * the store's keys are made of, so two spellings of one number always meet.
 */
#include "pki/serial.h"

#include <ctype.h>
#include <string.h>

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int revo_serial_parse(const char *text, revo_serial_t *out, revo_errmsg_t *em)
{
	uint8_t nib[2 * REVO_SERIAL_MAX + 1];
	size_t n = 0;
	const char *p = text;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '-')
		return revo_err_set(em, REVO_EINVAL,
				    "serial '%s' is negative: serials are positive", text);
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		p += 2;
	bool seen = false;
	for (; *p; p++) {
		if (*p == ':')
			continue;
		if ((*p == ' ' || *p == '\t') && p[strspn(p, " \t")] == '\0')
			break;
		int v = hexval((unsigned char)*p);
		if (v < 0)
			return revo_err_set(em, REVO_EINVAL, "serial '%s' is not hexadecimal",
					    text);
		seen = true;
		if (n == 0 && v == 0)
			continue; /* leading zero nibble */
		if (n >= 2 * REVO_SERIAL_MAX)
			return revo_err_set(em, REVO_EINVAL, "serial '%s' is longer than %d octets",
					    text, REVO_SERIAL_MAX);
		nib[n++] = (uint8_t)v;
	}
	if (!seen)
		return revo_err_set(em, REVO_EINVAL, "serial '%s' is empty", text);
	if (n == 0)
		return revo_err_set(em, REVO_EINVAL, "serial '%s' is zero: serials are positive",
				    text);
	memset(out, 0, sizeof(*out));
	out->len = (uint8_t)((n + 1) / 2);
	size_t i = 0, o = 0;
	if (n % 2) {
		out->mag[o++] = nib[i++];
	}
	for (; i < n; i += 2)
		out->mag[o++] = (uint8_t)(nib[i] << 4 | nib[i + 1]);
	return REVO_OK;
}

int revo_serial_from_bytes(const uint8_t *p, size_t n, revo_serial_t *out, revo_errmsg_t *em)
{
	while (n > 0 && *p == 0) {
		p++;
		n--;
	}
	if (n == 0)
		return revo_err_set(em, REVO_EINVAL, "serial is zero: serials are positive");
	if (n > REVO_SERIAL_MAX)
		return revo_err_set(em, REVO_EINVAL, "serial is longer than %d octets (%zu)",
				    REVO_SERIAL_MAX, n);
	memset(out, 0, sizeof(*out));
	out->len = (uint8_t)n;
	memcpy(out->mag, p, n);
	return REVO_OK;
}

int revo_serial_from_asn1(const ASN1_INTEGER *ai, revo_serial_t *out, revo_errmsg_t *em)
{
	if (ai == NULL)
		return revo_err_set(em, REVO_EINVAL, "serial is missing");
	if (ASN1_STRING_type(ai) == V_ASN1_NEG_INTEGER)
		return revo_err_set(em, REVO_EINVAL, "serial is negative: serials are positive");
	return revo_serial_from_bytes(ASN1_STRING_get0_data(ai), (size_t)ASN1_STRING_length(ai),
				      out, em);
}

char *revo_serial_format(const revo_serial_t *s, char *buf)
{
	static const char hx[] = "0123456789ABCDEF";
	size_t o = 0;
	for (size_t i = 0; i < s->len && i < REVO_SERIAL_MAX; i++) {
		buf[o++] = hx[s->mag[i] >> 4];
		buf[o++] = hx[s->mag[i] & 15];
	}
	buf[o] = '\0';
	return buf;
}

int revo_serial_cmp(const revo_serial_t *a, const revo_serial_t *b)
{
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	return memcmp(a->mag, b->mag, a->len);
}
