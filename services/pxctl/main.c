/*
 * main.c - pxctl, the operators' tool: one command line over the services' RPC,
 * the gateway's token file and the CURVE keys.
 *
 *   pxctl COMMAND [ARGS] [--flags]      pxctl --help, pxctl help COMMAND
 *
 * Subcommands are rows of a table (name, entry point, one line of help, words
 * completing the first argument), each in its own file as
 * `int pxctl_<name>_main(int argc, char **argv)`, so that adding one is a file and
 * a row, and `pxctl --help` and the bash completion follow from the table.
 * Everything a subcommand reads comes from its own px_config table (PX_* variable,
 * flag, --help), as in the services.
 *
 * Exit status is the same everywhere (pxctl.h): 0 done, 1 failed, 2 usage,
 * 3 a service unavailable, 4 a service not serving; scripts and monitoring can
 * tell "the call was refused" from "nobody answered".
 */
#include <stdio.h>
#include <string.h>

#include "call.h"
#include "completion.h"
#include "demo.h"
#include "health.h"
#include "import.h"
#include "keys.h"
#include "logs.h"
#include "progress.h"
#include "pxctl.h"
#include "tokens.h"

#ifndef PX_VERSION
#define PX_VERSION "0.0.0"
#endif

static int s_help_main(int argc, char **argv);

const pxctl_entry_t pxctl_commands[] = {
    {"call", pxctl_call_main, "call any method of a service, JSON (or protobuf) in and out",
     "roster activation"},
    {"health", pxctl_health_main, "every service's health and version", NULL},
    {"progress", pxctl_progress_main,
     "a campaign's progress by unit: target, collected, approved, activated", NULL},
    {"tokens", pxctl_tokens_main, "the gateway's API tokens: add, list, revoke", "add list revoke"},
    {"keys", pxctl_keys_main, "CURVE key pairs for the services' links", "gen"},
    {"import", pxctl_import_main,
     "CSV files into the roster and the activation service, all or nothing",
     "units volunteers campaigns waves targets"},
    {"logs", pxctl_logs_main, "the services' log lines, merged in time order; -f follows them live",
     NULL},
    {"demo", pxctl_demo_main, "the Thuận An demo: a generated first weekend of events", "events"},
    {"completion", pxctl_completion_main, "the bash completion script", "bash"},
    {"help", s_help_main, "help on a command", NULL},
};
const size_t pxctl_ncommands = sizeof pxctl_commands / sizeof pxctl_commands[0];

static const pxctl_entry_t *s_find(const char *name)
{
    for (size_t i = 0; i < pxctl_ncommands; i++) {
        if (strcmp(pxctl_commands[i].name, name) == 0) {
            return &pxctl_commands[i];
        }
    }
    return NULL;
}

static void s_usage(FILE *out)
{
    fprintf(out, "pxctl %s - the phuxanh operators' tool\n\n", PX_VERSION);
    fprintf(out, "Usage: pxctl COMMAND [ARGUMENTS] [--flag=value | --flag value]...\n\n");
    fprintf(out, "Commands:\n");
    for (size_t i = 0; i < pxctl_ncommands; i++) {
        fprintf(out, "  %-12s %s\n", pxctl_commands[i].name, pxctl_commands[i].summary);
    }
    fprintf(out,
            "\n`pxctl COMMAND --help` (or `pxctl help COMMAND`) lists a command's arguments and "
            "flags;\neach flag may also be given by its PX_* environment variable.\n"
            "\nExit status:\n"
            "  0  done\n"
            "  1  the operation failed (a call refused, a file not written)\n"
            "  2  usage: bad arguments, flags or settings; nothing was done\n"
            "  3  a service (or the gateway) could not be reached\n"
            "  4  a service answered that it is not serving (pxctl health)\n"
            "\nBash completion: source <(pxctl completion bash)\n");
}

static int s_help_main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        s_usage(stdout);
        return PXCTL_EXIT_OK;
    }
    const pxctl_entry_t *e = s_find(argv[1]);
    if (!e) {
        pxctl_err("help", "no command '%.64s' (pxctl --help lists them)", argv[1]);
        return PXCTL_EXIT_USAGE;
    }
    /* `pxctl help tokens add` is `pxctl tokens add --help` */
    char *args[8] = {argv[1]};
    int n = 1;
    for (int i = 2; i < argc && n < 6; i++) {
        args[n++] = argv[i];
    }
    args[n++] = "--help";
    args[n] = NULL;
    return e->main(n, args);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        s_usage(stderr);
        return PXCTL_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        s_usage(stdout);
        return PXCTL_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0) {
        printf("pxctl %s\n", PX_VERSION);
        return PXCTL_EXIT_OK;
    }
    const pxctl_entry_t *e = s_find(name);
    if (!e) {
        pxctl_err(NULL, "no command '%.64s' (pxctl --help lists them)", name);
        return PXCTL_EXIT_USAGE;
    }
    return e->main(argc - 1, argv + 1);
}
