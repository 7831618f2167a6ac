/*
 * completion.c - pxctl completion bash: the bash completion script.
 *
 * Made from the command table rather than kept as a file beside it, so that a
 * subcommand added to the table completes without anyone editing a script. The
 * script asks pxctl itself for the rest when it is needed: a command's flags from
 * its --help (the px_config table lists every flag, a switch by its default "off",
 * so the script also knows which flags take a value), and `pxctl call`'s methods
 * from `pxctl call --list SERVICE`. File names complete where nothing else does
 * (a CSV to import, --file, --dir).
 *
 *   source <(pxctl completion bash)                         this shell
 *   pxctl completion bash > /etc/bash_completion.d/pxctl    every shell
 */
#include <stdio.h>
#include <string.h>

#include "completion.h"
#include "pxctl.h"

#ifndef PX_VERSION
#define PX_VERSION "0.0.0"
#endif

/* After the table's parts: the completion function itself. */
static const char s_script[] =
    "# The --help text of \"pxctl CMD [ACTION]\", kept while the command line names the same.\n"
    "_pxctl_help() {\n"
    "    local key=\"$*\"\n"
    "    if [ \"${_pxctl_help_key-}\" != \"$key\" ]; then\n"
    "        _pxctl_help_key=\"$key\"\n"
    "        _pxctl_help_text=\"$(\"$_pxctl_bin\" \"$@\" --help 2>/dev/null)\"\n"
    "    fi\n"
    "    printf '%s\\n' \"$_pxctl_help_text\"\n"
    "}\n"
    "\n"
    "_pxctl() {\n"
    "    local cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"${COMP_WORDS[COMP_CWORD - 1]}\"\n"
    "    local cmd=\"${COMP_WORDS[1]}\" help switches flags w i\n"
    "    local -a sub=() args=()\n"
    "    _pxctl_bin=\"${COMP_WORDS[0]}\"\n"
    "    COMPREPLY=()\n"
    "    if [ \"$COMP_CWORD\" -eq 1 ]; then\n"
    "        mapfile -t COMPREPLY < <(compgen -W \"$_pxctl_commands --help --version\" -- "
    "\"$cur\")\n"
    "        return 0\n"
    "    fi\n"
    "    # an action may have flags of its own: tokens add, keys gen\n"
    "    if [ \"$COMP_CWORD\" -gt 2 ] && [[ \" $(_pxctl_first \"$cmd\") \" == *\" "
    "${COMP_WORDS[2]} \"* ]]; then\n"
    "        sub=(\"${COMP_WORDS[2]}\")\n"
    "    fi\n"
    "    help=\"$(_pxctl_help \"$cmd\" \"${sub[@]}\")\"\n"
    "    # the table of flags: FLAG ENVIRONMENT DEFAULT DESCRIPTION; a switch defaults to off\n"
    "    flags=\"$(printf '%s\\n' \"$help\" | awk '$1 ~ /^--/ {print $1}')\"\n"
    "    switches=\" $(printf '%s\\n' \"$help\" | awk '$1 ~ /^--/ && $3 == \"off\" {print $1}' "
    "| tr '\\n' ' ') \"\n"
    "    for ((i = 2; i < COMP_CWORD; i++)); do\n"
    "        w=\"${COMP_WORDS[i]}\"\n"
    "        if [[ \"$w\" == --*=* ]]; then\n"
    "            continue\n"
    "        elif [[ \"$w\" == -?* ]]; then\n"
    "            if [[ \"$switches\" != *\" $w \"* && \" $flags \" == *\" $w \"* ]]; then\n"
    "                ((i++)) # its value\n"
    "            fi\n"
    "            continue\n"
    "        fi\n"
    "        args+=(\"$w\")\n"
    "    done\n"
    "    if [[ \"$prev\" == --* && \"$switches\" != *\" $prev \"* && \" $flags \" == *\" $prev "
    "\"* ]]; then\n"
    "        case \"$prev\" in\n"
    "        --file | --dir | --pid-file | --*-file) mapfile -t COMPREPLY < <(compgen -f -- "
    "\"$cur\") ;;\n"
    "        esac\n"
    "        return 0\n"
    "    fi\n"
    "    if [[ \"$cur\" == -* ]]; then\n"
    "        mapfile -t COMPREPLY < <(compgen -W \"$flags --help\" -- \"$cur\")\n"
    "        return 0\n"
    "    fi\n"
    "    case \"$cmd ${#args[@]}\" in\n"
    "    \"call 1\")\n"
    "        w=\"$(\"$_pxctl_bin\" call --list \"${args[0]}\" 2>/dev/null | awk '{print $1}')\"\n"
    "        mapfile -t COMPREPLY < <(compgen -W \"$w\" -- \"$cur\")\n"
    "        ;;\n"
    "    \"help 0\")\n"
    "        mapfile -t COMPREPLY < <(compgen -W \"$_pxctl_commands\" -- \"$cur\")\n"
    "        ;;\n"
    "    *\" 0\")\n"
    "        w=\"$(_pxctl_first \"$cmd\")\"\n"
    "        if [ -n \"$w\" ]; then\n"
    "            mapfile -t COMPREPLY < <(compgen -W \"$w\" -- \"$cur\")\n"
    "        else\n"
    "            mapfile -t COMPREPLY < <(compgen -f -- \"$cur\")\n"
    "        fi\n"
    "        ;;\n"
    "    *)\n"
    "        mapfile -t COMPREPLY < <(compgen -f -- \"$cur\")\n"
    "        ;;\n"
    "    esac\n"
    "    return 0\n"
    "}\n"
    "\n"
    "complete -F _pxctl pxctl\n";

static int s_bash(void)
{
    printf("# bash completion for pxctl %s, made by `pxctl completion bash`.\n"
           "#   source <(pxctl completion bash)                         this shell\n"
           "#   pxctl completion bash > /etc/bash_completion.d/pxctl    every shell\n\n",
           PX_VERSION);
    printf("_pxctl_commands=\"");
    for (size_t i = 0; i < pxctl_ncommands; i++) {
        printf("%s%s", i ? " " : "", pxctl_commands[i].name);
    }
    printf("\"\n\n# The words that complete a command's first argument.\n"
           "_pxctl_first() {\n    case \"$1\" in\n");
    for (size_t i = 0; i < pxctl_ncommands; i++) {
        if (pxctl_commands[i].first_args) {
            printf("    %s) echo \"%s\" ;;\n", pxctl_commands[i].name,
                   pxctl_commands[i].first_args);
        }
    }
    printf("    esac\n}\n\n");
    fputs(s_script, stdout);
    return fflush(stdout) == 0 ? PXCTL_EXIT_OK : PXCTL_EXIT_FAILED;
}

static const pxctl_command_t s_cmd = {
    .name = "completion",
    .synopsis = "bash",
    .summary = "the bash completion script, on stdout",
    .details = "Load it in this shell:   source <(pxctl completion bash)\n"
               "or for every shell:      pxctl completion bash > "
               "/etc/bash_completion.d/pxctl",
    .min_args = 1,
    .max_args = 1,
};

int pxctl_completion_main(int argc, char **argv)
{
    pxctl_args_t args;
    int rc = PXCTL_EXIT_FAILED;
    if (!pxctl_args_parse(&s_cmd, argc, argv, &args, &rc)) {
        return rc;
    }
    if (strcmp(args.pos[0], "bash") != 0) {
        pxctl_err(s_cmd.name, "only bash is known, not '%.32s'", args.pos[0]);
        rc = PXCTL_EXIT_USAGE;
    } else {
        rc = s_bash();
    }
    pxctl_args_free(&args);
    return rc;
}
