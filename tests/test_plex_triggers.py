"""The plex source's daemon hooks against the emulator: folder scans and websocket alerts.

`request_scan` is checked by what crossed the wire (the emulator's request log) and by the
emulated library afterwards; `listen` by the notifications a real scan pushes over the
emulator's `/:/websockets/notifications` to plexapi's AlertListener.
"""

from __future__ import annotations

import io
import json
import queue
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import websocket
from plexapi.server import PlexServer

from genred.config import parse_config
from genred.hookspecs import PluginContext
from genred.logs import configure_logging
from genred_plugins.plex import source as plex_source
from genred_plugins.plex.alerts import PlexAlerts, change_reason
from genred_plugins.plex.connection import RetrySettings
from genred_plugins.plex.paths import map_path, reverse_map_path
from genred_plugins.plex.source import PlexSource, PlexSourceConfig, scan_plan
from tests.conftest import FIXTURES
from tests.emulators.plex import PlexEmulator

FAST = RetrySettings(attempts=3, backoff_initial=0.001, backoff_max=0.01)
AUDIO = FIXTURES / "audio" / "debian" / "asc_machine_wars.mp3"
PLEX_ROOT = "/data/music"


def source_for(emu: PlexEmulator, local_root: Path, **settings: Any) -> PlexSource:
    config = parse_config(
        json.dumps(
            {
                "plex": {
                    "url": emu.url,
                    "token": emu.token,
                    "path_map": {PLEX_ROOT: str(local_root)},
                }
            }
        ),
        env={},
    )
    return PlexSource(PlexSourceConfig(retries=FAST, **settings), PluginContext(config))


def add_file(root: Path, relative: str) -> Path:
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(AUDIO, target)
    return target


def refreshes(emu: PlexEmulator) -> list[tuple[str, dict[str, list[str]]]]:
    return [(r.path, r.query) for r in emu.requests if r.path.endswith("/refresh")]


@pytest.fixture
def root(plex_emulator: PlexEmulator) -> Path:
    """The emulator's scan root: where Plex sees /data/music, and where genred sees it too."""
    return plex_emulator.scan_roots[PLEX_ROOT]


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plex_source, "SCAN_POLL_INTERVAL", 0.05)


@pytest.fixture
def log_stream() -> io.StringIO:
    stream = io.StringIO()
    configure_logging("info", "json", [], stream=stream)
    return stream


def log_events(stream: io.StringIO) -> list[str]:
    return [json.loads(line)["event"] for line in stream.getvalue().splitlines() if line]


# --------------------------------------------------------------------------- paths


def test_reverse_map_path_undoes_map_path_with_the_longest_local_prefix() -> None:
    path_map = {"/data/music": "/srv/music", "/data/music/Live": "/mnt/live", "/other": "/srv"}
    assert reverse_map_path("/srv/music/A/B/01.mp3", path_map) == "/data/music/A/B/01.mp3"
    assert reverse_map_path("/mnt/live/X/1.flac", path_map) == "/data/music/Live/X/1.flac"
    assert reverse_map_path("/srv/else/1.mp3", path_map) == "/other/else/1.mp3"
    assert reverse_map_path("/srv/musical/1.mp3", path_map) == "/other/musical/1.mp3"
    assert reverse_map_path("/home/me/1.mp3", path_map) == "/home/me/1.mp3"
    for plex_path in ("/data/music/A/01.mp3", "/data/music/Live/X/1.flac"):
        assert reverse_map_path(map_path(plex_path, path_map) or "", path_map) == plex_path


def test_scan_plan_asks_for_folders_once_and_drops_the_outside(tmp_path: Path) -> None:
    album = tmp_path / "Artist" / "Album"
    album.mkdir(parents=True)
    (album / "01.mp3").write_bytes(b"")
    locations = {"3": [PLEX_ROOT], "7": ["/data/audiobooks"]}
    plan, outside = scan_plan(
        [
            str(album / "01.mp3"),
            str(album / "02.mp3"),  # gone or not there yet: its folder
            str(album / "CD2" / "x.flac"),  # inside a folder asked for already
            str(tmp_path / "New"),  # missing: its parent (the root) covers everything
            "/elsewhere/song.mp3",
        ],
        {PLEX_ROOT: str(tmp_path)},
        locations,
    )
    assert plan == {"3": [PLEX_ROOT]}
    assert outside == ["/elsewhere/song.mp3"]
    plan, _ = scan_plan([str(album / "01.mp3")], {PLEX_ROOT: str(tmp_path)}, locations)
    assert plan == {"3": [f"{PLEX_ROOT}/Artist/Album"]}
    plan, _ = scan_plan(["/data"], {}, locations)  # above both roots: each root is scanned
    assert plan == {"3": [PLEX_ROOT], "7": ["/data/audiobooks"]}


# --------------------------------------------------------------------------- request_scan


def test_request_scan_asks_plex_for_the_folder_and_waits_for_the_scan(
    plex_emulator: PlexEmulator, root: Path
) -> None:
    emu = plex_emulator
    emu.scan_delay_s = 0.6
    local = add_file(root, "Incoming/Machine Wars/01 - Machine Wars.mp3")
    plex_file = f"{PLEX_ROOT}/Incoming/Machine Wars/01 - Machine Wars.mp3"
    source = source_for(emu, root)
    emu.clear_requests()
    started = time.monotonic()
    asked = source.request_scan([str(local)])
    waited = time.monotonic() - started
    assert asked == [f"{PLEX_ROOT}/Incoming/Machine Wars"]
    assert refreshes(emu) == [(f"/library/sections/{emu.section_id}/refresh", {"path": asked})]
    assert emu.library.track_by_file(plex_file) is not None  # returned after the scan
    assert len(emu.scans) == 1 and len(emu.scans[0].added) == 1
    assert waited >= 0.6
    polls = [r for r in emu.requests if r.path == "/library/sections"]
    assert len(polls) >= 3  # before, while refreshing, after


def test_a_file_outside_every_section_is_not_scanned(
    plex_emulator: PlexEmulator, root: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "Downloads" / "song.mp3"
    outside.parent.mkdir()
    shutil.copyfile(AUDIO, outside)
    plex_emulator.clear_requests()
    assert source_for(plex_emulator, root).request_scan([str(outside)]) == []
    assert refreshes(plex_emulator) == []
    assert plex_emulator.scans == []


def test_a_scan_that_outlasts_scan_wait_is_left_running(
    plex_emulator: PlexEmulator, root: Path, log_stream: io.StringIO
) -> None:
    emu = plex_emulator
    emu.scan_delay_s = 1.0
    local = add_file(root, "Slow/01 - Slow.mp3")
    source = source_for(emu, root, scan_wait="0.3s")
    started = time.monotonic()
    assert source.request_scan([str(local)]) == [f"{PLEX_ROOT}/Slow"]
    assert time.monotonic() - started < 0.9
    assert emu.scans == []  # Plex is still at it
    assert "Plex is still scanning; syncing what it has so far" in log_events(log_stream)
    deadline = time.monotonic() + 5
    while not emu.scans and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(emu.scans) == 1


def test_wait_zero_only_asks(plex_emulator: PlexEmulator, root: Path) -> None:
    emu = plex_emulator
    emu.scan_delay_s = 1.0
    local = add_file(root, "Quick/01 - Quick.mp3")
    emu.clear_requests()
    assert source_for(emu, root).request_scan([str(local)], wait=0) == [f"{PLEX_ROOT}/Quick"]
    after_refresh = [r.path for r in emu.requests][-1]
    assert after_refresh == f"/library/sections/{emu.section_id}/refresh"
    assert emu.scans == []


# --------------------------------------------------------------------------- alerts


def test_change_reason_reads_pms_notifications() -> None:
    watched = {"3"}

    def timeline(**entry: Any) -> dict[str, Any]:
        base = {"identifier": "com.plexapp.plugins.library", "sectionID": "3", "itemID": "9"}
        return {"type": "timeline", "size": 1, "TimelineEntry": [{**base, **entry}]}

    def activity(event: str, kind: str = "library.update.section", section: str = "3") -> dict:
        job = {"type": kind, "progress": 100, "Context": {"librarySectionID": section}}
        return {
            "type": "activity",
            "size": 1,
            "ActivityNotification": [{"event": event, "Activity": job}],
        }

    assert change_reason(timeline(type=10, state=5), watched) == "plex alert: 1 item(s) processed"
    assert change_reason(timeline(type=9, state=5, sectionID=3), watched) is not None
    assert change_reason(timeline(type=10, state=0, metadataState="created"), watched) is None
    assert change_reason(timeline(type=10, state=9, metadataState="deleted"), watched) is None
    assert change_reason(timeline(type=1, state=5), watched) is None  # a movie
    assert change_reason(timeline(type=10, state=5, sectionID="4"), watched) is None
    assert change_reason(timeline(type=10, state=5, identifier="tv.plex.x"), watched) is None
    assert change_reason(activity("ended"), watched) == "plex alert: library.update.section ended"
    assert change_reason(activity("ended", "library.refresh.items"), watched) is not None
    assert change_reason(activity("started"), watched) is None
    assert change_reason(activity("updated"), watched) is None
    assert change_reason(activity("ended", section="1"), watched) is None
    assert change_reason(activity("ended", "media.generate.bif"), watched) is None
    assert change_reason({"type": "playing", "size": 1}, watched) is None
    assert change_reason("garbage", watched) is None


def test_listen_is_off_unless_alerts_are_on(plex_emulator: PlexEmulator, root: Path) -> None:
    assert source_for(plex_emulator, root).listen(lambda reason: None) is None
    assert not any("websockets" in r.path for r in plex_emulator.requests)


def test_listen_without_websocket_client_warns_and_does_not_listen(
    plex_emulator: PlexEmulator,
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    log_stream: io.StringIO,
) -> None:
    monkeypatch.setitem(sys.modules, "websocket", None)
    assert source_for(plex_emulator, root, alerts=True).listen(lambda reason: None) is None
    assert "plex alerts need websocket-client; not listening" in log_events(log_stream)
    assert "genred[plex]" in log_stream.getvalue()


def test_listen_notifies_after_a_scan_and_stops(plex_emulator: PlexEmulator, root: Path) -> None:
    emu = plex_emulator
    reasons: queue.Queue[str] = queue.Queue()
    stop = source_for(emu, root, alerts=True).listen(reasons.put)
    assert stop is not None
    try:
        assert emu.notifications.wait_connected(1, timeout=5)
        socket_requests = [r for r in emu.requests if r.path == "/:/websockets/notifications"]
        assert [r.status for r in socket_requests] == [101]
        add_file(root, "Alerts/01 - Alerts.mp3")
        emu.scan(f"{PLEX_ROOT}/Alerts")
        first, second = reasons.get(timeout=5), reasons.get(timeout=5)
    finally:
        stop()
    # One call per message that says so: the processed items, then the scan's end.
    assert first.startswith("plex alert: ") and first.endswith(" item(s) processed")
    assert second == "plex alert: library.update.section ended"
    assert reasons.empty()
    assert [m["type"] for m in emu.notifications.sent] == [
        "activity",
        "timeline",
        "timeline",
        "activity",
    ]
    deadline = time.monotonic() + 5
    while emu.notifications.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert emu.notifications.connected == 0
    emu.scan(f"{PLEX_ROOT}/Alerts")
    time.sleep(0.2)
    assert reasons.empty()


def test_alerts_reconnect_after_the_server_drops_them(plex_emulator: PlexEmulator) -> None:
    emu = plex_emulator
    reasons: queue.Queue[str] = queue.Queue()
    alerts = PlexAlerts(
        lambda: (PlexServer(emu.url, emu.token), [str(emu.section_id)]),
        reasons.put,
        backoff_initial=0.05,
    ).start()
    try:
        assert emu.notifications.wait_connected(1, timeout=5)
        emu.notifications.disconnect_all()
        deadline = time.monotonic() + 5
        while alerts.connections < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert alerts.connections == 2
        assert emu.notifications.wait_connected(1, timeout=5)
        emu.scan()  # nothing new: still a scan that ends
        assert reasons.get(timeout=5) == "plex alert: library.update.section ended"
    finally:
        started = time.monotonic()
        alerts.stop()
    assert not alerts.running
    assert time.monotonic() - started < 2  # the listener's 10 s select() is woken up


def test_alerts_give_up_after_repeated_failures(log_stream: io.StringIO) -> None:
    attempts: list[float] = []

    def unreachable() -> tuple[PlexServer, list[str]]:
        from genred.errors import PlexUnreachable

        attempts.append(time.monotonic())
        raise PlexUnreachable("Plex did not answer while connecting: ConnectionError")

    alerts = PlexAlerts(unreachable, lambda reason: None, backoff_initial=0.01, max_failures=3)
    alerts.start()
    deadline = time.monotonic() + 5
    while alerts.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not alerts.running
    assert len(attempts) == 3
    events = log_events(log_stream)
    assert events.count("plex alerts: cannot connect") == 3
    assert events[-1] == "plex alerts: giving up after repeated failures; scheduled syncs go on"


def test_the_emulated_notification_socket_wants_the_token(plex_emulator: PlexEmulator) -> None:
    url = plex_emulator.url.replace("http", "ws") + "/:/websockets/notifications"
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(url, timeout=5)
    assert refused.value.status_code == 401
    ws = websocket.create_connection(f"{url}?X-Plex-Token={plex_emulator.token}", timeout=5)
    try:
        assert plex_emulator.notifications.wait_connected(1, timeout=5)
        plex_emulator.scan()
        first = json.loads(ws.recv())
    finally:
        ws.close()
    container = first["NotificationContainer"]
    assert container["type"] == "activity"
    note = container["ActivityNotification"][0]
    assert note["event"] == "started"
    assert note["Activity"]["type"] == "library.update.section"
    assert note["Activity"]["Context"] == {"librarySectionID": str(plex_emulator.section_id)}
