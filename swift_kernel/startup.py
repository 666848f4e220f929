"""Answer kernel_info_request while ipykernel is still being imported.

Importing ipykernel (and IPython with it) takes the better part of a second; frontends show the
kernel as unknown or starting until their kernel_info_request is answered. So ``python -m
swift_kernel`` binds the kernel's sockets first, as ipykernel would, and a small thread answers
kernel_info_request on shell and control with the content ``SwiftKernel.kernel_info`` gives
(``kernelinfo``), publishing busy and idle around it as ipykernel does. Any other request is held,
unread by anyone else, and handed to the kernel once it is up (``SwiftKernelApp`` in ``kernel``),
which handles it as if ipykernel had read it; so are the kernel_info requests behind it on the same
channel, to keep each channel's order. The kernel takes the very same socket objects.

Only the plain cases are handled here: a connection file with every port given, TCP or IPC, an
HMAC signature, and no CurveZMQ keys. Anything else is left to ipykernel, as before. Imports
nothing heavier than pyzmq and jupyter_client's Session (which signs and serialises).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import zmq
from jupyter_client.session import Session

from .kernelinfo import kernel_info

# The kernel's channels this module binds, with the socket types ipykernel gives them.
ROUTER_CHANNELS = ("shell", "stdin", "control")
CHANNELS = (*ROUTER_CHANNELS, "iopub")
# ipykernel's linger on every kernel socket, in milliseconds.
LINGER = 1000

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Held:
    """A request read early that the kernel must handle: its channel and its frames as read."""

    channel: str
    frames: list[zmq.Frame]


@dataclass(frozen=True)
class Connection:
    """What the connection file says, in the plain case this module handles."""

    transport: str
    ip: str
    ports: dict[str, int]
    key: bytes
    signature_scheme: str

    @classmethod
    def read(cls, path: str) -> Connection | None:
        """Read ``path``; None if it asks for anything but the plain case (ipykernel then does it all)."""
        try:
            info = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # ipykernel reports it
        if not isinstance(info, dict) or "curve_secretkey" in info or "curve_publickey" in info:
            return None
        transport, ip = info.get("transport", "tcp"), info.get("ip", "127.0.0.1")
        scheme, key = info.get("signature_scheme", "hmac-sha256"), info.get("key", "")
        ports = {channel: info.get(f"{channel}_port") for channel in CHANNELS}
        if (
            transport not in {"tcp", "ipc"}
            or not isinstance(ip, str)
            or not isinstance(key, str)
            or not isinstance(scheme, str)
            or not scheme.startswith("hmac-")
            or not all(isinstance(port, int) and not isinstance(port, bool) and port > 0 for port in ports.values())
        ):
            return None
        return cls(transport, ip, ports, key.encode(), scheme)  # type: ignore[arg-type]

    def address(self, channel: str) -> str:
        """Return the address ``channel`` binds to, as ipykernel writes it."""
        port = self.ports[channel]
        return f"tcp://{self.ip}:{port}" if self.transport == "tcp" else f"ipc://{self.ip}-{port}"


class HandoverContext(zmq.Context[zmq.Socket[Any]]):
    """A zmq context that can give the next socket asked for of a type as one made (and bound) before.

    ipykernel's app makes and binds its control and iopub sockets in the middle of wiring their
    threads; inside ``handing_over`` that code gets the early socket and keeps the rest as it is.
    """

    _handing: zmq.Socket[Any] | None = None

    @contextlib.contextmanager
    def handing_over(self, socket: zmq.Socket[Any]) -> Iterator[None]:
        """Give ``socket`` in place of the first socket of its type made inside the block."""
        self._handing = socket
        try:
            yield
        finally:
            self._handing = None

    def socket(self, socket_type: int, *args: Any, **kwargs: Any) -> zmq.Socket[Any]:
        """Make a socket, or give the one being handed over if it is of ``socket_type``."""
        handing = self._handing
        if handing is not None and socket_type == handing.socket_type:
            self._handing = None
            return handing
        made: zmq.Socket[Any] = super().socket(socket_type, *args, **kwargs)
        return made


class EarlyKernelInfo:
    """The kernel's sockets, bound before ipykernel is imported, and the thread answering kernel_info on them.

    ``__main__`` begins it; ``SwiftKernelApp.init_sockets`` takes it, stops the thread and adopts
    the sockets; the kernel's ``start`` hands the held requests to ipykernel's dispatchers.
    """

    _pending: ClassVar[EarlyKernelInfo | None] = None

    def __init__(self, connection: Connection, content: dict[str, Any]) -> None:
        self.connection = connection
        self.content = {"status": "ok", **content}
        # Signs and serialises exactly as the kernel's own Session will (same key and scheme).
        self.session = Session(key=connection.key, signature_scheme=connection.signature_scheme)
        # The iopub topic prefix ipykernel derives from the kernel's ident; the kernel takes this one.
        self.ident = str(uuid.uuid4())
        self.context = HandoverContext()
        self.sockets: dict[str, zmq.Socket[Any]] = {}
        self.held: list[Held] = []
        self._wake_address = f"inproc://swift-kernel-early-{id(self)}"
        self._wake = self.context.socket(zmq.PAIR)
        self._wake.bind(self._wake_address)
        self._thread = threading.Thread(target=self._answer, name="swift-early-kernel-info", daemon=True)

    @classmethod
    def begin(cls, connection_file: str, swift_version: str) -> EarlyKernelInfo | None:
        """Bind the sockets named in ``connection_file`` and start answering; None when ipykernel must do it all."""
        connection = Connection.read(connection_file)
        if connection is None:
            return None
        early = cls(connection, kernel_info(swift_version))
        try:
            early._bind()
        except zmq.ZMQError as error:
            log.debug("binding early failed (%s): ipykernel binds", error)
            early.close()
            return None
        early._thread.start()
        cls._pending = early
        return early

    @classmethod
    def take(cls) -> EarlyKernelInfo | None:
        """Hand the early sockets over, once."""
        early, cls._pending = cls._pending, None
        return early

    def _bind(self) -> None:
        # As ipykernel's IPKernelApp.init_sockets, init_control and init_iopub (7.x) make them.
        for channel in ROUTER_CHANNELS:
            socket = self.context.socket(zmq.ROUTER)
            socket.linger = LINGER
            if hasattr(zmq, "ROUTER_HANDOVER"):
                # ipykernel's workaround for zeromq reconnect problems (ipython/ipykernel#270, zeromq/libzmq#2892).
                socket.router_handover = 1
            self.sockets[channel] = socket
            socket.bind(self.connection.address(channel))
        iopub = self.context.socket(zmq.XPUB)
        iopub.linger = LINGER
        self.sockets["iopub"] = iopub
        iopub.bind(self.connection.address("iopub"))

    def stop(self) -> list[Held]:
        """Stop answering (a request being answered is answered first) and return the requests held."""
        if self._thread.is_alive():
            waker = self.context.socket(zmq.PAIR)
            waker.linger = 0
            waker.connect(self._wake_address)
            waker.send(b"stop")
            self._thread.join()
            waker.close()
        self._wake.close(linger=0)
        held, self.held = self.held, []
        return held

    def close(self) -> None:
        """Stop and close everything (the kernel binds its own sockets instead)."""
        self.stop()
        for socket in self.sockets.values():
            socket.close(linger=0)
        self.context.term()

    # ----- on the thread ----------------------------------------------------------------------

    def _answer(self) -> None:
        # ipykernel publishes "starting" once its kernel takes requests; here that is now.
        self._publish("starting", None)
        poller = zmq.Poller()
        poller.register(self._wake, zmq.POLLIN)
        # Control first, as ipykernel's control thread does not wait behind shell requests.
        channels = [("control", self.sockets["control"]), ("shell", self.sockets["shell"])]
        for _, socket in channels:
            poller.register(socket, zmq.POLLIN)
        # Subscriptions: ipykernel's iopub thread welcomes each one (iopub_welcome, JEP 65); the
        # frontends that subscribe now, before it exists, are welcomed here instead.
        poller.register(self.sockets["iopub"], zmq.POLLIN)
        while True:
            ready = dict(poller.poll())
            if self._wake in ready:
                return
            if self.sockets["iopub"] in ready:
                self._welcome()
            for channel, socket in channels:
                if socket in ready:
                    self._read(channel, socket)

    def _read(self, channel: str, socket: zmq.Socket[Any]) -> None:
        while True:
            try:
                frames = socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            if not self._answered(channel, socket, frames):
                self.held.append(Held(channel, frames))

    def _answered(self, channel: str, socket: zmq.Socket[Any], frames: list[zmq.Frame]) -> bool:
        """Answer ``frames`` if it is a kernel_info_request that may be answered now; say whether it was."""
        if any(held.channel == channel for held in self.held):
            return False  # behind a held request: the kernel answers it in turn
        try:
            idents, message_frames = self.session.feed_identities(frames, copy=False)
            request = self.session.deserialize(message_frames, content=True, copy=False)
        except Exception:  # noqa: BLE001 - the kernel reads it again and reports what is wrong
            return False
        if request["header"].get("msg_type") != "kernel_info_request":
            return False
        self._publish("busy", request)
        self.session.send(socket, "kernel_info_reply", self.content, parent=request, ident=idents)
        self._publish("idle", request)
        return True

    def _welcome(self) -> None:
        # As ipykernel's IOPubThread._handle_subscription and _send_welcome_message (7.x).
        iopub = self.sockets["iopub"]
        while True:
            try:
                frames = iopub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            for frame in frames:
                if not frame or frame[0] != 1:
                    continue  # an unsubscription
                try:
                    subscription = frame[1:].decode("utf-8")
                except UnicodeDecodeError:
                    continue
                header = self.session.msg_header("iopub_welcome")
                content = {"subscription": subscription}
                welcome = {"header": header, "parent_header": {}, "metadata": {}, "content": content}
                serialized = self.session.serialize(welcome)
                iopub.send_multipart([subscription.encode("utf-8"), *serialized] if subscription else serialized)

    def _publish(self, state: str, parent: dict[str, Any] | None) -> None:
        topic = f"kernel.{self.ident}.status".encode()
        self.session.send(self.sockets["iopub"], "status", {"execution_state": state}, parent=parent, ident=topic)
