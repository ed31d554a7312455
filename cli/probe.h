/*
 * Probes (revo probe ...): monitoring-plugin checks. One status line
 * "STATUS - summary | perfdata", exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (misuse too);
 * --json prints the same as a JSON document, --prometheus writes a node-exporter textfile.
 * Each check can only make the status worse.
 */
#ifndef REVO_CLI_PROBE_H
#define REVO_CLI_PROBE_H

#include "cli/cli.h"

#include <jansson.h>
#include <stdint.h>

enum { P_OK = 0, P_WARNING = 1, P_CRITICAL = 2, P_UNKNOWN = 3 };
extern const char *const PROBE_STATUS[];

typedef struct probe {
	cli_t *cli;
	int status;
	char summary[1024]; /* the worst problems first, then facts */
	char perf[1024];
	json_t *checks;
	json_t *perfj;
	const char *prom_path;
	const char *prom_name;
	const char *target;
	json_t *extra; /* more members for --json (owned; may be NULL) */
} probe_t;

/** Record a problem of @level (P_WARNING...): it joins the summary and "checks". */
void probe_problem(probe_t *p, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Add one perfdata value (and to --json's "perfdata"). */
void probe_perf(probe_t *p, const char *name, double v, const char *unit);

/** Print the line (or JSON, with p->extra merged in), write --prometheus; the exit code. */
int probe_finish(probe_t *p, const char *facts);

/**
 * Parse a probe's options (cli_parse, with misuse reported the monitoring-plugin way):
 * -1 to go on, else the exit code (0 after --help, P_UNKNOWN on misuse). With
 * @max_operands >= 0, more operands than that are misuse.
 */
int probe_args(cli_t *cli, int argc, char **argv, const struct option *opts, cli_opt_fn on_opt,
	       void *ctx, int *first, int max_operands);

/** Misuse: an UNKNOWN line naming the problem; returns P_UNKNOWN. */
int probe_misuse(cli_t *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** A duration for people: "2d3h", "5h10m", "42s" (negative with a leading '-'). */
void probe_fmt_dur(int64_t s, char *buf, size_t len);

#endif
