/*
 * What every probe shares: the status, the monitoring-plugin line, perfdata, --json and
 * the node-exporter textfile (see probe.h).
 */
#include "cli/probe.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const PROBE_STATUS[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};

void probe_problem(probe_t *p, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_array_append_new(
	    p->checks, json_pack("{s:s, s:s}", "status", PROBE_STATUS[level], "message", msg));
	if (level > p->status || (level == P_UNKNOWN && p->status != P_CRITICAL))
		p->status = level == P_UNKNOWN && p->status == P_CRITICAL ? P_CRITICAL : level;
	size_t n = strlen(p->summary);
	snprintf(p->summary + n, sizeof(p->summary) - n, "%s%s", n ? "; " : "", msg);
}

void probe_perf(probe_t *p, const char *name, double v, const char *unit)
{
	size_t n = strlen(p->perf);
	snprintf(p->perf + n, sizeof(p->perf) - n, "%s%s=%g%s", n ? " " : "", name, v, unit);
	json_object_set_new(p->perfj, name, json_real(v));
}

int probe_finish(probe_t *p, const char *facts)
{
	char line[2300];
	const char *what = p->summary[0] ? p->summary : facts;
	if (p->summary[0] && facts && facts[0]) {
		snprintf(line, sizeof(line), "%s - %s; %s | %s", PROBE_STATUS[p->status],
			 p->summary, facts, p->perf);
	} else {
		snprintf(line, sizeof(line), "%s - %s | %s", PROBE_STATUS[p->status],
			 what ? what : "", p->perf);
	}
	if (p->cli->json) {
		json_t *j = json_pack("{s:s, s:s, s:o, s:o, s:s}", "status",
				      PROBE_STATUS[p->status], "summary", facts ? facts : "",
				      "checks", p->checks, "perfdata", p->perfj, "line", line);
		if (p->extra)
			json_object_update(j, p->extra);
		cli_json_print(p->cli, j);
	} else {
		json_decref(p->checks);
		json_decref(p->perfj);
		printf("%s\n", line);
		fflush(stdout);
	}
	json_decref(p->extra);
	p->extra = NULL;
	if (p->prom_path) {
		/* node-exporter textfile collector: written whole, then renamed */
		char tmp[4200];
		snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", p->prom_path, (long)getpid());
		FILE *f = fopen(tmp, "w");
		if (f) {
			fprintf(f,
				"# HELP revo_probe_status 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.\n"
				"# TYPE revo_probe_status gauge\n"
				"revo_probe_status{probe=\"%s\",target=\"%s\"} %d\n",
				p->prom_name, p->target, p->status);
			/* perfdata as gauges */
			char perfcopy[1024];
			snprintf(perfcopy, sizeof(perfcopy), "%s", p->perf);
			for (char *tok = strtok(perfcopy, " "); tok; tok = strtok(NULL, " ")) {
				char *eq = strchr(tok, '=');
				if (!eq)
					continue;
				*eq = 0;
				/* the value without its perfdata unit */
				char *v = eq + 1;
				v[strspn(v, "0123456789.-+e")] = 0;
				fprintf(f, "revo_probe_%s_%s{target=\"%s\"} %s\n", p->prom_name,
					tok, p->target, v);
			}
			if (fclose(f) == 0)
				rename(tmp, p->prom_path);
			else
				unlink(tmp);
		}
	}
	return p->status;
}

int probe_misuse(cli_t *cli, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printf("UNKNOWN - %s (see 'revo %s --help')\n", msg, cli->cmd);
	return P_UNKNOWN;
}

int probe_args(cli_t *cli, int argc, char **argv, const struct option *opts, cli_opt_fn on_opt,
	       void *ctx, int *first, int max_operands)
{
	cli->probe = true;
	int r = cli_parse(cli, argc, argv, opts, on_opt, ctx, first);
	if (r == EXIT_MISUSE)
		return P_UNKNOWN;
	if (r >= 0)
		return r;
	if (max_operands >= 0 && argc - *first > max_operands)
		return probe_misuse(cli, "unexpected argument '%s'", argv[*first + max_operands]);
	return -1;
}

void probe_fmt_dur(int64_t s, char *buf, size_t len)
{
	bool neg = s < 0;
	if (neg)
		s = -s;
	if (s >= 86400)
		snprintf(buf, len, "%s%lldd%lldh", neg ? "-" : "", (long long)(s / 86400),
			 (long long)(s % 86400 / 3600));
	else if (s >= 3600)
		snprintf(buf, len, "%s%lldh%lldm", neg ? "-" : "", (long long)(s / 3600),
			 (long long)(s % 3600 / 60));
	else
		snprintf(buf, len, "%s%llds", neg ? "-" : "", (long long)s);
}
