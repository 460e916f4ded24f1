"""`/:/websockets/notifications`: PMS's notification stream, as plexapi's AlertListener reads it.

PMS pushes one JSON text frame per notification, ``{"NotificationContainer": {"type": …,
"size": n, <TypeName>: [...]}}``. A scan here sends what PMS sends around one (shapes from
public clients of the real stream; the OpenAPI spec only names the endpoint):

- ``activity`` ``started``, then ``ended`` (progress 100), for the activity
  ``library.update.section`` with ``Context.librarySectionID``;
- between them, for every added track and its album and artist, ``timeline`` entries
  (``identifier`` com.plexapp.plugins.library, ``sectionID``, ``itemID`` as text, ``type``
  8/9/10, ``title``, ``state``, ``updatedAt``) in state 0 (``metadataState`` "created"),
  then state 5 (processed); removed tracks get state 9 (``metadataState`` "deleted").

Frames are written with websocket-client's `ABNF` (a server's frames are unmasked) and the
client's frames (close, ping) read with its `frame_buffer`; the handshake is RFC 6455's.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import socket
import threading
import uuid
from collections.abc import Callable
from typing import Any

from .library import PlexLibrary
from .model import ALBUM, ARTIST, TRACK
from .scan import ScanResult

NOTIFICATIONS_PATH = "/:/websockets/notifications"
LIBRARY = "com.plexapp.plugins.library"
_WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, section 1.3
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA  # frame opcodes (RFC 6455, section 5.2)


def accept_key(client_key: str) -> str:
    """The `Sec-WebSocket-Accept` answer to a client's `Sec-WebSocket-Key`."""
    digest = hashlib.sha1((client_key + _WEBSOCKET_GUID).encode()).digest()
    return base64.b64encode(digest).decode()


class _Client:
    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.lock = threading.Lock()

    def send(self, opcode: int, data: bytes) -> None:
        from websocket import ABNF

        frame = ABNF(fin=1, opcode=opcode, mask_value=0, data=data).format()
        with self.lock:
            self.conn.sendall(frame)

    def hang_up(self) -> None:
        with contextlib.suppress(OSError):
            self.send(CLOSE, (1001).to_bytes(2, "big"))  # 1001: going away
        with contextlib.suppress(OSError):
            self.conn.shutdown(socket.SHUT_RDWR)


class NotificationHub:
    """The connected notification clients; `publish` sends one container to all of them."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []  # every container published, in order
        self._clients: list[_Client] = []
        self._lock = threading.Lock()
        self._connected = threading.Condition(self._lock)

    @property
    def connected(self) -> int:
        with self._lock:
            return len(self._clients)

    def wait_connected(self, count: int = 1, timeout: float = 5.0) -> bool:
        with self._connected:
            return self._connected.wait_for(lambda: len(self._clients) >= count, timeout)

    def serve(self, conn: socket.socket, read: Callable[[int], bytes]) -> None:
        """Keep one upgraded connection open until the client or `disconnect_all` ends it."""
        from websocket import WebSocketException
        from websocket._abnf import frame_buffer

        def read_some(size: int) -> bytes:
            data = read(size)
            if not data:  # frame_buffer would wait for more bytes forever
                raise ConnectionError("client went away")
            return data

        client = _Client(conn)
        with self._connected:
            self._clients.append(client)
            self._connected.notify_all()
        try:
            frames = frame_buffer(read_some, skip_utf8_validation=True)
            while True:
                frame = frames.recv_frame()
                if frame.opcode == CLOSE:
                    client.send(CLOSE, frame.data[:2])
                    return
                if frame.opcode == PING:
                    client.send(PONG, frame.data)
        except (OSError, WebSocketException):
            return
        finally:
            with self._lock:
                self._clients.remove(client)

    def publish(self, container: dict[str, Any]) -> int:
        """Send `{"NotificationContainer": container}` to every client; how many got it."""
        with self._lock:
            self.sent.append(container)
            clients = list(self._clients)
        text = json.dumps({"NotificationContainer": container}).encode()
        reached = 0
        for client in clients:
            try:
                client.send(TEXT, text)
                reached += 1
            except OSError:
                client.hang_up()
        return reached

    def disconnect_all(self) -> None:
        """Drop every client, as a restarting server would."""
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            client.hang_up()


# --------------------------------------------------------------------------- messages


def activity(event: str, section_id: int, title: str, activity_id: str, progress: int) -> dict:
    return {
        "type": "activity",
        "size": 1,
        "ActivityNotification": [
            {
                "event": event,
                "uuid": activity_id,
                "Activity": {
                    "uuid": activity_id,
                    "type": "library.update.section",
                    "cancellable": False,
                    "userID": 1,
                    "title": f"Scanning {title}",
                    "subtitle": "",
                    "progress": progress,
                    "Context": {"librarySectionID": str(section_id)},
                },
            }
        ],
    }


def timeline(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "timeline", "size": len(entries), "TimelineEntry": entries}


def scan_notifications(lib: PlexLibrary, result: ScanResult, now: int) -> list[dict[str, Any]]:
    """What PMS announces for one finished scan, in order."""
    activity_id = str(uuid.uuid4())
    sid, title = lib.section_id, lib.section_title
    out = [activity("started", sid, title, activity_id, 0)]
    added: dict[int, tuple[int, str]] = {}  # rating key → (type, title), parents first
    for key in result.added:
        track = lib.tracks[key]
        added.setdefault(track.artist_key, (ARTIST, lib.artists[track.artist_key].title))
        added.setdefault(track.album_key, (ALBUM, lib.albums[track.album_key].title))
        added[key] = (TRACK, track.title)
    if added:
        out.append(
            timeline([_entry(sid, k, t, n, 0, now, "created") for k, (t, n) in added.items()])
        )
        out.append(timeline([_entry(sid, k, t, n, 5, now) for k, (t, n) in added.items()]))
    if result.removed:
        gone = [lib.tracks[k] for k in result.removed]
        out.append(
            timeline([_entry(sid, t.rating_key, TRACK, t.title, 9, now, "deleted") for t in gone])
        )
    out.append(activity("ended", sid, title, activity_id, 100))
    return out


def _entry(
    section_id: int,
    key: int,
    type_code: int,
    title: str,
    state: int,
    now: int,
    metadata_state: str | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "identifier": LIBRARY,
        "sectionID": str(section_id),
        "itemID": str(key),
        "type": type_code,
        "title": title,
        "state": state,
        "updatedAt": now,
    }
    if metadata_state is not None:
        entry["metadataState"] = metadata_state
    return entry
