#!/usr/bin/env python3
"""pxctl import against the whole running system, started empty (tests/gateway/system.py).

The demo's CSV files go in once and a second time changes nothing; bad rows are reported with
their file and line, all of them, and write nothing; a 50,000-row file with one bad phone number
on line 49,991 writes none of its rows; a bad volunteer keeps the new units of the same import
out too; --dry-run writes nothing; output to a pipe holds no progress-bar escapes, and a terminal
gets the bar. The cases run in the order of the table at the end (the first loads the demo).
"""
import os
import pty
import re
import select
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "gateway"))
from system import ROOT, run_cases  # noqa: E402

DATA = os.environ.get("PX_DEMO_DATA") or os.path.join(os.path.dirname(ROOT), "shared", "data",
                                                      "thuan-an")
DEMO = ["units", os.path.join(DATA, "units.csv"),
        "volunteers", os.path.join(DATA, "volunteers.csv"),
        "campaigns", os.path.join(DATA, "campaign.csv"),
        "waves", os.path.join(DATA, "waves.csv"),
        "targets", os.path.join(DATA, "targets.csv")]
TMP = tempfile.mkdtemp(prefix="px-import-test-")
VOL_HEADER = "code,full_name,rank,department,union_role,phone\n"


def run(system, *args, timeout=120):
    """pxctl with the system's settings, stdout and stderr pipes: (status, stdout, stderr)."""
    env = dict(os.environ)
    env.update(system.env())
    env["USER"] = "op-import"
    p = subprocess.run([system.bin("services/pxctl/pxctl")] + list(args), env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    # Piped: plain lines, never a progress bar's carriage return or escape sequence.
    expect("\r" not in out + err and "\x1b" not in out + err,
           "piped output holds no terminal control: %r" % (out + err)[:300])
    return p.returncode, out, err


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def write(name, text, mode="w"):
    path = os.path.join(TMP, name)
    with open(path, mode) as f:
        f.write(text)
    return path


def lines_of(path):
    with open(path, encoding="utf-8") as f:
        return sum(1 for line in f if line.strip()) - 1


def count(system, service, query):
    return int(system.sql(service, query)[0][0])


def snapshot(system):
    """Everything an import may write, as counts and the audit trail's length."""
    return {
        "units": count(system, "roster", "SELECT count(*) FROM units"),
        "volunteers": count(system, "roster", "SELECT count(*) FROM volunteers"),
        "campaigns": count(system, "roster", "SELECT count(*) FROM campaigns"),
        "waves": count(system, "roster", "SELECT count(*) FROM waves"),
        "audit": count(system, "roster", "SELECT count(*) FROM audit"),
        "staged": count(system, "roster", "SELECT count(*) FROM import_rows"),
        "targets": count(system, "activation", "SELECT count(*) FROM targets"),
    }


# ------------------------------------------------------------------ cases

def demo_twice(system):
    before = snapshot(system)
    expect(before["units"] == 0 and before["targets"] == 0, "the system starts empty: %s" % before)
    rc, out, err = run(system, "import", *DEMO)
    expect(rc == 0, "import of the demo: %d %s %s" % (rc, out, err))
    after = snapshot(system)
    for kind, name in (("units", "units"), ("volunteers", "volunteers"),
                       ("campaigns", "campaign"), ("waves", "waves"), ("targets", "targets")):
        n = lines_of(os.path.join(DATA, name + ".csv"))
        expect(after[kind] == n, "%s: %d stored, %d in the file" % (kind, after[kind], n))
        expect("%s: inserted=%d updated=0 unchanged=0" % (kind, n) in out,
               "%s counted: %s" % (kind, out))
    expect("committed" in out, "the commit is reported: %s" % out)
    # The campaign's area: the one district of the units file.
    expect(system.sql("roster", "SELECT unit_code FROM campaigns")[0][0] == "725",
           "the campaign's unit is the district of the wards")
    for f in ("units.csv", "volunteers.csv", "targets.csv"):
        expect(re.search(r"%s: \d+ rows read, to the end" % re.escape(f), err),
               "a plain progress line for %s: %s" % (f, err))

    rc, out, err = run(system, "import", *DEMO)
    expect(rc == 0, "the demo again: %d %s" % (rc, err))
    again = snapshot(system)
    expect(again == after, "the same files twice change nothing: %s -> %s" % (after, again))
    for kind in ("units", "volunteers", "campaigns", "waves", "targets"):
        expect(re.search(r"^%s: inserted=0 updated=0 unchanged=\d+$" % kind, out, re.M),
               "%s all unchanged: %s" % (kind, out))


def bad_rows_with_lines(system):
    before = snapshot(system)
    path = write("bad-volunteers.csv", VOL_HEADER +
                 "BR0001,Nguyễn Văn Một,,,,0912345678\n"          # line 2: fine
                 "BR0002,Trần Văn Hai,,,,12345\n"                  # line 3: phone
                 "BR0003,Lê Văn Ba,,,,0912345679\n"                # line 4: fine
                 "BR0004,Phạm Văn Bốn,,,0912345670\n"              # line 5: five fields
                 "\"BR0005\",\"Hồ \"\"Năm\"\", Văn\",,,,0912345671\n"  # line 6: fine, quoted
                 "BR0009,Lý Văn Chín,,\"Phòng\nA\",,0912345675\n"  # lines 7-8: a line break
                 "BR0006,Đỗ Văn \"Sáu\",,,,0912345672\n"           # line 9: stray quote
                 "BR0001,Nguyễn Văn Bảy,,,,0912345673\n"           # line 10: BR0001 again
                 "BR 0008,Vũ Văn Tám,,,,0912345674\n")             # line 11: code
    with open(os.path.join(TMP, "bad-utf8.csv"), "wb") as f:
        f.write(VOL_HEADER.encode() + b"BU0001,Ng\xffuyen,,,,0912345678\n"
                b"BU0002,L\xc3\xaa V\xc4\x83n,,,,0912345679\n")
    bad_utf8 = os.path.join(TMP, "bad-utf8.csv")
    rc, out, err = run(system, "import", "volunteers", path)
    expect(rc == 1, "bad rows: exit 1, got %d" % rc)
    for line, field in ((3, "phone"), (5, "(row)"), (7, "department"), (9, "(row)"),
                        (10, "(row)"), (11, "code")):
        expect("%s:%d: %s:" % (path, line, field) in err, "line %d reported: %s" % (line, err))
    for line in (2, 4, 6, 8):
        expect("%s:%d:" % (path, line) not in err, "line %d is fine: %s" % (line, err))
    expect("appears twice in the file (first on line 2)" in err,
           "a repeated code names the line of the first: %s" % err)
    expect("6 bad row(s); nothing was written" in err, "the summary: %s" % err)
    rc, _, err = run(system, "import", "volunteers", bad_utf8)
    expect(rc == 1 and "%s:2: (row): field 2 is not valid UTF-8" % bad_utf8 in err,
           "invalid UTF-8 refused with its line: %s" % err)
    expect(snapshot(system) == before, "bad rows write nothing")

    # Missing columns and a file without a header.
    nohdr = write("no-columns.csv", "code,name\nX1,Y\n")
    rc, _, err = run(system, "import", "units", nohdr)
    expect(rc == 1 and "no column level" in err and "no column parent_code" in err,
           "missing columns named: %s" % err)
    empty = write("empty.csv", "")
    rc, _, err = run(system, "import", "waves", empty)
    expect(rc == 1 and "no header row" in err, "an empty file: %s" % err)
    # A bad target: reported against its line; the roster's rows of the same run stay out.
    targets = write("bad-targets.csv", "campaign,unit_code,target_activated\n"
                    "tn-cuoi-tuan-2023,25966,10850\n"
                    "tn-cuoi-tuan-2023,NOSUCH,5\n"
                    "tn-cuoi-tuan-2023,25963,many\n")
    rc, _, err = run(system, "import", "targets", targets)
    expect(rc == 1 and "%s:3: unit_code:" % targets in err and "%s:4: target:" % targets in err,
           "bad targets with their lines: %s" % err)
    expect(snapshot(system) == before, "bad targets write nothing")


def fifty_thousand_one_bad(system):
    before = snapshot(system)
    rows = [VOL_HEADER]
    for i in range(2, 50002):  # line i holds volunteer i
        phone = "0123" if i == 49991 else "09%08d" % i
        rows.append("FT%06d,Nguyễn Văn Số %d,Trung úy,Phòng Tham mưu,Đoàn viên,%s\n"
                    % (i, i, phone))
    path = write("fifty-thousand.csv", "".join(rows))
    rc, out, err = run(system, "import", "volunteers", path)
    expect(rc == 1, "one bad row of 50,000: exit 1, got %d (%s)" % (rc, err))
    expect("%s:49991: phone:" % path in err, "line 49,991 named: %s" % err[-500:])
    expect("nothing was written" in err, "and the message says nothing was written")
    expect(len(re.findall(r"^%s:\d+:" % re.escape(path), err, re.M)) == 1,
           "only that row is reported")
    expect(re.search(r"fifty-thousand.csv: 50000 rows read, to the end", err),
           "the whole file was read: %s" % err[-500:])
    expect(snapshot(system) == before, "none of the 50,000 rows was written")


def bad_volunteer_no_unit(system):
    before = snapshot(system)
    units = write("new-units.csv", "code,name,level,parent_code\n"
                  "25966-99,Khu phố Mới,neighborhood,25966\n")
    vols = write("one-bad.csv", VOL_HEADER + "NU0001,Ngô Văn Mới,,,,0912345678\n"
                 "NU0002,Ngô Văn Sai,,,,0000\n")
    rc, out, err = run(system, "import", "units", units, "volunteers", vols)
    expect(rc == 1 and "%s:3: phone:" % vols in err, "the bad volunteer: %d %s" % (rc, err))
    expect(count(system, "roster", "SELECT count(*) FROM units WHERE code = '25966-99'") == 0,
           "no new unit from units.csv")
    expect(snapshot(system) == before, "nothing of either file written")


def dry_run_writes_nothing(system):
    before = snapshot(system)
    units = write("dry-units.csv", "code,name,level,parent_code\n"
                  "25966-98,Khu phố Thử,neighborhood,25966\n")
    vols = write("dry-vols.csv", VOL_HEADER + "DR0001,Ngô Văn Thử,,,,0912345678\n")
    rc, out, err = run(system, "import", "--dry-run", "units", units, "volunteers", vols)
    expect(rc == 0, "a clean dry run: %d %s" % (rc, err))
    expect("units: would be inserted=1" in out and "volunteers: would be inserted=1" in out,
           "what it would do: %s" % out)
    expect("nothing was written" in out, "and that it wrote nothing: %s" % out)
    expect(snapshot(system) == before, "--dry-run writes nothing")
    # A dry run finds the service's refusals too.
    bad = write("dry-bad.csv", VOL_HEADER + "DR0002,Ngô Văn Sai,,,,0000\n")
    rc, _, err = run(system, "import", "-n", "volunteers", bad)
    expect(rc == 1 and "%s:2: phone:" % bad in err, "a dry run reports bad rows: %s" % err)


def usage_errors(system):
    for args, what in ((["import", "units"], "a kind without a file"),
                       (["import", "people", "x.csv"], "an unknown kind"),
                       (["import", "units", "a.csv", "units", "b.csv"], "a kind twice"),
                       (["import", "--batch-rows=0", "units", "a.csv"], "a batch of 0")):
        rc, _, err = run(system, *args)
        expect(rc == 2, "%s: exit 2, got %d %s" % (what, rc, err))
    rc, _, err = run(system, "import", "units", os.path.join(TMP, "nonexistent.csv"))
    expect(rc == 1 and "nonexistent.csv" in err, "a missing file: %d %s" % (rc, err))
    rc, out, _ = run(system, "import", "--help")
    expect(rc == 0 and "all or nothing" in out and "10,000" in out,
           "--help says what happens to targets past one call")


def terminal_gets_a_bar(system):
    """stderr on a terminal: the bar, redrawn in place."""
    env = dict(os.environ)
    env.update(system.env())
    env["TERM"] = "xterm"
    master, slave = pty.openpty()
    p = subprocess.Popen([system.bin("services/pxctl/pxctl"), "import", "--dry-run",
                          "volunteers", os.path.join(DATA, "volunteers.csv")], env=env,
                         stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    got = b""
    while True:
        r, _, _ = select.select([master], [], [], 30)
        if not r:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        got += chunk
    out = p.stdout.read()
    rc = p.wait(timeout=30)
    os.close(master)
    expect(rc == 0, "dry run on a terminal: %d %s" % (rc, got))
    expect(b"\r\x1b[K" in got and b"100%" in got and b"[####" in got,
           "a bar on the terminal: %r" % got[:300])
    expect(b"\x1b" not in out, "stdout (a pipe) stays plain")


def main():
    build = os.environ.get("PX_BIN_DIR") or os.path.join(ROOT, "build")
    cases = [
        demo_twice,  # first: the rest run against the demo it loads
        bad_rows_with_lines,
        fifty_thousand_one_bad,
        bad_volunteer_no_unit,
        dry_run_writes_nothing,
        usage_errors,
        terminal_gets_a_bar,
    ]
    sys.exit(run_cases(cases, sys.argv[1:], demo=False, build=build, name="pximport"))


if __name__ == "__main__":
    main()
