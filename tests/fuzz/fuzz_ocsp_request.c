/*
 * libFuzzer target for OCSP request decoding (ocsp/request.c): the DER parser and the
 * GET path decoder the responder runs on network input. Invariants checked besides
 * memory safety: every decoded CertID lies inside the input, and a nonce is 1..128 octets.
 */
#include "ocsp/ocsp.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *base, size_t len, const revo_ocsp_request_t *r)
{
	if (r->n < 1 || r->n > 16)
		abort();
	for (size_t i = 0; i < r->n; i++) {
		const revo_ocsp_certid_t *id = &r->ids[i];
		if (id->der < base || id->der + id->der_len > base + len)
			abort();
		if (id->serial_ok && (id->serial.len < 1 || id->serial.len > REVO_SERIAL_MAX))
			abort();
	}
	if (r->has_nonce && (r->nonce_len < 1 || r->nonce_len > 128))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size ? size : 1);
	static revo_ocsp_request_t req;
	static uint8_t buf[16384];
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (revo_ocsp_request_parse(copy, size, 16, &req) == 0)
		check(copy, size, &req);
	if (revo_ocsp_request_from_path((const char *)copy, size, buf, sizeof(buf), 16, &req) == 0)
		check(buf, sizeof(buf), &req);
	free(copy);
	return 0;
}
