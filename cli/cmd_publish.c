/*
 * revo target add, revo target list, revo upload, revo publish.
 */
#include "cli/cli.h"

#include "pki/timefmt.h"
#include "uploader/uploader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct target_opts {
	const char *issuer, *region, *endpoint, *profile, *trust_anchor, *pass_file;
	bool public_read, once, force;
};

static int target_opt(cli_t *cli, int opt, const char *arg, void *vctx)
{
	struct target_opts *o = vctx;
	(void)cli;
	switch (opt) {
	case 'i': o->issuer = arg; break;
	case 'r': o->region = arg; break;
	case 'e': o->endpoint = arg; break;
	case 'p': o->profile = arg; break;
	case 't': o->trust_anchor = arg; break;
	case 'P': o->public_read = true; break;
	case '1': o->once = true; break;
	case 'k': o->pass_file = arg; break;
	case 'f': o->force = true; break;
	}
	return 0;
}

int cmd_target_add(cli_t *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"issuer", required_argument, NULL, 'i'},
	    {"region", required_argument, NULL, 'r'},
	    {"endpoint", required_argument, NULL, 'e'},
	    {"profile", required_argument, NULL, 'p'},
	    {"trust-anchor", required_argument, NULL, 't'},
	    {"public-read", no_argument, NULL, 'P'},
	    {0},
	};
	struct target_opts o = {0};
	int first;
	int r = cli_parse(cli, argc, argv, opts, target_opt, &o, &first);
	if (r >= 0)
		return r;
	if (argc - first != 2)
		return cli_misuse(cli, "give a target NAME and a URL");
	const char *name = argv[first], *url = argv[first + 1];
	if (strlen(name) > REVO_TARGET_NAME_MAX)
		return cli_failf(cli, "target name '%s' is longer than %d characters", name,
				 REVO_TARGET_NAME_MAX);
	if ((r = cli_open_store(cli, false)) || (r = cli_load_issuers(cli)))
		return r;
	const revo_issuer_t *is = cli_issuer_pick(cli, o.issuer, &r);
	if (!is)
		return r;
	revo_target_t t = {.url = (char *)url,
			   .issuer_id = is->id,
			   .region = (char *)o.region,
			   .endpoint = (char *)o.endpoint,
			   .profile = (char *)o.profile,
			   .trust_anchor = (char *)o.trust_anchor,
			   .flags = o.public_read ? REVO_TARGET_PUBLIC_READ : 0};
	memcpy(t.name, name, strlen(name) + 1);
	revo_errmsg_t em = {{0}};
	if ((r = revo_target_check(&t, &em)) || (r = revo_store_target_add(cli->store, &t, &em)))
		return cli_fail(cli, r, &em);
	if (cli->json)
		return cli_json_print(cli, json_pack("{s:s, s:s, s:s}", "name", name, "url", url,
						     "issuer", is->name));
	printf("added target %s -> %s (issuer '%s')\n", name, url, is->name);
	return EXIT_OK;
}

int cmd_target_remove(cli_t *cli, int argc, char **argv)
{
	int first;
	int r = cli_parse(cli, argc, argv, NULL, NULL, NULL, &first);
	if (r >= 0)
		return r;
	if (argc - first != 1)
		return cli_misuse(cli, "give the target NAME");
	if ((r = cli_open_store(cli, false)))
		return r;
	revo_errmsg_t em = {{0}};
	if ((r = revo_store_target_remove(cli->store, argv[first], &em)))
		return cli_fail(cli, r, &em);
	if (cli->json)
		return cli_json_print(cli,
				      json_pack("{s:s, s:b}", "name", argv[first], "removed", 1));
	printf("removed target %s (a running publisher stops using it when restarted)\n",
	       argv[first]);
	return EXIT_OK;
}

int cmd_target_list(cli_t *cli, int argc, char **argv)
{
	int first;
	int r = cli_parse(cli, argc, argv, NULL, NULL, NULL, &first);
	if (r >= 0)
		return r;
	if (first < argc)
		return cli_misuse(cli, "unexpected argument '%s'", argv[first]);
	if ((r = cli_open_store(cli, true)) || (r = cli_load_issuers(cli)))
		return r;
	revo_target_t *ts;
	size_t n;
	revo_errmsg_t em = {{0}};
	if ((r = revo_store_targets(cli->store, &ts, &n, &em)))
		return cli_fail(cli, r, &em);
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		const revo_target_t *t = &ts[i];
		const revo_issuer_t *is = cli_issuer_by_id(cli, t->issuer_id);
		char sha[65] = "";
		if (t->has_sha256)
			revo_hex(t->sha256, 32, sha);
		json_t *o = json_object();
		json_object_set_new(o, "name", json_string(t->name));
		json_object_set_new(o, "url", json_string(t->url));
		json_object_set_new(o, "issuer", is ? json_string(is->name) : json_null());
		json_object_set_new(o, "region", cli_json_str(t->region));
		json_object_set_new(o, "endpoint", cli_json_str(t->endpoint));
		json_object_set_new(o, "profile", cli_json_str(t->profile));
		json_object_set_new(o, "trust_anchor", cli_json_str(t->trust_anchor));
		json_object_set_new(o, "public_read",
				    json_boolean(t->flags & REVO_TARGET_PUBLIC_READ));
		json_object_set_new(o, "last_attempt", cli_json_time(t->last_attempt));
		json_object_set_new(o, "last_success", cli_json_time(t->last_success));
		json_object_set_new(o, "crl_number",
				    t->crl_number ? json_integer((json_int_t)t->crl_number)
						  : json_null());
		json_object_set_new(o, "journal_seq", json_integer((json_int_t)t->crl_seq));
		json_object_set_new(o, "sha256", cli_json_str(sha));
		json_object_set_new(o, "remote_id", cli_json_str(t->remote_id));
		json_object_set_new(o, "etag", cli_json_str(t->remote_etag));
		json_object_set_new(o, "last_error", cli_json_str(t->last_error));
		json_object_set_new(o, "failures", json_integer(t->failures));
		json_array_append_new(arr, o);
		if (!cli->json) {
			printf("%s -> %s (issuer '%s')\n", t->name, t->url, is ? is->name : "?");
			char a[REVO_TIME_STR_MAX], s[REVO_TIME_STR_MAX];
			printf("  holds CRL %llu, last success %s, last attempt %s\n",
			       (unsigned long long)t->crl_number,
			       t->last_success ? revo_time_format(t->last_success, s) : "never",
			       t->last_attempt ? revo_time_format(t->last_attempt, a) : "never");
			if (t->last_error)
				printf("  last error (%u in a row): %s\n", t->failures,
				       t->last_error);
		}
	}
	revo_targets_free(ts, n);
	if (cli->json)
		return cli_json_print(cli, arr);
	if (n == 0)
		printf("no targets (see 'revo target add')\n");
	json_decref(arr);
	return EXIT_OK;
}

int cmd_upload(cli_t *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"region", required_argument, NULL, 'r'},
	    {"endpoint", required_argument, NULL, 'e'},
	    {"profile", required_argument, NULL, 'p'},
	    {"trust-anchor", required_argument, NULL, 't'},
	    {0},
	};
	struct target_opts o = {0};
	int first;
	int r = cli_parse(cli, argc, argv, opts, target_opt, &o, &first);
	if (r >= 0)
		return r;
	if (argc - first != 2)
		return cli_misuse(cli, "give a CRL FILE and a URL");
	revo_upload_result_t res;
	revo_errmsg_t em = {{0}};
	r = revo_upload_file(argv[first], argv[first + 1], o.region, o.endpoint, o.profile,
			     o.trust_anchor, &res, &em);
	if (r)
		return cli_fail(cli, r, &em);
	char sha[65];
	revo_hex(res.sha256, 32, sha);
	if (cli->json)
		return cli_json_print(
		    cli, json_pack("{s:s, s:s, s:o, s:s, s:o, s:o}", "file", argv[first], "url",
				   argv[first + 1], "previous_crl_number",
				   res.remote_number ? json_integer((json_int_t)res.remote_number)
						     : json_null(),
				   "sha256", sha, "remote_id", cli_json_str(res.remote_id), "etag",
				   cli_json_str(res.etag)));
	printf("uploaded %s to %s (read back, SHA-256 %s)\n", argv[first], argv[first + 1], sha);
	return EXIT_OK;
}

struct log_ctx {
	cli_t *cli;
};

static void publish_log(void *ctx, int ev, const char *target, const char *msg)
{
	struct log_ctx *l = ctx;
	static const char *const names[] = {"committed", "ocsp",    "crl", "uploaded",
					    "failed",    "skipped", "info"};
	char t[REVO_TIME_STR_MAX];
	if (l->cli->json) {
		json_t *o =
		    json_pack("{s:s, s:s, s:o, s:s}", "time", revo_time_format(revo_now(), t),
			      "event", names[ev], "target", cli_json_str(target), "message", msg);
		char *s = json_dumps(o, JSON_COMPACT);
		if (s)
			puts(s);
		free(s);
		json_decref(o);
	} else {
		printf("%s %-8s %s%s%s\n", revo_time_format(revo_now(), t), names[ev],
		       target ? target : "", target ? ": " : "", msg);
	}
	fflush(stdout);
}

int cmd_publish(cli_t *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"once", no_argument, NULL, '1'},
	    {"issuer", required_argument, NULL, 'i'},
	    {"pass-file", required_argument, NULL, 'k'},
	    {"force", no_argument, NULL, 'f'},
	    {0},
	};
	struct target_opts o = {0};
	int first;
	int r = cli_parse(cli, argc, argv, opts, target_opt, &o, &first);
	if (r >= 0)
		return r;
	if (first < argc)
		return cli_misuse(cli, "unexpected argument '%s'", argv[first]);
	struct log_ctx l = {.cli = cli};
	revo_publish_cfg_t cfg = {.store_dir = cli->store_dir,
				  .issuer = o.issuer,
				  .once = o.once,
				  .pass_file = o.pass_file,
				  .force_perms = o.force,
				  .cb = publish_log,
				  .cb_ctx = &l};
	revo_errmsg_t em = {{0}};
	r = revo_publish_run(&cfg, &em);
	return r ? cli_fail(cli, r, &em) : EXIT_OK;
}
