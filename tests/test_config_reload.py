"""Half-saved and unreadable config files on reload: refused with what is wrong and where,
whether the daemon hears of them by its file watch or by SIGHUP; the running config stays.
Only a restart may start from the defaults (an empty file at start is allowed, and said)."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner

from genred.cli import cli
from genred.config import ConfigError, load_config
from tests.daemon_process import DaemonProcess, wait_until

REFUSED = "config edit refused; the running config stays"
VALID = "web: {enabled: false}\nschedule:\n  decide: {every: 1h}\n"


def valid(route: str) -> str:
    """data_dir: the default, $STATE_DIRECTORY (as under systemd). With SIGHUP as the route,
    the file watch is off, so every refusal is the signal's."""
    return VALID + ("watch: {config_file: false}\n" if route == "SIGHUP" else "")


# Each kind of bad file: how to make it, and what the refusal must say.
def _empty(config: Path) -> None:
    config.write_bytes(b"")  # an editor that truncates first, a failed copy


def _comments_only(config: Path) -> None:
    config.write_text("# genred config\n\n")


def _truncated(config: Path) -> None:
    text = config.read_text()
    config.write_text(text[: text.index("{every") + 4])  # cut in the middle of a mapping


def _not_utf8(config: Path) -> None:
    config.write_bytes(config.read_bytes() + b"# caf\xe9 (saved as Latin-1)\n")


def _directory(config: Path) -> None:
    config.unlink()
    config.mkdir()


KINDS = {
    "empty": (_empty, "the file is empty"),
    "comments only": (_comments_only, "the file is empty"),
    "truncated": (_truncated, "invalid YAML"),
    "not utf-8": (_not_utf8, "not UTF-8 text"),
    "directory": (_directory, "is a directory, not a config file"),
}


def restore(config: Path, text: str) -> None:
    if config.is_dir():
        shutil.rmtree(config)
    config.write_text(text)
    config.chmod(0o600)


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("route", ["file watch", "SIGHUP"])
def test_half_saved_and_unreadable_files_are_refused_with_where_and_why(
    tmp_path: Path, route: str
) -> None:
    config = tmp_path / "genred.yaml"
    restore(config, valid(route))
    with DaemonProcess(config, env={"STATE_DIRECTORY": str(tmp_path / "data")}) as daemon:
        daemon.wait_ready()
        seen = 0
        for kind, (spoil, reason) in KINDS.items():
            spoil(config)
            if route == "SIGHUP":
                daemon.signal(signal.SIGHUP)
            wait_until(
                lambda before=seen: len(daemon.events(REFUSED)) > before,
                20,
                f"the refusal of {kind}",
            )
            refusals = daemon.events(REFUSED)[seen:]
            seen = len(daemon.events(REFUSED))
            problems = [r["problem"] for r in refusals]
            assert any(p.startswith(str(config)) and reason in p for p in problems), (
                kind,
                problems,
            )
            assert not daemon.exited()
            restore(config, valid(route))
        assert daemon.events("config reloaded") == []  # never reconfigured from defaults
        # a good edit still reloads, and so everything above was seen and refused
        config.write_text(valid(route).replace("every: 1h", "every: 2h"))
        if route == "SIGHUP":
            daemon.signal(signal.SIGHUP)
        wait_until(lambda: daemon.events("config reloaded"), 20, "the reload of a good edit")
        assert daemon.events("config reloaded")[-1]["rescheduled"] == [
            "decide: every 1h → every 2h"
        ]
        assert daemon.stop() == 0


def test_unreadable_files_say_what_is_wrong_and_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "genred.yaml"
    config.write_bytes(b"data_dir: /tmp/x\nlogging:\n  level: info # \xff\n")
    with pytest.raises(ConfigError) as err:
        load_config(config, {})
    assert str(err.value).startswith(f"{config}:3: not UTF-8 text (byte 0xff at column 17)")

    config.unlink()
    config.mkdir()
    with pytest.raises(ConfigError) as err:
        load_config(config, {})
    assert str(err.value) == f"{config}: is a directory, not a config file"
    config.rmdir()

    config.write_text("data_dir: /tmp/x\n")

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(ConfigError) as err:
        load_config(config, {})
    message = str(err.value)
    assert message.startswith(f"{config}: cannot be read: permission denied (genred runs as uid ")
    assert f"mode {config.stat().st_mode & 0o777:o}" in message


def test_an_empty_file_is_the_defaults_only_when_starting(tmp_path: Path) -> None:
    config = tmp_path / "genred.yaml"
    config.write_text("\n# nothing yet\n")
    assert load_config(config, {}).web.enabled  # a start (or `config check`) may use it
    with pytest.raises(ConfigError) as err:
        load_config(config, {}, allow_empty=False)
    assert "the file is empty" in str(err.value) and "restart" in str(err.value)
    result = CliRunner().invoke(cli, ["config", "check", "--config", str(config)])
    assert result.exit_code == 0
    assert "the file is empty: every setting has its default" in result.output
