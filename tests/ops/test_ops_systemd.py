#!/usr/bin/env python3
"""deploy/systemd/: `systemd-analyze verify` passes on every unit (pointed at the built
binaries: verify wants its ExecStart to exist) with nothing to say; each unit is Type=notify,
hardened, restarted on failure, runs as its own user and logs to journald; and every variable
its example environment file sets is one the binary's --help lists."""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("PX_BIN_DIR") or os.path.join(ROOT, "build")
UNITS = os.path.join(ROOT, "deploy", "systemd")
BINARIES = {"px-roster": "services/roster/px-roster",
            "px-activation": "services/activation/px-activation",
            "px-gateway": "services/gateway/px-gateway"}
REQUIRED = ["Type=notify", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
            "Restart=on-failure", "ProtectHome=yes", "CapabilityBoundingSet=",
            "StandardError=journal"]


def settings(path):
    """{key: [values]} of a unit file's assignments."""
    out = {}
    for line in open(path):
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            k, v = line.split("=", 1)
            out.setdefault(k.strip(), []).append(v.strip())
    return out


def help_vars(binary):
    text = subprocess.run([os.path.join(BUILD, binary), "--help"], stdout=subprocess.PIPE,
                          check=True).stdout.decode()
    return set(re.findall(r"\b(PX_[A-Z0-9_]+)\b", text))


def case_verify():
    if not shutil.which("systemd-analyze"):
        raise AssertionError("systemd-analyze is missing: deploy/lib/packages.sh installs "
                             "the systemd package")
    tmp = tempfile.mkdtemp(prefix="px-units-")
    try:
        for unit in sorted(glob.glob(os.path.join(UNITS, "*.service"))):
            name = os.path.basename(unit)[:-len(".service")]
            text = open(unit).read().replace("/usr/local/bin/%s" % name,
                                             os.path.join(BUILD, BINARIES[name]))
            with open(os.path.join(tmp, os.path.basename(unit)), "w") as f:
                f.write(text)
        units = sorted(glob.glob(os.path.join(tmp, "*.service")))
        assert len(units) == 3, units
        p = subprocess.run(["systemd-analyze", "verify", "--man=no"] + units,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = p.stdout.decode(errors="replace")
        assert p.returncode == 0 and not out.strip(), out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def case_hardened_notify_units():
    users = set()
    for name in BINARIES:
        s = settings(os.path.join(UNITS, name + ".service"))
        for req in REQUIRED:
            k, v = req.split("=", 1)
            assert v in s.get(k, []), (name, req)
        assert s["ExecStart"] == ["/usr/local/bin/" + name], (name, s["ExecStart"])
        assert s["User"][0] == name, (name, s["User"])
        users.add(s["User"][0])
        assert any(e.startswith("/etc/phuxanh/") for e in s["EnvironmentFile"]), name
    assert len(users) == 3
    sysusers = open(os.path.join(UNITS, "phuxanh.sysusers.conf")).read()
    for user in users:
        assert re.search(r"^u %s " % user, sysusers, re.M), user
    # systemd-sysusers reads the file as written (a dry run changes nothing).
    p = subprocess.run(["systemd-sysusers", "--dry-run",
                        os.path.join(UNITS, "phuxanh.sysusers.conf")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0 and "ignoring" not in out.lower(), out


def case_env_files_name_real_variables():
    for name, binary in BINARIES.items():
        known = help_vars(binary)
        assert "PX_LOG_LEVEL" in known, (binary, known)
        env = os.path.join(UNITS, "env", name[len("px-"):] + ".env")
        unit = settings(os.path.join(UNITS, name + ".service"))
        assigned = [l.split("=", 1)[0].lstrip("#") for l in open(env)
                    if re.match(r"^#?PX_[A-Z0-9_]+=", l)]
        assigned += [e.split("=", 1)[0] for e in unit.get("Environment", [])]
        assert assigned, env
        unknown = [v for v in assigned if v not in known]
        assert not unknown, (env, unknown)


CASES = [case_verify, case_hardened_notify_units, case_env_files_name_real_variables]


def main(argv):
    failed = 0
    for case in CASES:
        if argv and case.__name__ != argv[0]:
            continue
        try:
            case()
            print("ok   %s" % case.__name__)
        except Exception as e:  # noqa: BLE001 - a failed case is reported, not raised
            failed += 1
            print("FAIL %s: %s: %s" % (case.__name__, type(e).__name__, e))
    print("%d failed" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
