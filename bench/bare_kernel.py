"""A kernel with no kernel library: pyzmq sockets and jupyter_client's Session, answering at once.

Every execute_request gets what ``bench/null_kernel.py`` sends (busy, execute_input,
execute_result, the reply, idle), with nothing in between: no event loop, no threads. Its round trip
is what the messages themselves cost on this machine (the client's work, ZeroMQ, signing and JSON);
``bench/latency.py --floors`` sets it beside ipykernel's floor, so that what ipykernel's own
machinery adds to every cell can be read off.

    python bench/bare_kernel.py -f CONNECTION_FILE
"""

from __future__ import annotations

import argparse
import json
import signal
from typing import Any

import zmq
from jupyter_client.session import Session

KERNEL_INFO = {
    "status": "ok",
    "protocol_version": "5.3",
    "implementation": "bare",
    "implementation_version": "1",
    "language_info": {"name": "text", "mimetype": "text/plain", "file_extension": ".txt"},
    "banner": "bare kernel",
}


def serve(connection: dict[str, Any]) -> None:
    """Answer shell and control requests until a shutdown_request comes."""
    context = zmq.Context()
    session = Session(key=connection["key"].encode(), signature_scheme=connection["signature_scheme"])

    def bound(kind: int, channel: str) -> zmq.Socket[bytes]:
        socket = context.socket(kind)
        socket.bind(f"{connection['transport']}://{connection['ip']}:{connection[f'{channel}_port']}")
        return socket

    shell, control, heartbeat = bound(zmq.ROUTER, "shell"), bound(zmq.ROUTER, "control"), bound(zmq.REP, "hb")
    iopub, _stdin = bound(zmq.PUB, "iopub"), bound(zmq.ROUTER, "stdin")
    poller = zmq.Poller()
    for socket in (shell, control, heartbeat):
        poller.register(socket, zmq.POLLIN)
    count = 0
    while True:
        for socket, _ in poller.poll():
            if socket is heartbeat:
                heartbeat.send(heartbeat.recv())
                continue
            identities, parts = session.feed_identities(socket.recv_multipart())
            request = session.deserialize(parts)
            kind = request["header"]["msg_type"]
            session.send(iopub, "status", {"execution_state": "busy"}, parent=request)
            if kind == "execute_request":
                count += 1
                code = request["content"]["code"]
                session.send(iopub, "execute_input", {"code": code, "execution_count": count}, parent=request)
                result = {"execution_count": count, "data": {"text/plain": "2"}, "metadata": {}}
                session.send(iopub, "execute_result", result, parent=request)
                reply = {"status": "ok", "execution_count": count, "payload": [], "user_expressions": {}}
                session.send(socket, "execute_reply", reply, parent=request, ident=identities)
            elif kind == "kernel_info_request":
                session.send(socket, "kernel_info_reply", KERNEL_INFO, parent=request, ident=identities)
            elif kind == "shutdown_request":
                session.send(socket, "shutdown_reply", request["content"], parent=request, ident=identities)
                session.send(iopub, "status", {"execution_state": "idle"}, parent=request)
                return
            session.send(iopub, "status", {"execution_state": "idle"}, parent=request)


if __name__ == "__main__":
    # jupyter_client interrupts a kernel on its way down; between cells there is nothing to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-f", dest="connection_file", required=True)
    with open(parser.parse_args().connection_file) as file:
        serve(json.load(file))
