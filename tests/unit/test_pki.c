/*
 * Unit tests for pki/: serial, time, duration and reason parsing and formatting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "pki/reason.h"
#include "pki/serial.h"
#include "pki/timefmt.h"

static void serial_spellings_meet(void **state)
{
	(void)state;
	revo_serial_t a, b, c;
	char buf[REVO_SERIAL_HEX_MAX];
	assert_int_equal(revo_serial_parse("0x0a:1B", &a, NULL), 0);
	assert_int_equal(revo_serial_parse("A1b", &b, NULL), 0);
	assert_int_equal(revo_serial_parse("00:0A:1B", &c, NULL), 0);
	assert_int_equal(revo_serial_cmp(&a, &b), 0);
	assert_int_equal(revo_serial_cmp(&a, &c), 0);
	assert_string_equal(revo_serial_format(&a, buf), "0A1B");
	assert_int_equal(a.len, 2);
}

static void serial_bad_input_refused(void **state)
{
	(void)state;
	revo_serial_t s;
	revo_errmsg_t em = {{0}};
	assert_int_equal(revo_serial_parse("0", &s, &em), REVO_EINVAL);
	assert_non_null(strstr(em.msg, "zero"));
	assert_int_equal(revo_serial_parse("-5", &s, NULL), REVO_EINVAL);
	assert_int_equal(revo_serial_parse("", &s, NULL), REVO_EINVAL);
	assert_int_equal(revo_serial_parse("12g4", &s, NULL), REVO_EINVAL);
	/* 20 octets accepted, 21 refused */
	assert_int_equal(revo_serial_parse("7fffffffffffffffffffffffffffffffffffffff", &s, NULL),
			 0);
	assert_int_equal(s.len, 20);
	assert_int_equal(revo_serial_parse("01ffffffffffffffffffffffffffffffffffffffff", &s, NULL),
			 REVO_EINVAL);
}

static void serial_order_is_numeric(void **state)
{
	(void)state;
	revo_serial_t a, b;
	revo_serial_parse("ff", &a, NULL);
	revo_serial_parse("0100", &b, NULL);
	assert_true(revo_serial_cmp(&a, &b) < 0);
}

static void rfc3339_round_trip(void **state)
{
	(void)state;
	int64_t t;
	char buf[REVO_TIME_STR_MAX];
	assert_int_equal(revo_time_parse("2026-12-04T10:00:00Z", &t, NULL), 0);
	assert_int_equal(t, 1796378400);
	assert_string_equal(revo_time_format(t, buf), "2026-12-04T10:00:00Z");
	assert_int_equal(revo_time_parse("2026-12-04T11:00:00.5+01:00", &t, NULL), 0);
	assert_int_equal(t, 1796378400);
	assert_int_equal(revo_time_parse("1970-01-01T00:00:00Z", &t, NULL), 0);
	assert_int_equal(t, 0);
	assert_int_equal(revo_time_parse("2050-01-01T00:00:00Z", &t, NULL), 0);
	assert_string_equal(revo_time_format(t, buf), "2050-01-01T00:00:00Z");
	assert_string_equal(revo_time_format_us(1796378400123456LL, buf),
			    "2026-12-04T10:00:00.123456Z");
}

static void rfc3339_bad_input_refused(void **state)
{
	(void)state;
	int64_t t;
	const char *bad[] = {
	    "2026-12-04", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z",    "2026-12-04T10:00:00",
	    "tomorrow",   "2026-12-04T25:00:00Z", "2026-12-04T10:00:00Zjunk"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(revo_time_parse(bad[i], &t, NULL), REVO_EINVAL);
}

static void asn1_text_times(void **state)
{
	(void)state;
	int64_t t;
	assert_int_equal(revo_time_parse_asn1_text("261204100000Z", 13, &t), 0);
	assert_int_equal(t, 1796378400);
	assert_int_equal(revo_time_parse_asn1_text("20261204100000Z", 15, &t), 0);
	assert_int_equal(t, 1796378400);
	assert_int_equal(revo_time_parse_asn1_text("991231235959Z", 13, &t), 0);
	assert_int_equal(t, 946684799);
	assert_int_equal(revo_time_parse_asn1_text("2612041000Z", 11, &t), REVO_EINVAL);
	assert_int_equal(revo_time_parse_asn1_text("261304100000Z", 13, &t), REVO_EINVAL);
}

static void durations(void **state)
{
	(void)state;
	int64_t s;
	assert_int_equal(revo_duration_parse("30s", &s, NULL), 0);
	assert_int_equal(s, 30);
	assert_int_equal(revo_duration_parse("1h30m", &s, NULL), 0);
	assert_int_equal(s, 5400);
	assert_int_equal(revo_duration_parse("7d", &s, NULL), 0);
	assert_int_equal(s, 604800);
	assert_int_equal(revo_duration_parse("0s", &s, NULL), REVO_EINVAL);
	assert_int_equal(revo_duration_parse("5", &s, NULL), REVO_EINVAL);
	assert_int_equal(revo_duration_parse("1y", &s, NULL), REVO_EINVAL);
}

static void reasons(void **state)
{
	(void)state;
	int code;
	assert_int_equal(revo_reason_parse("KEYCOMPROMISE", &code, NULL), 0);
	assert_int_equal(code, 1);
	assert_int_equal(revo_reason_parse("aACompromise", &code, NULL), 0);
	assert_int_equal(code, 10);
	assert_int_equal(revo_reason_parse("removeFromCRL", &code, NULL), 0);
	assert_int_equal(code, 8);
	assert_int_equal(revo_reason_parse("stolen", &code, NULL), REVO_EINVAL);
	assert_null(revo_reason_name(7));
	assert_string_equal(revo_reason_name(6), "certificateHold");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(serial_spellings_meet),
	    cmocka_unit_test(serial_bad_input_refused),
	    cmocka_unit_test(serial_order_is_numeric),
	    cmocka_unit_test(rfc3339_round_trip),
	    cmocka_unit_test(rfc3339_bad_input_refused),
	    cmocka_unit_test(asn1_text_times),
	    cmocka_unit_test(durations),
	    cmocka_unit_test(reasons),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
