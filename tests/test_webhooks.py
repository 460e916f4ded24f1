"""The daemon's web app and server: Plex webhooks in, sync requests out.

Requests are built the way Plex sends them (multipart/form-data with a `payload` JSON part
and, for some events, a `thumb` JPEG part; the payload is the example from Plex's webhook
article). What the app does is read from a recording requester and from the log output.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import socket
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from genred.config import Config, parse_config
from genred.errors import GenredError
from genred.hookspecs import PluginContext
from genred.logs import configure_logging
from genred.web import WebServer, create_app
from genred_plugins.plex.source import PlexSource, PlexSourceConfig

SECRET = "hook-secret-6f1d2c9a8b7e"
JPEG = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    + b"\0" * 4000
    + b"\xff\xd9"
)


@dataclass
class RecordingRequester:
    """Test double of the daemon's SyncRequester."""

    calls: list[tuple[str | None, dict[str, Any]]] = field(default_factory=list)

    def request_sync(
        self, source: str | None, *, reason: str, paths: Sequence[str] = (), delay: float = 0.0
    ) -> None:
        self.calls.append((source, {"reason": reason, "paths": tuple(paths), "delay": delay}))


def web_config(secret: str | None = SECRET, **web: Any) -> Config:
    plex = {"url": "http://127.0.0.1:9", "token": "t"}
    return parse_config(
        json.dumps({"plex": plex, "web": {"webhook_secret": secret, **web}}), env={}
    )


def webhook_app(config: Config, requester: Any, *args: Any, **kwargs: Any) -> Any:
    """The daemon's app with the routes the (real) plex source registers."""
    source = PlexSource(PlexSourceConfig(), PluginContext(config))
    return create_app([source], requester, *args, **kwargs)


def plex_payload(event: str = "library.new", **metadata: Any) -> dict[str, Any]:
    """Plex's documented example payload (a track of a music section), with `event` set."""
    return {
        "event": event,
        "user": True,
        "owner": True,
        "Account": {
            "id": 1,
            "thumb": "https://plex.tv/users/1022b120ffbaa/avatar?c=1465525047",
            "title": "elan",
        },
        "Server": {"title": "Office", "uuid": "54664a3d8acc39983675640ec9ce00b70af9cc36"},
        "Player": {
            "local": True,
            "publicAddress": "200.200.200.200",
            "title": "Plex Web (Safari)",
            "uuid": "r6yfkdnfggbh2bdnvkffwbms",
        },
        "Metadata": {
            "librarySectionType": "artist",
            "ratingKey": "1936545",
            "key": "/library/metadata/1936545",
            "parentRatingKey": "1936544",
            "grandparentRatingKey": "1936543",
            "guid": "com.plexapp.agents.plexmusic://gracenote/track/7572499-91016293BE6BF7F1AB2F848F736E74E5/7572500-3CBAE310D4F3E66C285E104A1458B272?lang=en",
            "librarySectionID": 1224,
            "type": "track",
            "title": "Love The One You're With",
            "grandparentKey": "/library/metadata/1936543",
            "parentKey": "/library/metadata/1936544",
            "grandparentTitle": "Stephen Stills",
            "parentTitle": "Stephen Stills",
            "summary": "",
            "index": 1,
            "parentIndex": 1,
            "ratingCount": 6794,
            "thumb": "/library/metadata/1936544/thumb/1432897518",
            "art": "/library/metadata/1936543/art/1485951497",
            "addedAt": 1000396126,
            "updatedAt": 1432897518,
            **metadata,
        },
    }


def plex_multipart(payload: Any, thumb: bytes | None = None) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a Plex webhook POST, part by part as Plex writes them."""
    boundary = "------------------------a1b2c3d4e5f60718"
    text = payload if isinstance(payload, str | bytes) else json.dumps(payload)
    text = text.encode() if isinstance(text, str) else text
    parts = [
        b'Content-Disposition: form-data; name="payload"\r\n'
        b"Content-Type: application/json\r\n\r\n" + text
    ]
    if thumb is not None:
        parts.append(
            b'Content-Disposition: form-data; name="thumb"; filename="image.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n" + thumb
        )
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + part + b"\r\n" for part in parts)
    body += b"--" + boundary.encode() + b"--\r\n"
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


@pytest.fixture
def requester() -> RecordingRequester:
    return RecordingRequester()


@pytest.fixture
def client(requester: RecordingRequester) -> Iterator[TestClient]:
    with TestClient(webhook_app(web_config(), requester)) as test_client:
        yield test_client


def post_hook(
    client: TestClient | httpx.Client, payload: Any, thumb: bytes | None = None, secret=SECRET
) -> httpx.Response:
    body, headers = plex_multipart(payload, thumb)
    return client.post(f"/webhooks/plex/{secret}", content=body, headers=headers)


# --------------------------------------------------------------------------- webhooks


def test_library_new_in_a_music_section_requests_one_plex_sync(
    client: TestClient, requester: RecordingRequester
) -> None:
    response = post_hook(client, plex_payload("library.new"))
    assert response.status_code == 200
    assert response.json() == {"status": "sync requested", "event": "library.new"}
    assert requester.calls == [
        ("plex", {"reason": "webhook: plex library.new", "paths": (), "delay": 10.0})
    ]


def test_the_thumb_part_plex_attaches_is_accepted(
    client: TestClient, requester: RecordingRequester
) -> None:
    response = post_hook(client, plex_payload("library.new"), thumb=JPEG)
    assert response.status_code == 200
    assert [source for source, _ in requester.calls] == ["plex"]


def test_the_coalescing_delay_comes_from_the_config(requester: RecordingRequester) -> None:
    with TestClient(webhook_app(web_config(webhook_delay="3s"), requester)) as client:
        assert post_hook(client, plex_payload("library.on.deck")).status_code == 200
    assert requester.calls == [
        ("plex", {"reason": "webhook: plex library.on.deck", "paths": (), "delay": 3.0})
    ]


def test_a_payload_without_section_type_counts_as_music(
    client: TestClient, requester: RecordingRequester
) -> None:
    payload = plex_payload("library.new")
    del payload["Metadata"]["librarySectionType"]
    assert post_hook(client, payload).status_code == 200
    assert len(requester.calls) == 1


@pytest.mark.parametrize(
    ("event", "section_type"),
    [
        ("media.play", "artist"),
        ("media.scrobble", "artist"),
        ("media.rate", "artist"),
        ("admin.database.backup", "artist"),
        ("library.new", "movie"),
        ("library.new", "show"),
    ],
)
def test_other_events_are_answered_and_ignored(
    client: TestClient, requester: RecordingRequester, event: str, section_type: str
) -> None:
    response = post_hook(client, plex_payload(event, librarySectionType=section_type), JPEG)
    assert response.status_code == 200
    assert response.json() == {"status": "ignored", "event": event}
    assert requester.calls == []


@pytest.mark.parametrize(
    "secret", ["wrong", SECRET[:-1], SECRET + "x", SECRET.upper(), "%20" + SECRET]
)
def test_a_wrong_secret_is_an_unknown_path(
    client: TestClient, requester: RecordingRequester, secret: str
) -> None:
    unknown = client.post("/no/such/path")
    response = post_hook(client, plex_payload(), secret=secret)
    assert response.status_code == 404
    assert response.content == unknown.content
    assert requester.calls == []


def test_other_methods_cannot_tell_whether_a_secret_is_right(client: TestClient) -> None:
    unknown = client.get("/no/such/path")
    for method in ("GET", "PUT", "DELETE", "HEAD"):
        wrong = client.request(method, "/webhooks/plex/wrong")
        assert (wrong.status_code, wrong.content) == (
            404,
            unknown.content if method != "HEAD" else b"",
        )
    right = client.get(f"/webhooks/plex/{SECRET}")
    assert right.status_code == 405
    assert right.headers["allow"] == "POST"


@pytest.mark.parametrize("secret", [None, ""])
def test_without_a_configured_secret_there_is_no_webhook(
    requester: RecordingRequester, secret: str | None
) -> None:
    with TestClient(webhook_app(web_config(secret), requester)) as client:
        for guess in ("None", "null", "x", SECRET):
            response = post_hook(client, plex_payload(), secret=guess)
            assert response.status_code == 404
            assert response.json() == {"detail": "Not Found"}
    assert requester.calls == []


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("{not json", "the payload is not valid JSON"),
        ('["library.new"]', "the payload must be a JSON object"),
        ('{"user": true}', "the payload has no `event`"),
    ],
)
def test_an_unreadable_payload_is_a_400_that_says_why(
    client: TestClient, requester: RecordingRequester, payload: str, message: str
) -> None:
    response = post_hook(client, payload)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(message)
    assert requester.calls == []


def test_a_malformed_multipart_body_is_a_400(
    client: TestClient, requester: RecordingRequester
) -> None:
    for body, content_type in [
        (b"garbage", "multipart/form-data; boundary=x"),
        (b"--x\r\n", "multipart/form-data"),
    ]:
        response = client.post(
            f"/webhooks/plex/{SECRET}", content=body, headers={"Content-Type": content_type}
        )
        assert response.status_code == 400
    assert requester.calls == []


def test_a_body_without_payload_field_is_a_400(
    client: TestClient, requester: RecordingRequester
) -> None:
    as_json = client.post(f"/webhooks/plex/{SECRET}", json=plex_payload())
    assert as_json.status_code == 400
    assert "no `payload` form field" in as_json.json()["detail"]
    thumb_only = client.post(
        f"/webhooks/plex/{SECRET}", files={"thumb": ("image.jpg", JPEG, "image/jpeg")}
    )
    assert thumb_only.status_code == 400
    assert requester.calls == []


def test_a_form_urlencoded_payload_is_read_too(
    client: TestClient, requester: RecordingRequester
) -> None:
    response = client.post(f"/webhooks/plex/{SECRET}", data={"payload": json.dumps(plex_payload())})
    assert response.status_code == 200
    assert len(requester.calls) == 1


def test_a_body_over_the_limit_is_refused(requester: RecordingRequester) -> None:
    with TestClient(webhook_app(web_config(), requester, max_body=64 * 1024)) as client:
        response = post_hook(client, plex_payload(), thumb=b"\xff" * 100_000)
        assert response.status_code == 413
        assert post_hook(client, plex_payload(), thumb=JPEG).status_code == 200
    assert len(requester.calls) == 1


def test_health_says_ok_and_what_the_daemon_adds(requester: RecordingRequester) -> None:
    with TestClient(webhook_app(web_config(), requester)) as client:
        assert client.get("/health").json() == {"status": "ok"}
    status = {"jobs": {"sync": "idle"}, "tracks": 2015}
    with TestClient(webhook_app(web_config(), requester, lambda: status)) as client:
        response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "jobs": {"sync": "idle"}, "tracks": 2015}


def test_without_the_web_extra_the_import_error_names_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "fastapi", None)
    monkeypatch.delitem(sys.modules, "genred.web")
    with pytest.raises(ImportError, match=r"pip install 'genred\[web\]'"):
        importlib.import_module("genred.web")


# --------------------------------------------------------------------------- the server


def test_a_real_server_on_port_0_serves_and_stops(requester: RecordingRequester) -> None:
    server = WebServer(webhook_app(web_config(), requester), "127.0.0.1", 0)
    server.start(timeout=10)
    try:
        assert server.port > 0
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=5) as http:
            assert http.get("/health").json() == {"status": "ok"}
            assert post_hook(http, plex_payload(), thumb=JPEG).status_code == 200
            assert "server" not in http.get("/health").headers
    finally:
        server.stop(timeout=5)
    assert [source for source, _ in requester.calls] == ["plex"]
    assert not server.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{server.port}/health", timeout=2)


def test_a_taken_port_is_an_error_that_says_so(requester: RecordingRequester) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = WebServer(webhook_app(web_config(), requester), "127.0.0.1", port)
        with pytest.raises(GenredError) as raised:
            server.start(timeout=5)
    assert str(raised.value) == f"web: cannot listen on 127.0.0.1:{port}: address already in use"
    assert not server.running


def test_an_address_not_on_this_host_is_an_error(requester: RecordingRequester) -> None:
    server = WebServer(webhook_app(web_config(), requester), "192.0.2.1", 0)  # TEST-NET-1
    with pytest.raises(GenredError, match=r"^web: cannot listen on 192\.0\.2\.1:0: cannot assign"):
        server.start(timeout=5)


def test_the_secret_never_reaches_the_log(requester: RecordingRequester) -> None:
    # No secret is handed to the redactor: the app itself must never log it.
    stream = io.StringIO()
    configure_logging("debug", "json", [], stream=stream)
    for name in ("httpx", "httpcore"):  # the test's own client logs the URLs it calls
        logging.getLogger(name).setLevel(logging.WARNING)
    server = WebServer(webhook_app(web_config(), requester), "127.0.0.1", 0)
    server.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=5) as http:
            assert post_hook(http, plex_payload()).status_code == 200
            assert post_hook(http, plex_payload("media.play")).status_code == 200
            assert post_hook(http, "{broken").status_code == 400
            assert post_hook(http, plex_payload(), secret=SECRET + "0").status_code == 404
            assert http.get(f"/webhooks/plex/{SECRET}/x").status_code == 404
    finally:
        server.stop()
    text = stream.getvalue()
    assert SECRET not in text
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    requests = [r for r in records if r.get("event") == "http request"]
    assert [(r["method"], r["path"], r["status"]) for r in requests] == [
        ("POST", "/webhooks/plex/***", 200),
        ("POST", "/webhooks/plex/***", 200),
        ("POST", "/webhooks/plex/***", 400),
        ("POST", "/webhooks/plex/***", 404),
        ("GET", "/webhooks/plex/***", 404),
    ]
    events = [r["event"] for r in records]
    assert "plex webhook: new media, sync requested" in events
    assert "plex webhook refused" in events
    assert not any(r.get("logger") == "uvicorn.access" for r in records)
