/*
 * Internals of the revo command: the context every command handler gets, output
 * helpers (text or --json via jansson) and the error/usage conventions of the command
 * line contract: exit 0 success, 1 failure, 2 misuse; one line "revo: <what>: <why>".
 * cli/ is the only place that prints to the user or exits.
 */
#ifndef REVO_CLI_H
#define REVO_CLI_H

#include "pki/err.h"
#include "pki/serial.h"
#include "store/store.h"

#include <getopt.h>
#include <jansson.h>
#include <openssl/x509.h>
#include <stdbool.h>

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_MISUSE = 2 };

typedef struct cli {
	const char *store_dir;
	bool json;
	const char *cmd;        /* "revoke", "issuer add": the <what> of error lines */
	const char *usage;      /* the command's usage text */
	char cmdline[256];      /* the command as typed (journal detail) */
	int64_t t0_ms;          /* when the command started (monotonic ms) */
	revo_store_t *store;    /* opened by cli_open_store */
	revo_issuer_t *issuers; /* loaded by cli_load_issuers */
	size_t n_issuers;
	bool probe; /* a monitoring probe: misuse is an "UNKNOWN - ..." line on stdout */
} cli_t;

typedef int (*cli_handler)(cli_t *cli, int argc, char **argv);

/** Print "revo: <cmd>: <detail or strerror(rc)>" and return EXIT_FAIL. */
int cli_fail(cli_t *cli, int rc, const revo_errmsg_t *em);
/** Print "revo: <cmd>: <message>" and return EXIT_FAIL. */
int cli_failf(cli_t *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Print "revo: <cmd>: <message> (see 'revo <cmd> --help')" and return EXIT_MISUSE. */
int cli_misuse(cli_t *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/**
 * Parse the command's options with getopt_long. @longopts must end with a zero entry;
 * "--json", "--store DIR" and "--help" are handled here for every command. Returns the
 * getopt value per option through @on_opt (which returns 0, or an exit code to stop).
 * *@optind_out is the index of the first operand. Returns -1 to continue, or an exit code.
 */
typedef int (*cli_opt_fn)(cli_t *cli, int opt, const char *arg, void *ctx);
int cli_parse(cli_t *cli, int argc, char **argv, const struct option *longopts, cli_opt_fn on_opt,
	      void *ctx, int *optind_out);

/** Open the store (read-only when @readonly). Returns 0 or an exit code (error printed). */
int cli_open_store(cli_t *cli, bool readonly);
/** Load the issuer list into cli. Returns 0 or an exit code. */
int cli_load_issuers(cli_t *cli);
/** The issuer named @name, or NULL (no message). */
const revo_issuer_t *cli_issuer_by_name(cli_t *cli, const char *name);
/** The issuer with id @id, or NULL. */
const revo_issuer_t *cli_issuer_by_id(cli_t *cli, uint32_t id);
/**
 * The issuer named @name, or the only issuer when @name is NULL. Prints the error and
 * returns NULL when there is none or the choice is ambiguous.
 */
const revo_issuer_t *cli_issuer_pick(cli_t *cli, const char *name, int *exit_code);
/**
 * The registered issuer that signed @x (matching issuer name, Authority Key
 * Identifier and a verifying signature), restricted to @only when not NULL.
 * Errors: REVO_ENOTFOUND with a detail naming the certificate's issuer.
 */
int cli_issuer_of(cli_t *cli, X509 *x, const revo_issuer_t *only, const revo_issuer_t **out,
		  revo_errmsg_t *em);

/** Parse a time / serial / reason option value; print a one-line error on failure. */
int cli_time_arg(cli_t *cli, const char *opt, const char *arg, int64_t *out);
int cli_serial_arg(cli_t *cli, const char *arg, revo_serial_t *out);
int cli_reason_arg(cli_t *cli, const char *arg, int *out);
int cli_duration_arg(cli_t *cli, const char *opt, const char *arg, int64_t *out);

/** Print a JSON value (steals the reference) on stdout, followed by a newline. */
int cli_json_print(cli_t *cli, json_t *v);

/** JSON helpers: strings that may be NULL become null; times 0 become null. */
json_t *cli_json_str(const char *s);
json_t *cli_json_time(int64_t t);
json_t *cli_json_serial(const revo_serial_t *s);
json_t *cli_json_reason(int reason);

void cli_cleanup(cli_t *cli);

/* command handlers */
int cmd_init(cli_t *cli, int argc, char **argv);
int cmd_issuer_add(cli_t *cli, int argc, char **argv);
int cmd_issuer_list(cli_t *cli, int argc, char **argv);
int cmd_issuer_set(cli_t *cli, int argc, char **argv);
int cmd_cert_add(cli_t *cli, int argc, char **argv);
int cmd_import_index(cli_t *cli, int argc, char **argv);
int cmd_import_crl(cli_t *cli, int argc, char **argv);
int cmd_revoke(cli_t *cli, int argc, char **argv);
int cmd_unhold(cli_t *cli, int argc, char **argv);
int cmd_status(cli_t *cli, int argc, char **argv);
int cmd_list(cli_t *cli, int argc, char **argv);
int cmd_log(cli_t *cli, int argc, char **argv);
int cmd_crl_build(cli_t *cli, int argc, char **argv);
int cmd_ocsp_presign(cli_t *cli, int argc, char **argv);
int cmd_ocsp_serve(cli_t *cli, int argc, char **argv);
int cmd_target_add(cli_t *cli, int argc, char **argv);
int cmd_target_list(cli_t *cli, int argc, char **argv);
int cmd_target_remove(cli_t *cli, int argc, char **argv);
int cmd_upload(cli_t *cli, int argc, char **argv);
int cmd_publish(cli_t *cli, int argc, char **argv);
int cmd_probe_crl(cli_t *cli, int argc, char **argv);
int cmd_probe_ocsp(cli_t *cli, int argc, char **argv);
int cmd_probe_rolesanywhere(cli_t *cli, int argc, char **argv);
int cmd_probe_sessions(cli_t *cli, int argc, char **argv);

#endif
