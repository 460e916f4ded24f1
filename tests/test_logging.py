"""No secret may reach a log line, from our code or from a library logging through stdlib."""

from __future__ import annotations

import io
import json
import logging

import pytest

from genred.logs import configure_logging, get_logger

SECRETS = ["plexTOKEN123456", "gsk_abcdefghijklmnop", "hook-secret-999"]


@pytest.fixture
def captured() -> io.StringIO:
    stream = io.StringIO()
    configure_logging("debug", "json", SECRETS, stream=stream)
    return stream


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def test_secrets_never_reach_the_log(captured: io.StringIO) -> None:
    log = get_logger("genred.test")
    log.info("connecting", url="http://plex:32400/library?X-Plex-Token=plexTOKEN123456&x=1")
    log.info("config", token="plexTOKEN123456", api_key="whatever-it-is", nested={"secret": "s"})
    log.warning("request failed: Authorization: Bearer gsk_abcdefghijklmnop")
    logging.getLogger("plexapi").debug("GET http://h/?X-Plex-Token=unknownTok999 hook-secret-999")
    try:
        raise RuntimeError("server said: invalid key gsk_abcdefghijklmnop")
    except RuntimeError:
        log.exception("classify failed")
    text = captured.getvalue()
    for secret in [*SECRETS, "unknownTok999", "whatever-it-is"]:
        assert secret not in text
    records = lines(captured)
    assert len(records) == 5
    assert records[0]["url"] == "http://plex:32400/library?X-Plex-Token=***&x=1"
    assert records[1]["token"] == "***"
    assert records[1]["nested"] == {"secret": "***"}
    assert records[3]["logger"] == "plexapi"
    assert "RuntimeError" in str(records[4]["exception"])


def test_console_format_is_key_value() -> None:
    stream = io.StringIO()
    configure_logging("info", "console", [], stream=stream)
    get_logger("genred").info("synced", added=3)
    out = stream.getvalue()
    assert "synced" in out and "added=3" in out
    assert not out.lstrip().startswith("{")


def test_auto_format_is_json_under_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Tty()
    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    configure_logging("info", "auto", [], stream=stream)
    get_logger("genred").info("hello", n=1)
    assert json.loads(stream.getvalue())["event"] == "hello"
    monkeypatch.delenv("JOURNAL_STREAM")
    stream2 = Tty()
    configure_logging("info", "auto", [], stream=stream2)
    get_logger("genred").info("hello", n=1)
    assert "n=1" in stream2.getvalue()


def test_level_filters(captured: io.StringIO) -> None:
    configure_logging("warning", "json", [], stream=captured)
    get_logger("genred").info("quiet")
    get_logger("genred").warning("loud")
    assert [r["event"] for r in lines(captured)] == ["loud"]
