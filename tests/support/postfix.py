"""A private Postfix instance for one test: its own config_directory and queue_directory under a
temporary folder, smtpd on 127.0.0.1 and a free port, local delivery, logs in a file."""

from __future__ import annotations

import pwd
import shutil
import smtplib
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import free_port

# Only what this test needs, none of them chrooted (a chroot needs copies of /etc files).
_SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


@dataclass
class Postfix:
    folder: Path
    port: int

    @property
    def config(self) -> Path:
        return self.folder / "config"

    @property
    def log(self) -> str:
        path = self.folder / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def send(self, raw: bytes, sender: str, recipient: str) -> None:
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as smtp:
            smtp.sendmail(sender, [recipient], raw)

    def flush(self) -> None:
        subprocess.run(["postqueue", "-c", str(self.config), "-f"], check=True, timeout=30)

    def wait_for(self, condition: Callable[[], bool], seconds: float = 40) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.2)
        return condition()

    def stop(self) -> None:
        subprocess.run(
            ["postfix", "-c", str(self.config), "abort"], capture_output=True, timeout=30
        )


def start_postfix(
    folder: Path,
    main_cf: dict[str, str],
    aliases: str,
    master_extra: str = "",
    owned_aliases: tuple[str, str] | None = None,
) -> Postfix:
    """Write main.cf (on top of a private, loopback-only base), master.cf and aliases, start.

    `owned_aliases` (user, text): a second alias file owned by that user, as the README's alias
    route has it: local(8) runs its commands and file deliveries as that file's owner."""
    config, queue, data = folder / "config", folder / "queue", folder / "data"
    for path in (config, queue, data):
        path.mkdir(parents=True)
    shutil.chown(data, "postfix")
    port = free_port()
    settings = {
        "compatibility_level": "3.6",
        "queue_directory": str(queue),
        "data_directory": str(data),
        "maillog_file": str(folder / "maillog"),
        "maillog_file_prefixes": str(folder),
        "inet_interfaces": "127.0.0.1",
        "inet_protocols": "ipv4",
        "mynetworks": "127.0.0.0/8",
        "myhostname": "mx.notes.example.com",
        "alias_maps": f"hash:{config}/aliases"
        + (f", hash:{config}/owned-aliases" if owned_aliases else ""),
        "alias_database": f"hash:{config}/aliases",
        "smtputf8_enable": "no",
        "biff": "no",
        "default_transport": "error:this test machine sends no mail out",
        "delay_warning_time": "0",
        **main_cf,
    }
    (config / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
    (config / "master.cf").write_text(
        f"127.0.0.1:{port} inet n - n - - smtpd\n" + _SERVICES + master_extra
    )
    (config / "aliases").write_text(aliases)
    subprocess.run(["postalias", f"hash:{config}/aliases"], check=True, timeout=30)
    if owned_aliases:
        owner, text = owned_aliases
        owned = config / "owned-aliases"
        owned.write_text(text)
        subprocess.run(["postalias", f"hash:{owned}"], check=True, timeout=30)
        for path in (owned, owned.with_name("owned-aliases.db")):
            shutil.chown(path, owner, pwd.getpwnam(owner).pw_gid)
    started = subprocess.run(
        ["postfix", "-c", str(config), "start"], capture_output=True, text=True, timeout=60
    )
    if started.returncode != 0:
        raise RuntimeError(f"postfix did not start: {started.stderr}")
    postfix = Postfix(folder, port)
    postfix.wait_for(lambda: _accepts(port), 20)
    return postfix


def _accepts(port: int) -> bool:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=2) as smtp:
            return smtp.noop()[0] == 250
    except OSError:
        return False
