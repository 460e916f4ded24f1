from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from genred import __version__
from genred.cli import cli
from genred.store import Store, runs
from tests.conftest import EXAMPLE_CONFIG

GENRED = [sys.executable, "-m", "genred"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GENRED, *args], capture_output=True, text=True, timeout=60)


def test_version_from_a_real_process() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"genred, version {__version__}"
    if shutil.which("genred"):
        assert (
            subprocess.run(["genred", "--version"], capture_output=True, text=True).returncode == 0
        )


def test_config_check_passes_on_the_example() -> None:
    result = run("config", "check", "--config", str(EXAMPLE_CONFIG))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{EXAMPLE_CONFIG}: ok"


def test_config_check_on_a_broken_copy_names_key_and_line(tmp_path: Path) -> None:
    text = EXAMPLE_CONFIG.read_text().replace("  mode: append", "  mode: apend", 1)
    text = text.replace("  timeout: 30", "  timeout: soon", 1)
    broken = tmp_path / "genred.yaml"
    broken.write_text(text)
    result = run("config", "check", "--config", str(broken))
    assert result.returncode == 2
    lines = text.splitlines()
    mode_line = lines.index("  mode: apend") + 1
    timeout_line = lines.index("  timeout: soon") + 1
    errors = result.stderr.splitlines()
    assert f"error: {broken}:{timeout_line} plex.timeout: " in errors[0]
    assert errors[1].startswith(f"error: {broken}:{mode_line} writeback.mode: Input should be")


def test_config_path_from_environment(tmp_path: Path, write_config: object) -> None:
    path = tmp_path / "env.yaml"
    path.write_text("data_dir: /tmp/genred-x\n")
    result = CliRunner().invoke(cli, ["config", "check"], env={"GENRED_CONFIG": str(path)})
    assert result.exit_code == 0, result.output
    assert f"{path}: ok" in result.output


def test_plugins_lists_kind_name_enabled_status(tmp_path: Path) -> None:
    cfg = tmp_path / "g.yaml"
    cfg.write_text(f"data_dir: {tmp_path}\nplugins:\n  classifiers: [taxonomy]\n")
    result = CliRunner().invoke(cli, ["plugins", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()
    assert header.split() == ["kind", "name", "enabled", "status"]
    taxonomy = next(r.split() for r in rows if " taxonomy " in f" {r} ")
    assert taxonomy[:4] == ["classifiers", "taxonomy", "yes", "ok"]


def test_status_reports_counts_and_last_runs(tmp_path: Path) -> None:
    cfg = tmp_path / "g.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'data'}\n")
    result = CliRunner().invoke(cli, ["status", "--config", str(cfg)])
    assert result.exit_code == 0
    assert "no database yet" in result.output

    with Store.open(tmp_path / "data" / "genred.db") as store:
        run_id = runs.start(store, "sync", "cli")
        runs.finish(store, run_id, "ok", {"added": 12, "removed": 1})
    result = CliRunner().invoke(cli, ["status", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "tracks: 0 active, 0 removed" in result.output
    row = next(line for line in result.output.splitlines() if line.startswith("sync "))
    assert row.split()[:3] == ["sync", "ok", "cli"]
    assert "added=12 removed=1" in row


def test_bad_config_exits_2_for_any_command(tmp_path: Path) -> None:
    cfg = tmp_path / "g.yaml"
    cfg.write_text("data_dri: /tmp\n")
    result = CliRunner().invoke(cli, ["status", "--config", str(cfg)])
    assert result.exit_code == 2
    assert "g.yaml:1 data_dri: unknown key" in result.output


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, cmd in group.commands.items():
        found.append((*prefix, name))
        if isinstance(cmd, click.Group):
            found.extend(_commands(cmd, (*prefix, name)))
    return found


@pytest.mark.parametrize("path", _commands(cli))
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0
    assert "Usage: " in result.output
    assert len(result.output.splitlines()) > 3


def test_config_check_validates_taxonomy_additions(tmp_path: Path) -> None:
    cfg = tmp_path / "g.yaml"
    cfg.write_text(
        "data_dir: /tmp/x\ntaxonomy:\n  genres:\n    Chiptune: Electronic\n"
        "  aliases:\n    8-bit: Chiptun\n"
    )
    result = run("config", "check", "--config", str(cfg))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {cfg}:6 taxonomy.aliases.8-bit: target 'Chiptun' is not a known genre"
    )


def test_read_only_commands_need_no_config_file(tmp_path: Path) -> None:
    """A fresh install: no config file anywhere genred looks. `genred plugins`, `genred
    models list` and `genred status` work with the defaults and say so; the others refuse."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("GENRED_CONFIG", "STATE_DIRECTORY")}
    env["HOME"] = str(tmp_path)  # the default data dir: ~/.local/share/genred

    def fresh(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*GENRED, *args], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env
        )

    assert not Path("/etc/genred/genred.yaml").exists()
    data_dir = tmp_path / ".local" / "share" / "genred"
    note = "note: no config file found (tried --config, $GENRED_CONFIG, /etc/genred/genred.yaml"
    plugins = fresh("plugins")
    assert plugins.returncode == 0, plugins.stderr
    assert plugins.stderr.startswith(note) and f"(data dir {data_dir})" in plugins.stderr
    rows = {tuple(line.split()[:3]) for line in plugins.stdout.splitlines()[1:]}
    assert ("classifiers", "taxonomy", "yes") in rows and ("sources", "plex", "no") in rows
    models = fresh("models", "list")
    assert models.returncode == 0, models.stderr
    assert models.stderr.startswith(note)
    assert any(
        line.split()[:3] == ["msd-musicnn", "shipped", "ready"]
        for line in models.stdout.splitlines()
    )
    status = fresh("status")
    assert status.returncode == 0 and f"no database yet at {data_dir}/genred.db" in status.stdout
    assert not data_dir.exists()  # looking creates nothing
    sync = fresh("sync")
    assert sync.returncode == 2 and "error: genred: no config file found" in sync.stderr
    named = fresh("plugins", "--config", str(tmp_path / "missing.yaml"))
    assert named.returncode == 2 and "missing.yaml: no such config file" in named.stderr
