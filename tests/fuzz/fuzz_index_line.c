/*
 * libFuzzer target for the OpenSSL index.txt line parser (store/import.c), the one
 * hand-written parser of untrusted files in the store. Besides memory safety (ASan,
 * UBSan) it checks what the store relies on: a parsed line has a valid serial, a known
 * reason that is not removeFromCRL, and no time after "now".
 */
#include "pki/reason.h"
#include "store/store.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const int64_t now = 1796378400; /* 2026-12-04T10:00:00Z */
	/* a copy of exactly @size octets, so ASan sees any read past the end */
	char *line = malloc(size ? size : 1);
	if (!line)
		return 0;
	memcpy(line, data, size);
	revo_index_line_t l;
	if (revo_index_parse_line(line, size, 1, now, &l, NULL) == 0) {
		if (l.cert.serial.len < 1 || l.cert.serial.len > REVO_SERIAL_MAX ||
		    l.cert.serial.mag[0] == 0)
			abort();
		if (l.revoked && (!revo_reason_valid(l.rev.reason) ||
				  l.rev.reason == REVO_REASON_REMOVE_FROM_CRL ||
				  l.rev.revoked_at > now || l.rev.invalidity > now))
			abort();
		if (strlen(l.cert.cn) > REVO_CN_MAX)
			abort();
	}
	free(line);
	return 0;
}
