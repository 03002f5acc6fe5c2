"""Entrance for LMTP on a Unix socket, served by `syndicate run` ([inbound] lmtp_socket): the
pipe (`syndicate inbound receive`, see handover.py) hands each message over, and an MTA may
deliver straight to it (Postfix: `lmtp:unix:/path`). Each message runs through the pipeline
once; every recipient of it gets the same answer.

The answers keep the pipe's rules (stdin.py): 250 with the pipe's one line once the message is
recorded (refused too: too large, malformed), 451 on a transient problem (the MTA retries),
554 only for input that is not an email at all (nothing recorded). A message over
max_message_bytes is read to its end but only its first max_message_bytes + 1 bytes are kept.

Anyone who can open the socket can file mail: its file mode (lmtp_socket_mode) is the guard,
set before it accepts a connection, in a folder others may not write to.

Two commands beyond LMTP serve the daemon's own user only (the peer's uid, from the kernel:
SO_PEERCRED), whatever the socket's mode lets in. `XSETTINGS <digest>` compares the asker's
settings with the daemon's (settings_digest.py): the pipe hands a message over only after a 250,
so a pipe with another database or key files it itself, never into the daemon's. `XSTATUS`,
after a 250 to XSETTINGS, answers `syndicate status`; its answer (base64, any length) comes in
lines of `STATUS_LINE` characters.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from aiosmtpd.lmtp import LMTP

from syndicate.inbound.sources import handover, stdin
from syndicate.inbound.sources.handover import NO_RECIPIENT, PIPE_NAME

if TYPE_CHECKING:
    from syndicate.runtime import Runtime

log = logging.getLogger(__name__)

SOURCE = "lmtp"
# sun_path holds 108 bytes, the last one a NUL.
MAX_SOCKET_PATH = 107
# Messages filed at once (SQLite takes one writer at a time anyway).
FILERS = 2
# Sessions open at once. At the cap, the session idle longest (not in the middle of a message)
# is closed to make room, so idle connections can neither use up the daemon's file descriptors
# (systemd's default is 1,024) nor keep the MTA or the pipe out.
MAX_SESSIONS = 64
# A session that sends nothing for this long is closed (aiosmtpd's default is 300 s); the
# clock restarts with every command and every line of a message.
IDLE_SECONDS = 60.0
STATUS_LINE = 4000

# The daemon's answer to XSTATUS: (reply code, reply text) for the request's bytes.
StatusAnswer = Callable[[bytes], tuple[int, bytes]]


class ListenerError(Exception):
    """The socket cannot be served; the daemon runs on without it."""


def answer(
    runtime: Runtime, raw: bytes, size: int, recipients: list[str], *, source: str = SOURCE
) -> str:
    """File one message; the reply to DATA, one line per recipient."""
    from syndicate.inbound.pipeline import process

    if stdin.not_a_message(raw):
        return _each(recipients, f"554 5.6.0 {stdin.NOT_AN_EMAIL}")
    envelope = tuple(r for r in recipients if r.lower() != NO_RECIPIENT)
    try:
        outcome = process(runtime, raw, source=source, envelope_recipients=envelope, size=size)
    except Exception as exc:  # as the pipe's exit 75: the MTA keeps the message and retries
        log.warning("lmtp: temporary failure, the sender will retry: %s", exc)
        reason = " ".join(str(exc).split())[:300].encode("ascii", "replace").decode()
        return _each(recipients, f"451 4.3.0 temporary failure, retry later: {reason}")
    return _each(recipients, f"250 2.0.0 {stdin.describe(outcome)}")


def _each(recipients: list[str], line: str) -> str:
    return "\r\n".join(line for _ in recipients)


class Session(LMTP):
    """aiosmtpd's LMTP, with DATA read by us: kept up to the limit, counted to its end, so a
    message too large is still recorded (as refused) and lines of any length are taken."""

    def __init__(self, listener: Listener) -> None:
        super().__init__(
            listener,
            data_size_limit=None,
            enable_SMTPUTF8=True,
            hostname="syndicate",
            loop=listener.loop,
            timeout=IDLE_SECONDS,
        )
        self.listener = listener
        self.active_at = time.monotonic()
        self.in_message = False
        self.same_settings = False  # set by XSETTINGS

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.listener.open_sessions.add(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self.listener.open_sessions.discard(self)
        super().connection_lost(error)

    def _reset_timeout(self, duration: float | None = None) -> None:
        self.active_at = time.monotonic()
        super()._reset_timeout(duration)

    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed("LHLO"):
            return
        envelope = self.envelope
        if envelope is None or not envelope.rcpt_tos:
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        limit = self.listener.max_bytes
        kept, size, line_start = bytearray(), 0, True
        self.in_message = True
        while True:
            self._reset_timeout()
            try:
                chunk = await self._reader.readuntil(b"\r\n")
            except asyncio.LimitOverrunError as long_line:
                chunk = await self._reader.read(long_line.consumed)
            except asyncio.IncompleteReadError:
                return  # the client went away mid-message: nothing is filed
            if line_start and chunk == b".\r\n":
                break
            if line_start and chunk.startswith(b"."):
                chunk = chunk[1:]
            line_start = chunk.endswith(b"\r\n")
            size += len(chunk)
            if len(kept) <= limit:
                kept += chunk[: limit + 1 - len(kept)]
        source = "stdin" if self.session and self.session.host_name == PIPE_NAME else SOURCE
        if self._timeout_handle is not None:  # filing is our time, not the client's silence
            self._timeout_handle.cancel()
        status = await self.listener.file(bytes(kept), size, list(envelope.rcpt_tos), source)
        self._reset_timeout()
        self.in_message = False
        self._set_post_data_state()
        await self.push(status)

    def _from_our_user(self) -> bool:
        peer = self.transport.get_extra_info("socket") if self.transport else None
        return handover.our_user_at(peer)

    async def smtp_XSETTINGS(self, arg: str) -> None:
        if not self._from_our_user():
            await self.push("550 5.7.1 only the daemon's own user may ask")
            return
        digest = self.listener.settings_digest
        self.same_settings = digest is not None and arg == digest
        if not self.same_settings:
            await self.push("451 4.7.0 your settings are not the daemon's: do it yourself")
            return
        await self.push("250 2.0.0 the daemon's settings")

    async def smtp_XSTATUS(self, arg: str) -> None:
        answer = self.listener.status
        if answer is None:
            await self.push("502 5.5.1 not served here")
            return
        if not self._from_our_user():
            await self.push("550 5.7.1 only the daemon's own user may ask")
            return
        if not self.same_settings:
            await self.push("451 4.7.0 your settings are not the daemon's: answer it yourself")
            return
        if self._timeout_handle is not None:  # rendering is our time, not the client's silence
            self._timeout_handle.cancel()
        try:
            code, text = await self.loop.run_in_executor(
                self.listener.status_thread, answer, arg.encode("ascii")
            )
        except Exception as exc:  # the asker answers itself, and says what is wrong
            log.warning("lmtp: status not answered: %s", exc)
            code, text = 451, b"4.3.0 the daemon could not answer"
        self._reset_timeout()
        if code != 250:
            await self.push(f"{code} {text.decode('ascii', 'replace')}")
            return
        lines = [text[at : at + STATUS_LINE] for at in range(0, len(text), STATUS_LINE)] or [b""]
        marks = ["-"] * (len(lines) - 1) + [" "]
        reply = (f"250{m}{line.decode()}" for m, line in zip(marks, lines, strict=True))
        await self.push("\r\n".join(reply))


class Busy(asyncio.Protocol):
    """A connection over the cap while every session is in the middle of a message: 421."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(b"421 4.3.2 too many connections, try again later\r\n")
        transport.close()


class Listener:
    """The LMTP socket of `syndicate run`: an asyncio loop in a thread of its own; messages are
    filed in worker threads, so a slow one holds up neither the loop nor the daemon's jobs."""

    def __init__(
        self,
        runtime: Runtime,
        path: Path,
        mode: int,
        status: StatusAnswer | None = None,
        settings_digest: str | None = None,
    ) -> None:
        self.runtime = runtime
        self.status = status
        # What XSETTINGS compares with (settings_digest.py); None: no asker's settings match.
        self.settings_digest = settings_digest
        self.path = path
        self.mode = mode
        self.max_bytes = runtime.settings.inbound.max_message_bytes
        self.loop = asyncio.new_event_loop()
        self.filers = ThreadPoolExecutor(FILERS, thread_name_prefix="lmtp-file")
        # `status` is not kept waiting behind slow filings (a spam check), nor holds one up.
        self.status_thread = ThreadPoolExecutor(1, thread_name_prefix="lmtp-status")
        self.open_sessions: set[Session] = set()
        self.thread: threading.Thread | None = None
        self.inode: int | None = None
        self._stopping: asyncio.Event | None = None
        self._failed: BaseException | None = None

    async def file(self, raw: bytes, size: int, recipients: list[str], source: str) -> str:
        filing = functools.partial(answer, self.runtime, raw, size, recipients, source=source)
        return await self.loop.run_in_executor(self.filers, filing)

    def start(self) -> None:
        """Bind the socket (mode set before it listens) and serve it; ListenerError if not."""
        sock = bind(self.path, self.mode)
        self.inode = os.stat(self.path).st_ino
        ready = threading.Event()
        self.thread = threading.Thread(
            target=self._run, args=(sock, ready), name="lmtp", daemon=True
        )
        self.thread.start()
        ready.wait()
        if self._failed is not None:
            self.stop()
            raise ListenerError(f"{self.path}: cannot serve it ({self._failed})")

    def _session(self) -> asyncio.Protocol:
        if len(self.open_sessions) >= MAX_SESSIONS:
            idle = [s for s in self.open_sessions if not s.in_message and s.transport]
            if not idle:
                return Busy()
            oldest = min(idle, key=lambda s: s.active_at)
            self.open_sessions.discard(oldest)
            assert oldest.transport is not None
            oldest.transport.close()
        return Session(self)

    def _run(self, sock: socket.socket, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve(sock, ready))
        except BaseException as exc:  # reported by start(), or logged
            self._failed = exc
            log.exception("the LMTP listener stopped")
        finally:
            ready.set()
            sock.close()
            pending = asyncio.all_tasks(self.loop)
            for task in pending:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.close()

    async def _serve(self, sock: socket.socket, ready: threading.Event) -> None:
        self._stopping = asyncio.Event()
        server = await self.loop.create_unix_server(self._session, sock=sock)
        ready.set()
        await self._stopping.wait()
        server.close()
        for session in list(self.open_sessions):
            if session.transport is not None:
                session.transport.close()

    def stop(self) -> None:
        """Take no more mail, let a message being filed finish, remove the socket."""
        if self.thread is not None and self.thread.is_alive():
            stopping = self._stopping
            if stopping is not None:
                self.loop.call_soon_threadsafe(stopping.set)
            self.thread.join(timeout=10)
        self.filers.shutdown(wait=True)
        self.status_thread.shutdown(wait=True)
        with contextlib.suppress(OSError):
            if self.inode is not None and os.stat(self.path).st_ino == self.inode:
                self.path.unlink()


def bind(path: Path, mode: int) -> socket.socket:
    """A listening Unix socket at `path` with file mode `mode` from its first connection on:
    it is bound under a temporary name, given its mode, then renamed into place. A socket file
    nobody answers on (left by a daemon that was killed) is replaced; a live one is not."""
    temporary = path.with_name(f".{os.getpid():x}.{threading.get_native_id():x}")
    if max(len(os.fsencode(path)), len(os.fsencode(temporary))) > MAX_SOCKET_PATH:
        raise ListenerError(
            f"{path}: longer than a socket path may be ({MAX_SOCKET_PATH} bytes); "
            "set a shorter [inbound] lmtp_socket"
        )
    folder = path.parent
    try:
        folder_mode = folder.stat().st_mode
    except OSError as exc:
        raise ListenerError(f"{folder}: cannot use the folder ({exc.strerror})") from None
    if folder_mode & stat.S_IWOTH:
        raise ListenerError(
            f"{folder}: anyone may write to this folder, so anyone could replace the socket; "
            "put [inbound] lmtp_socket in a folder of your own"
        )
    _clear(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        sock.bind(str(temporary))
        os.chmod(temporary, mode)
        os.rename(temporary, path)
        sock.listen(16)
    except OSError as exc:
        sock.close()
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise ListenerError(f"{path}: cannot listen there ({exc.strerror or exc})") from None
    return sock


def _clear(path: Path) -> None:
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ListenerError(f"{path}: cannot use it ({exc.strerror})") from None
    if not stat.S_ISSOCK(found.st_mode):
        raise ListenerError(f"{path}: exists and is not a socket; remove it or choose another")
    with _probe() as probe:
        try:
            probe.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            path.unlink(missing_ok=True)  # stale: its daemon is gone
            return
        except OSError as exc:
            raise ListenerError(f"{path}: cannot use it ({exc.strerror or exc})") from None
    raise ListenerError(f"{path}: another process listens there (another `syndicate run`?)")


@contextlib.contextmanager
def _probe() -> Iterator[socket.socket]:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(2)
    try:
        yield probe
    finally:
        probe.close()


def start(
    runtime: Runtime, status: StatusAnswer | None = None, settings_digest: str | None = None
) -> Listener | None:
    """The daemon's listener, or None (logged) when it is off or cannot be served; `status`
    answers XSTATUS, `settings_digest` (taken before the daemon read its settings) XSETTINGS."""
    inbound = runtime.settings.inbound
    if not inbound.lmtp_socket:
        log.info("LMTP listener off: [inbound] lmtp_socket is empty")
        return None
    path = runtime.settings.path(inbound.lmtp_socket)
    # aiosmtpd logs every connection at INFO, the daemon's own level: a line per message.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    listener = Listener(runtime, path, inbound.lmtp_socket_mode, status, settings_digest)
    try:
        listener.start()
    except ListenerError as exc:
        listener.filers.shutdown(wait=False)
        listener.status_thread.shutdown(wait=False)
        listener.loop.close()
        log.warning("LMTP listener off: %s", exc)
        return None
    log.info("taking mail by LMTP on %s (mode %o)", path, inbound.lmtp_socket_mode)
    return listener
