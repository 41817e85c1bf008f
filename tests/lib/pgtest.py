"""PostgreSQL for the Python suites (stdlib only; the psql CLI of
postgresql-client-15 for queries).

    cl = pgtest.Cluster.start()         # a cluster of its own (tests/lib/pg-cluster)
    uri = cl.create_database('a')       # postgresql://rsign@/a?host=...
    cl.halt(); cl.resume()              # stop it by PID and start it again
    cl.stop()                           # by PID, directory removed (also at exit)

    pgtest.fresh_database()             # under tests/lib/with-pg: a new database
                                        # in its cluster, else None
    pgtest.query(uri, sql)              # the first column of the first row (text)
    pgtest.rows(uri, sql, params)       # every row, sqlite3-style ? params
    pgtest.execute(uri, [(sql, params)])  # statements in one transaction

Suites run in parallel never share a cluster: each with-pg run, and each
Cluster.start(), has its own directory and unix socket."""

import atexit
import itertools
import os
import subprocess
import tempfile
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
PG_CLUSTER = os.path.join(HERE, 'pg-cluster')
PSQL = '/usr/lib/postgresql/15/bin/psql'
_serial = itertools.count(1)


class PgError(Exception):
    pass


def _parts(uri):
    """host, port, user of a harness URI (postgresql://USER@/DB?host=DIR&port=P)."""
    u = urllib.parse.urlsplit(uri)
    q = urllib.parse.parse_qs(u.query)
    return q['host'][0], q.get('port', ['5432'])[0], u.username or 'rsign'


def uri_for(base_uri, dbname):
    host, port, user = _parts(base_uri)
    return 'postgresql://%s@/%s?host=%s&port=%s' % (user, dbname, host, port)


def query(uri, sql):
    """Runs sql with psql; the first column of the first row as text ('' when
    no row). Raises PgError on failure."""
    cmd = [PSQL if os.access(PSQL, os.X_OK) else 'psql', '-X', '-q', '-A', '-t',
           '-v', 'ON_ERROR_STOP=1', '-d', uri, '-c', sql]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise PgError('psql: %s: %s' % (sql, p.stderr.decode(errors='replace').strip()))
    out = p.stdout.decode().splitlines()
    return out[0] if out else ''


def literal(v):
    """v as an SQL literal: None, int, bytes (bytea) or str."""
    if v is None:
        return 'NULL'
    if isinstance(v, bool):
        return '1' if v else '0'
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (bytes, bytearray)):
        return "'\\x%s'::bytea" % bytes(v).hex()
    return "'%s'" % str(v).replace("'", "''")


def bind(sql, params=()):
    """sql with each ? (sqlite3's placeholder) replaced by the next param as
    a literal; the suites' statements hold no ? inside their own literals."""
    parts = sql.split('?')
    if len(parts) - 1 != len(params):
        raise PgError('%d placeholders, %d params: %s' % (len(parts) - 1, len(params), sql))
    out = parts[0]
    for v, rest in zip(params, parts[1:]):
        out += literal(v) + rest
    return out


def rows(uri, sql, params=()):
    """Every row of sql (sqlite3-style ? params) as tuples of text, an
    integer-looking field as an int (as sqlite3's fetchall gives counts)."""
    cmd = [PSQL if os.access(PSQL, os.X_OK) else 'psql', '-X', '-q', '-A', '-t',
           '-F', '\x1f', '-v', 'ON_ERROR_STOP=1', '-d', uri, '-c', bind(sql, params)]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise PgError('psql: %s: %s' % (sql, p.stderr.decode(errors='replace').strip()))

    def field(f):
        return int(f) if f.lstrip('-').isdigit() and len(f) <= 18 else f
    return [tuple(field(f) for f in line.split('\x1f'))
            for line in p.stdout.decode().splitlines()]


def execute(uri, statements):
    """(sql, params) pairs in one transaction."""
    query(uri, 'BEGIN; %s; COMMIT' % '; '.join(bind(q, a) for q, a in statements))


def create_database(base_uri, name):
    query(uri_for(base_uri, 'postgres'), 'CREATE DATABASE "%s"' % name)
    return uri_for(base_uri, name)


def fresh_database(prefix='dev'):
    """Under tests/lib/with-pg (RSIGN_TEST_PG_URI set): a new, empty database
    in its cluster, by URI. None otherwise (the suite runs on SQLite)."""
    base = os.environ.get('RSIGN_TEST_PG_URI')
    if not base:
        return None
    name = '%s_%d_%d' % (prefix, os.getpid(), next(_serial))
    return create_database(base, name)


def dump(uri):
    """Every row of the database as pg_dump's text (for at-rest checks)."""
    host, port, user = _parts(uri)
    db = urllib.parse.urlsplit(uri).path.lstrip('/')
    p = subprocess.run(['/usr/lib/postgresql/15/bin/pg_dump', '--data-only', '-h', host,
                        '-p', port, '-U', user, db], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise PgError('pg_dump: %s' % p.stderr.decode(errors='replace').strip())
    return p.stdout


def missing():
    """Why no cluster can start here (PostgreSQL 15 not installed), or None.
    A suite that starts clusters itself plans a skip with it."""
    initdb = os.path.join(os.environ.get('RSIGN_TEST_PG_BIN') or '/usr/lib/postgresql/15/bin',
                          'initdb')
    if not os.access(initdb, os.X_OK):
        return 'PostgreSQL 15 is not installed (%s; scripts/install-deps installs it)' % initdb
    return None


class Cluster:
    """A cluster of this process's own, stopped by PID at exit at the latest."""

    def __init__(self, dir_, uri):
        self.dir = dir_
        self.uri = uri

    @classmethod
    def start(cls):
        d = tempfile.mkdtemp(prefix='rsign-pg.', dir='/tmp')  # short: a socket path
        p = subprocess.run([PG_CLUSTER, 'start', d], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if p.returncode != 0:
            subprocess.run([PG_CLUSTER, 'stop', d])
            raise PgError('cannot start PostgreSQL: %s' % p.stderr.decode(errors='replace'))
        self = cls(d, p.stdout.decode().strip())
        atexit.register(self.stop)
        return self

    def create_database(self, name):
        return create_database(self.uri, name)

    def halt(self):
        """Stops the server (fast shutdown, by PID) and waits for it; data kept."""
        subprocess.run([PG_CLUSTER, 'halt', self.dir], check=True)

    def resume(self):
        subprocess.run([PG_CLUSTER, 'resume', self.dir], check=True)

    def stop(self):
        if self.dir and os.path.isdir(self.dir):
            subprocess.run([PG_CLUSTER, 'stop', self.dir])
        self.dir = None
