#!/usr/bin/env python3
"""The PX_* tables of docs/OPERATIONS.md, made from the binaries' --help.

    config_doc.py [--build DIR] --write   rewrites the tables between the config markers
    config_doc.py [--build DIR] --check   exit 1, naming them, when a variable of a --help is
                                          missing from the document or its default differs

Each program's table sits between `<!-- config:begin NAME -->` and `<!-- config:end NAME -->`:
px-roster, px-activation and px-gateway from their --help, pxctl from every command's and
action's --help (commands from `pxctl --help`, actions from the `pxctl CMD ACTION` lines of
`pxctl CMD --help`). A new option anywhere is documented by running --write (and then saying
more about it in the prose if it needs it)."""
import argparse
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DOC = os.path.join(ROOT, "docs", "OPERATIONS.md")
SERVICES = {"px-roster": "services/roster/px-roster",
            "px-activation": "services/activation/px-activation",
            "px-gateway": "services/gateway/px-gateway"}
PXCTL = "services/pxctl/pxctl"
ROW = re.compile(r"^  (--[a-z0-9-]+)\s{2,}(\S+)\s{2,}(\S+)\s{2,}(.*)$")


def helptext(build, binary, *args):
    p = subprocess.run([os.path.join(build, binary)] + list(args) + ["--help"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    return p.stdout.decode(errors="replace")


def rows(text):
    """[(flag, variable, default, description)] of a --help's option table (with a variable)."""
    out = []
    for line in text.splitlines():
        m = ROW.match(line)
        if m and m.group(2).startswith("PX_"):
            out.append((m.group(1), m.group(2), m.group(3), m.group(4).strip()))
    return out


def pxctl_rows(build):
    """{(variable, default): (flag, description, [commands])} over every pxctl command (a
    variable may have another default in some command: a row each)."""
    top = helptext(build, PXCTL)
    commands = re.findall(r"^  ([a-z][a-z-]*)\s{2,}", top.split("Commands:", 1)[-1].split(
        "\n\n", 1)[0], re.M)
    found = {}
    for cmd in commands:
        text = helptext(build, PXCTL, cmd)
        # A command with options of its own has none (`pxctl call roster ...` is an
        # argument); one without lists its actions as `pxctl CMD ACTION` lines.
        actions = [] if rows(text) else re.findall(
            r"^\s+pxctl %s ([a-z][a-z-]*)\b" % re.escape(cmd), text, re.M)
        targets = [[cmd, a] for a in dict.fromkeys(actions)] or [[cmd]]
        for t in targets:
            sub = helptext(build, PXCTL, *t) if len(t) > 1 else text
            for flag, var, default, desc in rows(sub):
                found.setdefault((var, default), (flag, desc, []))[2].append(" ".join(t))
    return found


def cell(text):
    return text.replace("|", "\\|")


def tables(build):
    """{program: markdown table}"""
    out = {}
    for name, binary in SERVICES.items():
        lines = ["| Variable | Flag | Default | What it sets |", "|---|---|---|---|"]
        for flag, var, default, desc in rows(helptext(build, binary)):
            lines.append("| `%s` | `%s` | %s | %s |" % (var, flag, "`%s`" % default
                                                        if default != "-" else "(unset)",
                                                        cell(desc)))
        out[name] = "\n".join(lines)
    lines = ["| Variable | Flag | Default | Commands | What it sets |", "|---|---|---|---|---|"]
    for (var, default), (flag, desc, cmds) in sorted(pxctl_rows(build).items()):
        lines.append("| `%s` | `%s` | %s | %s | %s |" % (
            var, flag, "`%s`" % default if default != "-" else "(unset)",
            ", ".join(dict.fromkeys(cmds)), cell(desc)))
    out["pxctl"] = "\n".join(lines)
    return out


def block(name):
    return re.compile(r"(<!-- config:begin %s -->)(.*?)(<!-- config:end %s -->)"
                      % (re.escape(name), re.escape(name)), re.S)


def documented(table):
    """{(variable, default)} of a generated table."""
    out = set()
    for line in table.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if cells and cells[0].startswith("`PX_"):
            out.add((cells[0].strip("`"), cells[2].strip("`") if cells[2] != "(unset)" else "-"))
    return out


def check(build, doc_text):
    problems = []
    for name, table in tables(build).items():
        m = block(name).search(doc_text)
        if not m:
            problems.append("%s: no <!-- config:begin %s --> ... end block" % (name, name))
            continue
        have = documented(m.group(2))
        want = documented(table)
        for var, default in sorted(want - have):
            other = sorted(d for v, d in have if v == var)
            if other:
                problems.append("%s: %s is documented with default %s, --help says %s"
                                % (name, var, " or ".join(other), default))
            else:
                problems.append("%s: %s (default %s) is not documented" % (name, var, default))
        for var, default in sorted(have - want):
            if not any(v == var for v, _ in want):
                problems.append("%s: %s is documented but no longer in --help" % (name, var))
    return problems


def write(build, doc_text):
    for name, table in tables(build).items():
        pat = block(name)
        if not pat.search(doc_text):
            raise SystemExit("docs/OPERATIONS.md has no config block for %s" % name)
        doc_text = pat.sub(lambda m, t=table: m.group(1) + "\n" + t + "\n" + m.group(3), doc_text)
    return doc_text


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.environ.get("PX_BIN_DIR") or os.path.join(ROOT, "build"))
    ap.add_argument("--doc", default=DOC)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--write", action="store_true")
    g.add_argument("--check", action="store_true")
    args = ap.parse_args()
    text = open(args.doc, encoding="utf-8").read()
    if args.write:
        new = write(args.build, text)
        if new != text:
            with open(args.doc, "w", encoding="utf-8") as f:
                f.write(new)
        return 0
    problems = check(args.build, text)
    for p in problems:
        print(p)
    if problems:
        print("fix: tests/ops/config_doc.py --write (with a built build/), then commit "
              "docs/OPERATIONS.md")
        return 1
    print("docs/OPERATIONS.md documents every PX_* variable with its default")
    return 0


if __name__ == "__main__":
    sys.exit(main())
