/*
 * revo: the command table and global options. Each command is one row: its words
 * ("issuer add"), its handler and its usage. main() strips the global options
 * (--store, --json, --help, --version), finds the row and hands over the rest.
 */
#include "cli/cli.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef REVO_VERSION
#define REVO_VERSION "0"
#endif

struct command {
	const char *word1, *word2;
	cli_handler run;
	const char *usage;
};

static const struct command COMMANDS[] = {
    {"init", NULL, cmd_init, "revo init"},
    {"issuer", "add", cmd_issuer_add,
     "revo issuer add NAME --cert CA.pem --key KEYREF [--ocsp-cert CERT --ocsp-key KEYREF]\n"
     "                [--crl-validity 7d] [--crl-every 1h] [--ocsp-validity 4d]\n"
     "                [--crl-url URL] [--delta-url URL]"},
    {"issuer", "list", cmd_issuer_list, "revo issuer list"},
    {"issuer", "set", cmd_issuer_set,
     "revo issuer set NAME [--key KEYREF] [--ocsp-cert CERT --ocsp-key KEYREF | --no-ocsp-signer]\n"
     "                [--crl-validity D] [--crl-every D] [--ocsp-validity D] [--crl-url URL]\n"
     "                [--delta-url URL]"},
    {"cert", "add", cmd_cert_add, "revo cert add [--issuer NAME] CERT.pem..."},
    {"import", "openssl-index", cmd_import_index,
     "revo import openssl-index INDEX.txt --issuer NAME"},
    {"import", "crl", cmd_import_crl, "revo import crl FILE.crl --issuer NAME"},
    {"revoke", NULL, cmd_revoke,
     "revo revoke (--serial S | --cert FILE | --cn NAME) [--issuer NAME] [--reason R]\n"
     "            [--at TIME] [--invalidity-date TIME] [--dry-run]\n"
     "            [--publish [--wait SECONDS]] [--pass-file FILE] [--force]"},
    {"unhold", NULL, cmd_unhold, "revo unhold --serial S [--issuer NAME]"},
    {"status", NULL, cmd_status, "revo status --serial S [--issuer NAME]"},
    {"list", NULL, cmd_list, "revo list [--revoked] [--issuer NAME]"},
    {"log", NULL, cmd_log, "revo log [--since SEQ]"},
    {"crl", "build", cmd_crl_build,
     "revo crl build [--issuer NAME] --out FILE [--pem] [--delta] [--keep-expired]\n"
     "               [--rsa-pss] [--pass-file FILE] [--force]"},
    {"ocsp", "presign", cmd_ocsp_presign,
     "revo ocsp presign [--issuer NAME] [--pass-file FILE] [--force]"},
    {"ocsp", "serve", cmd_ocsp_serve,
     "revo ocsp serve --listen HOST:PORT... [--threads N] [--non-issued unknown|revoked|good]\n"
     "                [--no-keys] [--max-certids N] [--max-body N] [--max-header N]\n"
     "                [--max-conns N] [--idle-timeout S] [--read-timeout S] [--max-age S]\n"
     "                [--pass-file FILE] [--force]"},
    {"target", "add", cmd_target_add,
     "revo target add NAME URL [--issuer NAME] [--region R] [--endpoint URL] [--profile P]\n"
     "                [--trust-anchor ARN] [--public-read]"},
    {"target", "list", cmd_target_list, "revo target list"},
    {"target", "remove", cmd_target_remove, "revo target remove NAME"},
    {"upload", NULL, cmd_upload,
     "revo upload FILE URL [--region R] [--endpoint URL] [--profile P] [--trust-anchor ARN]"},
    {"publish", NULL, cmd_publish,
     "revo publish [--once] [--issuer NAME] [--pass-file FILE] [--force]"},
    {"probe", "crl", cmd_probe_crl,
     "revo probe crl URL --ca CA.pem [--warn 48h] [--crit 12h] [--state FILE]\n"
     "               [--serial S | --cert FILE] [--region R] [--endpoint URL] [--profile P]\n"
     "               [--prometheus FILE]"},
    {"probe", "ocsp", cmd_probe_ocsp,
     "revo probe ocsp URL --issuer CA.pem (--cert FILE | --serial S)\n"
     "                [--expect good|revoked|unknown] [--nonce] [--post] [--sha256]\n"
     "                [--warn 1h] [--prometheus FILE]"},
    {"probe", "rolesanywhere", cmd_probe_rolesanywhere,
     "revo probe rolesanywhere --trust-anchor ARN [--region R] [--endpoint URL] [--profile P]\n"
     "                         [--issuer NAME] [--warn 48h] [--crit 12h] [--max-lag 15m]\n"
     "                         [--prometheus FILE]"},
    {"probe", "sessions", cmd_probe_sessions,
     "revo probe sessions [--since 24h] [--region R] [--endpoint URL] [--profile P]\n"
     "                    [--trust-anchor ARN] [--issuer NAME] [--max-events N]\n"
     "                    [--prometheus FILE]"},
};
#define N_COMMANDS (sizeof(COMMANDS) / sizeof(COMMANDS[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: revo [--store DIR] [--json] COMMAND ...\n\ncommands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %s\n", COMMANDS[i].usage);
	fprintf(f, "\nrevo help COMMAND, or revo COMMAND --help, for one command; man revo,\n"
		   "and man revo-issuer, revo-revoke, revo-crl, revo-ocsp, revo-publish,\n"
		   "revo-probe for each group.\n");
}

static const struct command *find(int argc, char **argv, int *words)
{
	for (size_t i = 0; i < N_COMMANDS; i++) {
		const struct command *c = &COMMANDS[i];
		if (strcmp(argv[0], c->word1) != 0)
			continue;
		if (!c->word2) {
			*words = 1;
			return c;
		}
		if (argc > 1 && strcmp(argv[1], c->word2) == 0) {
			*words = 2;
			return c;
		}
	}
	return NULL;
}

static bool is_group(const char *w)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (COMMANDS[i].word2 && strcmp(COMMANDS[i].word1, w) == 0)
			return true;
	return false;
}

int main(int argc, char **argv)
{
	cli_t cli = {.store_dir = getenv("REVO_STORE"), .cmd = "revo"};
	struct timespec ts0;
	clock_gettime(CLOCK_MONOTONIC, &ts0);
	cli.t0_ms = (int64_t)ts0.tv_sec * 1000 + ts0.tv_nsec / 1000000;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--json") == 0) {
			cli.json = true;
		} else if (strcmp(a, "--store") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "revo: --store: needs a directory\n");
				return EXIT_MISUSE;
			}
			cli.store_dir = argv[++i];
		} else if (strncmp(a, "--store=", 8) == 0) {
			cli.store_dir = a + 8;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return EXIT_OK;
		} else if (strcmp(a, "--version") == 0) {
			printf("revo %s (%s)\n", REVO_VERSION, OpenSSL_version(OPENSSL_VERSION));
			return EXIT_OK;
		} else {
			fprintf(stderr, "revo: %s: unknown option (see 'revo --help')\n", a);
			return EXIT_MISUSE;
		}
	}
	if (!cli.store_dir || !*cli.store_dir)
		cli.store_dir = "./revo-store";
	if (i >= argc) {
		fprintf(stderr, "revo: usage: missing command (see 'revo --help')\n");
		return EXIT_MISUSE;
	}
	if (strcmp(argv[i], "help") == 0) {
		if (i + 1 >= argc) {
			usage(stdout);
			return EXIT_OK;
		}
		int w;
		const struct command *c = find(argc - i - 1, argv + i + 1, &w);
		if (!c) {
			fprintf(stderr, "revo: help: unknown command '%s' (see 'revo --help')\n",
				argv[i + 1]);
			return EXIT_MISUSE;
		}
		printf("usage: %s\n", c->usage);
		return EXIT_OK;
	}
	int words = 0;
	const struct command *c = find(argc - i, argv + i, &words);
	if (!c) {
		if (is_group(argv[i]))
			fprintf(stderr,
				"revo: %s: unknown or missing subcommand%s%s (see 'revo --help')\n",
				argv[i], i + 1 < argc ? " " : "", i + 1 < argc ? argv[i + 1] : "");
		else
			fprintf(stderr, "revo: %s: unknown command (see 'revo --help')\n", argv[i]);
		return EXIT_MISUSE;
	}
	char name[64];
	snprintf(name, sizeof(name), "%s%s%s", c->word1, c->word2 ? " " : "",
		 c->word2 ? c->word2 : "");
	cli.cmd = name;
	/* the command as typed, for the journal: "revoke --cn web-1 --reason keyCompromise" */
	size_t off = 0;
	for (int k = i; k < argc && off + 1 < sizeof(cli.cmdline); k++) {
		int w = snprintf(cli.cmdline + off, sizeof(cli.cmdline) - off, "%s%s",
				 k > i ? " " : "", argv[k]);
		if (w < 0)
			break;
		off += (size_t)w;
	}
	if (off >= sizeof(cli.cmdline))
		off = sizeof(cli.cmdline) - 1;
	cli.cmdline[off] = '\0';
	cli.usage = c->usage;
	/* the handler sees argv[0] = the command's last word, then its arguments */
	int sub_argc = argc - i - words + 1;
	char **sub_argv = argv + i + words - 1;
	int rc = c->run(&cli, sub_argc, sub_argv);
	cli_cleanup(&cli);
	return rc;
}
