/*
 * AWS credentials: the environment, the shared credentials and config files (parsed
 * with inih), and credential_process (run through /bin/sh, JSON answer, cached until
 * five minutes before its expiry). Secrets are copied only into revo_aws_creds_t and
 * never into error messages.
 */
#include "uploader/uploader.h"

#include "pki/timefmt.h"

#include <errno.h>
#include <ini.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

struct profile_ctx {
	const char *want; /* profile name */
	bool config_file; /* section names are "profile NAME" (except "default") */
	bool found;
	char key[128], secret[256], token[4096], process[1024], region[64];
};

static int ini_cb(void *user, const char *section, const char *name, const char *value)
{
	struct profile_ctx *p = user;
	char want[160];
	if (p->config_file && strcmp(p->want, "default") != 0)
		snprintf(want, sizeof(want), "profile %s", p->want);
	else
		snprintf(want, sizeof(want), "%s", p->want);
	if (strcmp(section, want) != 0)
		return 1;
	p->found = true;
#define SET(field)                                                                                 \
	do {                                                                                       \
		if (!p->field[0])                                                                  \
			snprintf(p->field, sizeof(p->field), "%s", value);                         \
	} while (0)
	if (strcmp(name, "aws_access_key_id") == 0)
		SET(key);
	else if (strcmp(name, "aws_secret_access_key") == 0)
		SET(secret);
	else if (strcmp(name, "aws_session_token") == 0)
		SET(token);
	else if (strcmp(name, "credential_process") == 0)
		SET(process);
	else if (strcmp(name, "region") == 0)
		SET(region);
#undef SET
	return 1;
}

static void aws_path(const char *env, const char *file, char *buf, size_t len)
{
	const char *e = getenv(env);
	if (e && *e) {
		snprintf(buf, len, "%s", e);
		return;
	}
	const char *home = getenv("HOME");
	snprintf(buf, len, "%s/.aws/%s", home ? home : "", file);
}

/* cache of credential_process answers, by command */
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char process[1024];
	revo_aws_creds_t creds;
	bool valid;
} cache;

static int run_process_locked(const char *cmd, revo_aws_creds_t *out, revo_errmsg_t *em);

/* One lock over the cache check, the run and the fill: targets asking at once run the
 * helper once. */
static int run_process(const char *cmd, revo_aws_creds_t *out, revo_errmsg_t *em)
{
	pthread_mutex_lock(&cache_lock);
	int rc;
	if (cache.valid && strcmp(cache.process, cmd) == 0 &&
	    (cache.creds.expires == 0 || cache.creds.expires - 300 > revo_now())) {
		*out = cache.creds;
		rc = REVO_OK;
	} else {
		rc = run_process_locked(cmd, out, em);
	}
	pthread_mutex_unlock(&cache_lock);
	return rc;
}

static int run_process_locked(const char *cmd, revo_aws_creds_t *out, revo_errmsg_t *em)
{
	FILE *f = popen(cmd, "r");
	if (!f)
		return revo_err_set(em, REVO_EIO, "credential_process: cannot run: %s",
				    strerror(errno));
	char buf[16384];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	int status = pclose(f);
	if (status != 0)
		return revo_err_set(em, REVO_EINVAL, "credential_process exited with status %d",
				    WEXITSTATUS(status));
	json_error_t je;
	json_t *j = json_loads(buf, 0, &je);
	const char *ak = json_string_value(json_object_get(j, "AccessKeyId"));
	const char *sk = json_string_value(json_object_get(j, "SecretAccessKey"));
	const char *tk = json_string_value(json_object_get(j, "SessionToken"));
	const char *ex = json_string_value(json_object_get(j, "Expiration"));
	json_int_t ver = json_integer_value(json_object_get(j, "Version"));
	if (!j || ver != 1 || !ak || !sk) {
		json_decref(j);
		return revo_err_set(
		    em, REVO_EINVAL,
		    "credential_process did not print Version 1 JSON with AccessKeyId "
		    "and SecretAccessKey");
	}
	memset(out, 0, sizeof(*out));
	snprintf(out->access_key, sizeof(out->access_key), "%s", ak);
	snprintf(out->secret, sizeof(out->secret), "%s", sk);
	if (tk)
		snprintf(out->token, sizeof(out->token), "%s", tk);
	if (ex && revo_time_parse(ex, &out->expires, NULL) != 0)
		out->expires = 0;
	snprintf(out->source, sizeof(out->source), "credential_process");
	json_decref(j);
	snprintf(cache.process, sizeof(cache.process), "%s", cmd);
	cache.creds = *out;
	cache.valid = true;
	return REVO_OK;
}

int revo_aws_creds_get(const char *profile, revo_aws_creds_t *out, revo_errmsg_t *em)
{
	memset(out, 0, sizeof(*out));
	if (!profile) {
		const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
		if (ak && *ak && sk && *sk) {
			snprintf(out->access_key, sizeof(out->access_key), "%s", ak);
			snprintf(out->secret, sizeof(out->secret), "%s", sk);
			const char *tk = getenv("AWS_SESSION_TOKEN");
			if (tk)
				snprintf(out->token, sizeof(out->token), "%s", tk);
			snprintf(out->source, sizeof(out->source), "environment");
			return REVO_OK;
		}
		profile = getenv("AWS_PROFILE");
		if (!profile || !*profile)
			profile = "default";
	}
	struct profile_ctx p = {.want = profile};
	char path[4096];
	aws_path("AWS_SHARED_CREDENTIALS_FILE", "credentials", path, sizeof(path));
	ini_parse(path, ini_cb, &p);
	p.config_file = true;
	aws_path("AWS_CONFIG_FILE", "config", path, sizeof(path));
	ini_parse(path, ini_cb, &p);
	if (!p.found)
		return revo_err_set(
		    em, REVO_ENOTFOUND,
		    "no AWS credentials: profile '%s' is in neither the credentials "
		    "nor the config file, and AWS_ACCESS_KEY_ID is not set",
		    profile);
	int rc;
	if (p.key[0] && p.secret[0]) {
		snprintf(out->access_key, sizeof(out->access_key), "%s", p.key);
		snprintf(out->secret, sizeof(out->secret), "%s", p.secret);
		snprintf(out->token, sizeof(out->token), "%s", p.token);
		snprintf(out->source, sizeof(out->source), "profile %.50s", profile);
		rc = REVO_OK;
	} else if (p.process[0]) {
		rc = run_process(p.process, out, em);
	} else {
		rc = revo_err_set(em, REVO_ENOTFOUND,
				  "AWS profile '%s' has neither keys nor credential_process",
				  profile);
	}
	if (rc == 0)
		snprintf(out->region, sizeof(out->region), "%s", p.region);
	memset(&p, 0, sizeof(p));
	return rc;
}
