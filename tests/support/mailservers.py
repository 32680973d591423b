"""Real mail servers for the bounce tests, each a private instance in a temp folder on
127.0.0.1 high ports, never the system's: Postfix (Debian package postfix) and Dovecot
IMAP (Debian package dovecot-imapd). Both need root (Postfix's master and Dovecot drop
privileges themselves); without root or the binaries the tests skip, saying why."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.support.daemon import wait_until
from tests.support.servers import port_reservation

POSTFIX = "/usr/sbin/postfix"
DOVECOT = "/usr/sbin/dovecot"


def need_root(what: str, binary: str) -> None:
    if not Path(binary).exists():
        pytest.skip(f"{what} is not installed ({binary}); .ci/services.sh installs it")
    if os.geteuid() != 0:
        pytest.skip(f"a private {what} needs root to start")


def wait_for_port(port: int, seconds: float = 20.0) -> bool:
    import socket

    deadline = time.monotonic() + seconds  # clock-ok: bounds the wait
    while time.monotonic() < deadline:  # clock-ok
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)  # polls until the server listens
    return False


class PrivatePostfix:
    """Postfix accepting mail on 127.0.0.1:port for `local_domain` (no such users there,
    so local(8) bounces every message with a DSN) and delivering mail for
    `bounce_domain` into the Maildir `mail/bounces/` (recipient_delimiter = +, so
    bounces+TAG@ lands there too)."""

    def __init__(self, local_domain: str = "example.test",
                 bounce_domain: str = "publisher.test"):
        # Postfix and Dovecot set SO_REUSEADDR: they can listen on a port held for them.
        self.reservation = port_reservation()
        self.root, self.port = server_folder("postfix"), self.reservation.getsockname()[1]
        self.conf, self.queue = self.root / "conf", self.root / "queue"
        self.maildir = self.root / "mail" / "bounces"
        self.log = self.root / "maillog"
        self.local_domain, self.bounce_domain = local_domain, bounce_domain

    def main_cf(self) -> str:
        r = self.root
        return f"""
compatibility_level = 3.6
config_directory = {self.conf}
queue_directory = {self.queue}
data_directory = {r}/data
daemon_directory = /usr/lib/postfix/sbin
command_directory = /usr/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = {self.log}
maillog_file_prefixes = {r}
myhostname = mx.{self.local_domain}
mydomain = {self.local_domain}
myorigin = {self.local_domain}
mydestination = {self.local_domain}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# Accept any local part, so the unknown user is a bounce (a DSN), not an SMTP refusal.
local_recipient_maps =
alias_maps =
alias_database =
mail_spool_directory = {r}/spool
recipient_delimiter = +
virtual_mailbox_domains = {self.bounce_domain}
virtual_mailbox_base = {r}/mail
virtual_mailbox_maps = regexp:{self.conf}/vmailbox
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
virtual_minimum_uid = 100
default_transport = error:5.7.1 no outside mail in tests
relayhost =
smtputf8_enable = no
biff = no
delay_warning_time = 0
"""

    def start(self) -> PrivatePostfix:
        need_root("Postfix", POSTFIX)
        for sub in ("conf", "queue", "data", "spool", "mail"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        nobody = pwd.getpwnam("nobody")
        os.chown(self.root / "mail", nobody.pw_uid, nobody.pw_gid)
        os.chown(self.root / "data", pwd.getpwnam("postfix").pw_uid, -1)
        os.chmod(self.root / "spool", 0o1777)
        (self.conf / "main.cf").write_text(self.main_cf())
        domain = self.bounce_domain.replace(".", r"\.")
        (self.conf / "vmailbox").write_text(f"/^[^@+]+(\\+.*)?@{domain}$/ bounces/\n")
        master = Path("/etc/postfix/master.cf").read_text().splitlines()
        (self.conf / "master.cf").write_text("\n".join(
            f"127.0.0.1:{self.port} inet n - n - - smtpd" if line.startswith("smtp ") and
            " inet " in line else line for line in master) + "\n")
        self.postfix("start")
        if not wait_for_port(self.port):
            raise RuntimeError(f"Postfix did not listen on {self.port}: {self.tail()}")
        return self

    def postfix(self, command: str) -> None:
        done = subprocess.run([POSTFIX, "-c", str(self.conf), command], capture_output=True,
                              text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"postfix {command} failed: {done.stderr} {self.tail()}")

    def stop(self) -> None:
        subprocess.run([POSTFIX, "-c", str(self.conf), "stop"], capture_output=True,
                       timeout=60)
        self.reservation.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def tail(self) -> str:
        return self.log.read_text()[-2000:] if self.log.exists() else "(no log)"

    def delivered(self, count: int) -> list[Path]:
        """Wait until the bounce Maildir holds `count` messages."""

        def found() -> list[Path]:
            new = self.maildir / "new"
            return sorted(new.glob("*")) if new.is_dir() else []

        try:
            return wait_until(lambda: len(found()) >= count and found(), f"{count} DSN(s)")
        except AssertionError:
            raise AssertionError(f"no DSN in {self.maildir}: {self.tail()}") from None


class PrivateDovecot:
    """Dovecot IMAP on 127.0.0.1:port with one user (password in `self.password`),
    mail in Maildir under the temp folder; plain-text login (no TLS) on loopback."""

    def __init__(self, user: str = "bounces", password: str = "s3cret-test"):
        self.reservation = port_reservation()
        self.root, self.port = server_folder("dovecot"), self.reservation.getsockname()[1]
        self.user, self.password = user, password

    def config(self) -> str:
        r = self.root
        return f"""
base_dir = {r}/run
state_dir = {r}/state
log_path = {r}/dovecot.log
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 100
mail_location = maildir:{r}/home/%u/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {r}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={r}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""

    def start(self) -> PrivateDovecot:
        need_root("Dovecot", DOVECOT)
        for sub in ("run", "state", "home"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        nobody = pwd.getpwnam("nobody")
        os.chown(self.root / "home", nobody.pw_uid, nobody.pw_gid)
        (self.root / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}\n")
        (self.root / "dovecot.conf").write_text(self.config())
        self.process = subprocess.Popen([DOVECOT, "-F", "-c", str(self.root / "dovecot.conf")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if not wait_for_port(self.port):
            self.stop()
            raise RuntimeError(f"Dovecot did not listen: {self.log()}")
        return self

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.reservation.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text()[-2000:] if path.exists() else "(no log)"

    def url(self, folder: str) -> str:
        return f"imap://{self.user}:{self.password}@127.0.0.1:{self.port}/{folder}"


def server_folder(what: str) -> Path:
    """A folder of its own under /tmp that the servers' unprivileged users can reach
    (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix=f"publisher-test-{what}-"))
    os.chmod(folder, 0o755)
    return folder
