/*
 * libFuzzer target for the responder's HTTP/1.x head parser (ocsp/http.c). Invariants:
 * a complete head lies within the input and within the limit, and the target and path
 * pointers stay inside it.
 */
#include "ocsp/ocsp_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	revo_http_req_t h;
	int rc = revo_http_parse(copy, size, 1024, &h);
	if (rc == 0) {
		if (h.head_len > size || h.head_len > 1024)
			abort();
		if (h.target < copy || h.target + h.target_len > copy + h.head_len)
			abort();
		if (h.path_len && (h.path < copy || h.path + h.path_len > copy + h.head_len) &&
		    !(h.path_len == 1 && h.path[0] == '/'))
			abort();
	}
	free(copy);
	return 0;
}
