/*
 * Unit tests for store/: init and open, issuers, apply (register, revoke, hold
 * replacement), unhold, numeric serial order, the journal, map growth and the schema
 * version check. Each test works in a fresh temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pki/reason.h"
#include "pki/timefmt.h"
#include "store/store.h"
#include "store/store_internal.h"

struct fx {
	char dir[64];
	revo_store_t *st;
	uint32_t issuer;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/revo-unit-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	strcat(f->dir, "/s");
	bool created = false;
	if (revo_store_init(f->dir, &created, NULL) || !created)
		return -1;
	if (revo_store_open(f->dir, 0, &f->st, NULL))
		return -1;
	static uint8_t der[] = {0x30, 0x03, 0x02, 0x01, 0x01};
	revo_issuer_t is = {.cert_der = der,
			    .cert_len = sizeof(der),
			    .key_ref = "/k.pem",
			    .crl_validity = 7 * 86400,
			    .crl_every = 3600,
			    .ocsp_validity = 86400};
	strcpy(is.name, "corp");
	if (revo_store_issuer_add(f->st, &is, &f->issuer, NULL))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];
	revo_store_close(f->st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%.*s'", (int)(strlen(f->dir) - 2), f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static revo_cert_rec_t cert(uint32_t issuer, const char *serial, const char *cn)
{
	revo_cert_rec_t c;
	memset(&c, 0, sizeof(c));
	c.issuer_id = issuer;
	revo_serial_parse(serial, &c.serial, NULL);
	c.not_after = revo_now() + 86400;
	snprintf(c.cn, sizeof(c.cn), "%s", cn);
	return c;
}

static revo_revocation_t rev(uint32_t issuer, const char *serial, int reason, int64_t at)
{
	revo_revocation_t r;
	memset(&r, 0, sizeof(r));
	r.issuer_id = issuer;
	revo_serial_parse(serial, &r.serial, NULL);
	r.reason = reason;
	r.revoked_at = at;
	return r;
}

static void init_is_idempotent_and_open_refuses_non_stores(void **state)
{
	struct fx *f = *state;
	bool created = true;
	assert_int_equal(revo_store_init(f->dir, &created, NULL), 0);
	assert_false(created);
	revo_store_t *st;
	revo_errmsg_t em = {{0}};
	assert_int_equal(revo_store_open("/nonexistent/revo", 0, &st, &em), REVO_ENOSTORE);
	char empty[64];
	snprintf(empty, sizeof(empty), "/tmp/revo-unit-empty-XXXXXX");
	assert_non_null(mkdtemp(empty));
	assert_int_equal(revo_store_open(empty, 0, &st, NULL), REVO_ENOSTORE);
	/* nothing was created in the directory that is not a store */
	char path[128];
	struct stat sb;
	snprintf(path, sizeof(path), "%s/data.mdb", empty);
	assert_int_not_equal(stat(path, &sb), 0);
	rmdir(empty);
}

static void revoke_then_already_then_hold_replaced(void **state)
{
	struct fx *f = *state;
	int64_t now = revo_now();
	revo_cert_rec_t c = cert(f->issuer, "0A", "host-1");
	revo_revocation_t r = rev(f->issuer, "0A", REVO_REASON_CERTIFICATE_HOLD, now - 100);
	revo_change_t ch = {.cert = &c, .revoke = &r};
	revo_change_result_t res;
	assert_int_equal(revo_store_apply(f->st, &ch, 1, 0, NULL, &res, NULL), 0);
	assert_int_equal(res.cert, REVO_CERT_ADDED);
	assert_int_equal(res.rev, REVO_REV_REVOKED);
	assert_true(res.issued);

	/* same hold again: already revoked, nothing changes */
	r.revoked_at = now - 50;
	assert_int_equal(revo_store_apply(f->st, &ch, 1, 0, NULL, &res, NULL), 0);
	assert_int_equal(res.cert, REVO_CERT_PRESENT);
	assert_int_equal(res.rev, REVO_REV_ALREADY);
	assert_int_equal(res.current.revoked_at, now - 100);

	/* a permanent reason replaces the hold and keeps the hold's time */
	revo_revocation_t k = rev(f->issuer, "0a", REVO_REASON_KEY_COMPROMISE, now);
	revo_change_t ch2 = {.revoke = &k};
	assert_int_equal(revo_store_apply(f->st, &ch2, 1, 0, NULL, &res, NULL), 0);
	assert_int_equal(res.rev, REVO_REV_HOLD_REPLACED);
	assert_int_equal(res.current.reason, REVO_REASON_KEY_COMPROMISE);
	assert_int_equal(res.current.revoked_at, now - 100);

	/* and a permanent revocation cannot be undone */
	assert_int_equal(revo_store_unhold(f->st, f->issuer, &k.serial, NULL, NULL, NULL),
			 REVO_ESTATE);
}

static void unhold_removes_hold(void **state)
{
	struct fx *f = *state;
	revo_revocation_t r = rev(f->issuer, "0B", REVO_REASON_CERTIFICATE_HOLD, revo_now());
	revo_change_t ch = {.revoke = &r};
	revo_change_result_t res;
	assert_int_equal(revo_store_apply(f->st, &ch, 1, 0, NULL, &res, NULL), 0);
	assert_false(res.issued);
	uint64_t seq = 0;
	assert_int_equal(revo_store_unhold(f->st, f->issuer, &r.serial, NULL, &seq, NULL), 0);
	assert_true(seq > 0);
	bool hc, hr;
	assert_int_equal(revo_store_lookup(f->st, f->issuer, &r.serial, NULL, &hc, NULL, &hr, NULL),
			 0);
	assert_false(hc);
	assert_false(hr);
	assert_int_equal(revo_store_unhold(f->st, f->issuer, &r.serial, NULL, NULL, NULL),
			 REVO_ENOTFOUND);
}

static void invalid_revocations_refused_and_nothing_written(void **state)
{
	struct fx *f = *state;
	revo_change_result_t res;
	revo_revocation_t r = rev(f->issuer, "0C", REVO_REASON_REMOVE_FROM_CRL, revo_now());
	revo_change_t ch = {.revoke = &r};
	assert_int_equal(revo_store_apply(f->st, &ch, 1, 0, NULL, &res, NULL), REVO_EINVAL);
	r.reason = 7;
	assert_int_equal(revo_store_apply(f->st, &ch, 1, 0, NULL, &res, NULL), REVO_EINVAL);
	r.reason = REVO_REASON_SUPERSEDED;
	r.revoked_at = revo_now() + 3600;
	assert_int_equal(revo_store_apply(f->st, &ch, 1, 0, NULL, &res, NULL), REVO_EINVAL);
	/* a bad change in a batch aborts the whole batch */
	revo_cert_rec_t good = cert(f->issuer, "0D", "x");
	revo_change_t two[2] = {{.cert = &good}, {.revoke = &r}};
	assert_int_equal(revo_store_apply(f->st, two, 2, 0, NULL, NULL, NULL), REVO_EINVAL);
	bool hc, hr;
	assert_int_equal(
	    revo_store_lookup(f->st, f->issuer, &good.serial, NULL, &hc, NULL, &hr, NULL), 0);
	assert_false(hc);
	/* unknown issuer */
	revo_cert_rec_t other = cert(99, "0E", "y");
	revo_change_t ch3 = {.cert = &other};
	assert_int_equal(revo_store_apply(f->st, &ch3, 1, 0, NULL, NULL, NULL), REVO_EINVAL);
}

struct collect {
	char serials[16][REVO_SERIAL_HEX_MAX];
	int n;
};

static int collect_cb(void *ctx, const revo_cert_rec_t *c, const revo_revocation_t *r)
{
	struct collect *col = ctx;
	if (col->n < 16)
		revo_serial_format(c ? &c->serial : &r->serial, col->serials[col->n++]);
	return 0;
}

static void list_is_in_numeric_order_and_merges_revocations(void **state)
{
	struct fx *f = *state;
	const char *order[] = {"0100", "05", "FF", "10"};
	revo_cert_rec_t cs[4];
	revo_change_t ch[4];
	for (int i = 0; i < 4; i++) {
		cs[i] = cert(f->issuer, order[i], "same-cn");
		ch[i] = (revo_change_t){.cert = &cs[i]};
	}
	assert_int_equal(revo_store_apply(f->st, ch, 4, REVO_APPLY_NOSYNC, NULL, NULL, NULL), 0);
	revo_revocation_t r = rev(f->issuer, "07", REVO_REASON_SUPERSEDED, revo_now());
	revo_change_t rc = {.revoke = &r};
	assert_int_equal(revo_store_apply(f->st, &rc, 1, 0, NULL, NULL, NULL), 0);
	struct collect col = {0};
	assert_int_equal(revo_store_list(f->st, 0, false, collect_cb, &col, NULL), 0);
	assert_int_equal(col.n, 5);
	assert_string_equal(col.serials[0], "05");
	assert_string_equal(col.serials[1], "07");
	assert_string_equal(col.serials[2], "10");
	assert_string_equal(col.serials[3], "FF");
	assert_string_equal(col.serials[4], "0100");
	memset(&col, 0, sizeof(col));
	assert_int_equal(revo_store_list(f->st, f->issuer, true, collect_cb, &col, NULL), 0);
	assert_int_equal(col.n, 1);

	revo_cert_rec_t *found;
	size_t n;
	assert_int_equal(revo_store_find_cn(f->st, "same-cn", 0, &found, &n, NULL), 0);
	assert_int_equal(n, 4);
	free(found);
}

struct jcount {
	int ops[8];
	uint64_t last;
};

static int journal_cb(void *ctx, const revo_journal_entry_t *e)
{
	struct jcount *j = ctx;
	if (e->op > 0 && e->op < 8)
		j->ops[e->op]++;
	assert_true(e->seq > j->last);
	j->last = e->seq;
	assert_true(e->user[0] != '\0');
	assert_true(e->host[0] != '\0');
	assert_int_equal(e->uid, (uint32_t)getuid());
	return 0;
}

static void journal_records_every_change(void **state)
{
	struct fx *f = *state;
	revo_cert_rec_t c = cert(f->issuer, "20", "j");
	revo_revocation_t r = rev(f->issuer, "20", REVO_REASON_KEY_COMPROMISE, revo_now());
	revo_change_t ch = {.cert = &c, .revoke = &r};
	assert_int_equal(revo_store_apply(f->st, &ch, 1, 0, NULL, NULL, NULL), 0);
	/* a no-op is not journaled */
	assert_int_equal(revo_store_apply(f->st, &ch, 1, 0, NULL, NULL, NULL), 0);
	/* nor is a dry run */
	revo_revocation_t r2 = rev(f->issuer, "21", REVO_REASON_KEY_COMPROMISE, revo_now());
	revo_change_t ch2 = {.revoke = &r2};
	revo_change_result_t res;
	assert_int_equal(revo_store_apply(f->st, &ch2, 1, REVO_APPLY_DRYRUN, NULL, &res, NULL), 0);
	assert_int_equal(res.rev, REVO_REV_REVOKED);
	struct jcount j = {0};
	assert_int_equal(revo_store_journal(f->st, 0, journal_cb, &j, NULL), 0);
	assert_int_equal(j.ops[REVO_OP_INIT], 1);
	assert_int_equal(j.ops[REVO_OP_ISSUER_ADD], 1);
	assert_int_equal(j.ops[REVO_OP_CERT_ADD], 1);
	assert_int_equal(j.ops[REVO_OP_REVOKE], 1);
	bool hc, hr;
	assert_int_equal(
	    revo_store_lookup(f->st, f->issuer, &r2.serial, NULL, &hc, NULL, &hr, NULL), 0);
	assert_false(hr);
	struct jcount tail = {0};
	tail.last = j.last - 1;
	assert_int_equal(revo_store_journal(f->st, j.last - 1, journal_cb, &tail, NULL), 0);
	assert_int_equal(tail.ops[REVO_OP_REVOKE], 1);
}

static void map_grows_when_full(void **state)
{
	struct fx *f = *state;
	revo_store_close(f->st);
	setenv("REVO_MAP_SIZE", "262144", 1);
	assert_int_equal(revo_store_open(f->dir, 0, &f->st, NULL), 0);
	unsetenv("REVO_MAP_SIZE");
	enum { N = 500, ROUNDS = 20 };
	static revo_cert_rec_t cs[N];
	static revo_change_t ch[N];
	for (int round = 0; round < ROUNDS; round++) {
		for (int i = 0; i < N; i++) {
			char s[32], cn[64];
			snprintf(s, sizeof(s), "%x", 0x100000 + round * N + i);
			snprintf(cn, sizeof(cn), "host-%d-with-a-longer-name-for-size",
				 round * N + i);
			cs[i] = cert(f->issuer, s, cn);
			ch[i] = (revo_change_t){.cert = &cs[i]};
		}
		assert_int_equal(
		    revo_store_apply(f->st, ch, N, REVO_APPLY_NOSYNC, NULL, NULL, NULL), 0);
	}
	struct collect col = {0};
	assert_int_equal(revo_store_list(f->st, 0, false, collect_cb, &col, NULL), 0);
	assert_int_equal(col.n, 16); /* capped by the collector; the walk covered them all */
}

static void newer_schema_refused(void **state)
{
	struct fx *f = *state;
	revo_store_close(f->st);
	f->st = NULL;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	assert_int_equal(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 16);
	assert_int_equal(mdb_env_open(env, f->dir, 0, 0660), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	uint8_t v[4];
	revo_be32(v, REVO_STORE_SCHEMA_VERSION + 1);
	MDB_val k = {14, "schema_version"}, val = {4, v};
	assert_int_equal(mdb_put(txn, dbi, &k, &val, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	revo_errmsg_t em = {{0}};
	assert_int_equal(revo_store_open(f->dir, 0, &f->st, &em), REVO_EVERSION);
	assert_non_null(strstr(em.msg, "newer"));
	bool created;
	assert_int_equal(revo_store_init(f->dir, &created, NULL), REVO_EVERSION);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(init_is_idempotent_and_open_refuses_non_stores, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(revoke_then_already_then_hold_replaced, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(unhold_removes_hold, setup, teardown),
	    cmocka_unit_test_setup_teardown(invalid_revocations_refused_and_nothing_written, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(list_is_in_numeric_order_and_merges_revocations, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(journal_records_every_change, setup, teardown),
	    cmocka_unit_test_setup_teardown(map_grows_when_full, setup, teardown),
	    cmocka_unit_test_setup_teardown(newer_schema_refused, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
