"""`genred override` and `genred show` on a library decided by the real stages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from genred.cli import cli
from genred.store import Store, story
from genred.testing import Harness
from tests.dashboard_library import SCRIPT_TITLE, TRACKS, ids


@pytest.fixture
def library(tmp_path: Path) -> Iterator[tuple[Path, dict[str, int]]]:
    config = tmp_path / "genred.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\nplugins: {{classifiers: [taxonomy]}}\n")
    config.chmod(0o600)
    with Harness(tmp_path, config.read_text()) as harness:
        harness.add_tracks(TRACKS, source="plex")
        harness.run("classify")
        harness.run("decide")
        yield config, ids(harness)


def genred(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--config", str(config)])


def decision(config: Path, track_id: int) -> story.TrackStory:
    with Store.open(config.parent / "data" / "genred.db") as store:
        found = story.load(store, track_id)
    assert found is not None
    return found


def test_override_a_track_by_id_and_it_is_decided_at_once(library: tuple[Path, dict]) -> None:
    config, track = library
    angel = track["Saint Angel"]
    result = genred(
        config, "override", str(angel), "--genre", "drum and bass", "--genre", "Jungle",
        "--mood", "dark", "--by", "ada",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "overrides of 1 track: 2 set, 0 given back to genred" in result.output
    assert "the next writeback" in result.output
    found = decision(config, angel)
    assert found.decision.genres == ("Drum & Bass", "Jungle")
    assert found.decision.moods == ("dark",) and found.decision.decided_by == "override"
    assert found.overrides["genre"].origin == "cli" and found.overrides["genre"].created_by == "ada"

    back = genred(config, "override", str(angel), "--keep", "genre")
    assert back.exit_code == 0 and "0 set, 1 given back to genred" in back.output
    again = decision(config, angel)
    assert again.decision.status == "review" and set(again.overrides) == {"mood"}
    cleared = genred(config, "override", str(angel), "--clear")
    assert cleared.exit_code == 0 and decision(config, angel).overrides == {}


def test_override_an_album_by_key_or_title(library: tuple[Path, dict]) -> None:
    config, track = library
    result = genred(config, "override", "--album", "plex:1", "--genre", "Bebop")
    assert result.exit_code == 0 and "overrides of 3 tracks" in result.output
    assert decision(config, track["Blue in Green"]).decision.genres == ("Bebop",)
    by_title = genred(config, "override", "--album", "timeless", "--none", "genre")
    assert by_title.exit_code == 0, by_title.output
    assert decision(config, track["Timeless"]).decision.genres == ()
    assert genred(config, "override", "--album", "nope", "--genre", "x").exit_code == 1


def test_tracks_by_source_id_and_by_title(library: tuple[Path, dict]) -> None:
    config, track = library
    assert genred(config, "override", "plex:302", "--genre", "Speed Metal").exit_code == 0
    assert decision(config, track["Ace of Spades"]).decision.genres == ("Speed Metal",)
    named = genred(config, "override", "Miles Davis - So What", "--genre", "Modal Jazz")
    assert named.exit_code == 0, named.output
    assert decision(config, track["So What"]).decision.genres == ("Modal Jazz",)
    missing = genred(config, "override", "No Such Song", "--genre", "x")
    assert missing.exit_code == 1 and "no track is called 'No Such Song'" in missing.output


def test_override_says_what_is_wrong(library: tuple[Path, dict]) -> None:
    config, track = library
    one = str(track["So What"])
    cases = {
        (): "name the TRACK(s) or an --album",
        (one,): "say what to set",
        (one, "--genre", "x" * 200): "longer than 100 characters",
        (one, "--genre", "x", "--none", "genre"): "contradict",
        ("99999", "--genre", "x"): "there is no track 99999",
    }
    for args, message in cases.items():
        result = genred(config, "override", *args)
        assert result.exit_code in (1, 2) and message in result.output, (args, result.output)


def test_show_tells_why(library: tuple[Path, dict]) -> None:
    config, track = library
    result = genred(config, "show", str(track["So What"]))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"track {track['So What']}: Miles Davis – So What (Kind of Blue, 1959)"
    assert "source: plex 101 · album plex:1" in result.output
    assert "tags at the source: genres jazz" in result.output
    assert "decision: decided · genres Jazz · confidence 1.00 · by taxonomy" in result.output
    assert "  decided: Jazz (confidence 1.00)" in result.output
    assert "    Jazz: taxonomy 1.00" in result.output
    assert any(line.strip().startswith("taxonomy") and "Jazz 1.00" in line for line in lines)

    genred(config, "override", str(track["So What"]), "--genre", "Hard Bop", "--by", "ada")
    overridden = genred(config, "show", "plex:101").output
    assert "genres set by hand (cli by ada" in overridden
    assert "override: genre Hard Bop (cli, by ada" in overridden
    script = genred(config, "show", str(track[SCRIPT_TITLE])).output
    assert "needs review: no classifier said anything about its genre" in script
    assert json.dumps(SCRIPT_TITLE)[1:-1] in script  # plain text on a terminal
