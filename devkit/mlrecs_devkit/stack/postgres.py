"""PostgreSQL from the machine's server binaries, in a cluster under the state folder, with
the pipeline's role, the apps' reader and writer roles, and Airflow's metadata database."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess

from mlrecs_devkit.stack.core import HOST, StackBase, StackError, _port_open
from mlrecs_devkit.stack.prerequisites import postgres_bin_dir

PG_DATABASE = "mlrecs"
PG_USER = "mlrecs"
# the apps' role: SELECT on the namespaces' reader views, granted by each publish; nothing else
PG_READER = "mlrecs_reader"
# the apps' role that records ratings: INSERT on the namespaces' rating_events, granted by each
# publish (foldin/events.py); nothing else, not even reading them back
PG_WRITER = "mlrecs_writer"
AIRFLOW_DATABASE = "airflow"


class Postgres(StackBase):
    def postgres_dsn(self, database: str = PG_DATABASE, role: str = PG_USER) -> str:
        cfg = self.config()
        password = {PG_USER: cfg["postgres_password"], PG_WRITER: self.writer_password()}.get(role) \
            or self.reader_password()
        return f"postgresql://{role}:{password}@{HOST}:{cfg['postgres_port']}/{database}"

    def reader_password(self) -> str:
        return self._ensure("postgres_reader_password", lambda: secrets.token_hex(12))

    def writer_password(self) -> str:
        return self._ensure("postgres_writer_password", lambda: secrets.token_hex(12))

    def _pg_user(self) -> str | None:
        """PostgreSQL refuses to run as root; as root, run it as the `postgres` system user."""
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise StackError("running as root, but there is no 'postgres' user to run PostgreSQL as") from None
        return "postgres"

    def start_postgres(self) -> None:
        cfg = self.config()
        pg_bin = postgres_bin_dir()
        data = self.state / "postgres" / "data"
        sockets = self.state / "postgres" / "run"
        user = self._pg_user()
        if not (data / "PG_VERSION").exists():
            data.mkdir(parents=True, exist_ok=True)
            sockets.mkdir(parents=True, exist_ok=True)
            pwfile = self.state / "postgres" / "superuser.pw"
            pwfile.write_text(cfg["postgres_superuser_password"])
            if user:
                for path in (data.parent, data, sockets, pwfile):
                    shutil.chown(path, user, user)
            subprocess.run(
                [str(pg_bin / "initdb"), "-D", str(data), "-U", "postgres", f"--pwfile={pwfile}",
                 "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C"],
                check=True, capture_output=True, user=user,
            )
            pwfile.unlink()
        if not self.running_pid("postgres", str(data)):
            # a postmaster.pid left by a killed server would block the start
            stale = data / "postmaster.pid"
            if stale.exists() and not _port_open(cfg["postgres_port"]):
                stale.unlink()
            self._spawn(
                "postgres",
                [str(pg_bin / "postgres"), "-D", str(data), "-p", str(cfg["postgres_port"]),
                 "-h", HOST, "-k", str(sockets)],
                user=user,
            )
            self._wait("PostgreSQL", lambda: _port_open(cfg["postgres_port"]) and self._pg_ready(), "postgres")
        self._bootstrap_postgres()

    def _superuser_connect(self):
        import psycopg

        return psycopg.connect(
            host=str(self.state / "postgres" / "run"), port=self.config()["postgres_port"],
            user="postgres", dbname="postgres", autocommit=True, connect_timeout=3,
        )

    def _pg_ready(self) -> bool:
        try:
            with self._superuser_connect():
                return True
        except Exception:
            return False

    def _bootstrap_postgres(self) -> None:
        from psycopg import sql

        password = self.config()["postgres_password"]
        with self._superuser_connect() as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (PG_USER,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(
                sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(PG_USER), sql.Literal(password))
            )
            for database in (PG_DATABASE, AIRFLOW_DATABASE):
                if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
                    conn.execute(
                        sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(PG_USER))
                    )
            for role, password in ((PG_READER, self.reader_password()), (PG_WRITER, self.writer_password())):
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
                conn.execute(sql.SQL(("ALTER" if exists else "CREATE") + " ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(password)))
            conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(AIRFLOW_DATABASE)))
            for role in (PG_READER, PG_WRITER):
                conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                    sql.Identifier(PG_DATABASE), sql.Identifier(role)))
