"""What the operations tests share: the whole system (tests/gateway/system.py) started on the
databases and roles of deploy/postgres/, and libpq URLs on the test cluster for a role."""
import os
import subprocess
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "gateway"))
from system import System, admin_sql, psql_bin  # noqa: E402,F401 pylint: disable=wrong-import-position


def url_as(role, db, base=None):
    """PX_TEST_PG_URL (or base) with another user and database."""
    u = urllib.parse.urlsplit(base or os.environ["PX_TEST_PG_URL"])
    netloc = "%s@%s" % (role, u.netloc.rsplit("@", 1)[-1])
    return urllib.parse.urlunsplit((u.scheme, netloc, "/" + db, u.query, u.fragment))


def psql(url, sql, check=True):
    """(exit status, stdout, stderr) of one statement."""
    p = subprocess.run([psql_bin(), url, "-X", "-v", "ON_ERROR_STOP=1", "-qAt", "-F", "\t",
                        "-c", sql], stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if check and p.returncode != 0:
        raise RuntimeError("psql %s: %s" % (sql, p.stderr.decode(errors="replace")))
    return p.returncode, p.stdout.decode(), p.stderr.decode(errors="replace")


def setup_roles(admin_url, dbs):
    """deploy/postgres/setup.sh for {service: database}."""
    env = dict(os.environ)
    env["PX_PSQL"] = psql_bin()
    subprocess.run([os.path.join(ROOT, "deploy", "postgres", "setup.sh"), admin_url] +
                   ["%s=%s" % (svc, db) for svc, db in sorted(dbs.items())],
                   check=True, env=env, stdout=subprocess.DEVNULL)


class RoleSystem(System):
    """A System whose services serve as px_<service> and migrate as px_<service>_owner."""

    def __init__(self, *args, premigrated=(), **kwargs):
        super().__init__(*args, **kwargs)
        # services whose database an older install made and migrated as the superuser
        self.premigrated = set(premigrated)
        self.migrate = True  # False: the services get no PX_DB_MIGRATE_URL

    def runtime_url(self, service):
        return url_as("px_" + service, self.dbs[service])

    def owner_url(self, service):
        return url_as("px_%s_owner" % service, self.dbs[service])

    def _spawn(self, name, argv, env):
        service = "activation" if name.startswith("activation") else name
        if service in self.dbs and "PX_DB_URL" in env:
            env = dict(env)
            env["PX_DB_URL"] = self.runtime_url(service)
            if self.migrate:
                env["PX_DB_MIGRATE_URL"] = self.owner_url(service)
        return super()._spawn(name, argv, env)

    def start(self, demo=True):
        for service in self.premigrated:
            admin_sql("CREATE DATABASE %s" % self.dbs[service])
            self._premigrate(service)
        setup_roles(os.environ["PX_TEST_PG_URL"], self.dbs)
        self.write_tokens()
        self.start_roster()
        self.start_activation()
        if demo:
            self.load_demo()
        self.start_gateway()
        self.wait_ready()
        return self

    def _premigrate(self, service):
        """Starts the service once as the superuser (what quickstart did before the roles), so
        its tables belong to postgres; stops it."""
        url = url_as(urllib.parse.urlsplit(os.environ["PX_TEST_PG_URL"]).username or "postgres",
                     self.dbs[service])
        binary = self.bin("services/%s/px-%s" % (service, service))
        env = dict(os.environ, PX_DB_URL=url, PX_LISTEN="tcp://127.0.0.1:0",
                   PX_CITIZEN_KEY=self.secret, PX_PUB_ENDPOINT="", PX_LOG_LEVEL="warn")
        with open(self.log(service + "-premigrate"), "ab") as err:
            p = subprocess.Popen([binary], env=env, stdout=subprocess.PIPE, stderr=err)
            line = p.stdout.readline().decode()
            p.terminate()
            p.wait(timeout=15)
        if not line.startswith("READY"):
            raise RuntimeError("%s did not start to migrate: %s" % (service, line))


def run_cases(cases, argv, **system_args):
    """system.run_cases on a RoleSystem."""
    return System.run_cases(cases, argv, system_class=RoleSystem, **system_args)


# ---------------------------------------------------------------- PostgreSQL clusters of a test
PG_BINDIR = os.environ.get("PX_PG_BINDIR", "/usr/lib/postgresql/15/bin")


def pg_os_user():
    """The system user a cluster runs as when we are root (the server refuses root)."""
    if os.geteuid() != 0:
        return None
    import pwd  # pylint: disable=import-outside-toplevel
    for name in ("postgres", "pxtest"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and neither postgres nor pxtest exists")


class Cluster:
    """A PostgreSQL cluster of the test's own, in a directory it removes: made by initdb, or
    as a streaming replica of another (pg_basebackup -R)."""

    def __init__(self, base, name, port):
        self.dir = os.path.join(base, name)
        self.data = os.path.join(self.dir, "data")
        self.port = port
        self.user = pg_os_user()
        self.url = "postgresql://postgres@127.0.0.1:%d/postgres" % port
        os.makedirs(self.dir)
        if self.user:
            subprocess.run(["chown", "-R", self.user, base], check=True)

    def run(self, *argv, check=True):
        argv = [os.path.join(PG_BINDIR, argv[0])] + list(argv[1:])
        if self.user:
            argv = ["runuser", "-u", self.user, "--"] + argv
        return subprocess.run(argv, cwd=self.dir, check=check, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)

    def _conf(self, text):
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(text)

    def initdb(self):
        self.run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "-E", "UTF8",
                 "--locale=C.UTF-8")
        self._conf("\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n"
                   "port = %d\nfsync = off\nwal_level = replica\nmax_wal_senders = 5\n"
                   "max_connections = 100\n" % (self.dir, self.port))
        return self

    def basebackup_of(self, primary):
        """A hot standby streaming from primary (which must run)."""
        self.run("pg_basebackup", "-D", self.data, "-R", "-X", "stream", "-h", "127.0.0.1",
                 "-p", str(primary.port), "-U", "postgres")
        self._conf("\nport = %d\nunix_socket_directories = '%s'\nhot_standby = on\n"
                   % (self.port, self.dir))
        return self

    def start(self):
        p = self.run("pg_ctl", "-D", self.data, "-w", "-t", "60", "-l",
                     os.path.join(self.dir, "log"), "start", check=False)
        if p.returncode != 0:
            raise RuntimeError("cluster %s did not start: %s %s" % (
                self.dir, p.stdout.decode(errors="replace"),
                open(os.path.join(self.dir, "log"), errors="replace").read()[-2000:]))
        return self

    def stop(self, mode="fast"):
        self.run("pg_ctl", "-D", self.data, "-w", "-t", "60", "-m", mode, "stop", check=False)

    def running(self):
        return self.run("pg_ctl", "-D", self.data, "status", check=False).returncode == 0

    def db_url(self, db, role="postgres"):
        return url_as(role, db, self.url)
