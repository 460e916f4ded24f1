"""`genred override` and `genred show`: correct a track from a terminal, and see why it has
the genres it has (the same facts as the dashboard's track page)."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Sequence

import click

from ..corrections import Correction, apply
from ..store import Store, story
from ..store.overrides import FIELDS, OverrideError
from ..taxonomy import taxonomy_from_config
from .context import EXIT_CONFIG, EXIT_FAILED, AppState, open_store, pass_state, run_stage


class NotFound(Exception):
    """No track (or album) answers to what was given; the message lists near ones."""


def find_tracks(store: Store, given: str) -> list[int]:
    """TRACK as genred's id (`42`), `source:id` (`plex:12345`), or a title (`Artist - Title`
    or a title alone, matched whole and case-insensitively)."""
    text = given.strip()
    if text.isdigit():
        row = store.conn.execute("SELECT id FROM tracks WHERE id = ?", (int(text),)).fetchone()
        if row is None:
            raise NotFound(f"there is no track {text} (`genred show` takes genred's track id)")
        return [row[0]]
    source, colon, source_id = text.partition(":")
    if colon and source and source_id and " " not in source:
        row = store.conn.execute(
            "SELECT id FROM tracks WHERE source = ? AND source_id = ?", (source, source_id)
        ).fetchone()
        if row is not None:
            return [row[0]]
    artist, dash, title = text.partition(" - ")
    rows = store.conn.execute(
        "SELECT id, artist, title, album FROM tracks WHERE removed = 0 AND ("
        "title = ? COLLATE NOCASE OR (artist = ? COLLATE NOCASE AND title = ? COLLATE NOCASE)) "
        "ORDER BY id LIMIT 11",
        (text, artist.strip(), title.strip()) if dash else (text, None, None),
    ).fetchall()
    if not rows:
        raise NotFound(f"no track is called {text!r}: give its id (see the dashboard or the API)")
    if len(rows) > 1:
        listed = "\n".join(f"  {r[0]}: {r[1]} – {r[2]} ({r[3]})" for r in rows[:10])
        raise NotFound(f"{len(rows)}{'+' if len(rows) > 10 else ''} tracks are called "
                       f"{text!r}; name one by its id:\n{listed}")  # fmt: skip
    return [rows[0][0]]


def find_album(store: Store, given: str) -> list[int]:
    """--album KEY: `source:album id` (as the track page shows it), a bare album id, or the
    album's title when only one album has it."""
    text = given.strip()
    source, colon, album_id = text.partition(":")
    clauses: list[tuple[str, tuple[str, ...]]] = []
    if colon:
        clauses.append(("source = ? AND album_source_id = ?", (source, album_id)))
    clauses += [("album_source_id = ?", (text,)), ("album = ? COLLATE NOCASE", (text,))]
    for where, params in clauses:
        albums = store.conn.execute(
            f"SELECT DISTINCT source, album_source_id FROM tracks WHERE removed = 0 AND {where}",
            params,
        ).fetchall()
        if len(albums) > 1:
            raise NotFound(
                f"{len(albums)} albums answer to {text!r}: give the key "
                + ", ".join(f"{s}:{a}" for s, a in albums[:5])
            )
        if albums:
            s, a = albums[0]
            return [
                r[0]
                for r in store.conn.execute(
                    "SELECT id FROM tracks WHERE source = ? AND album_source_id = ? "
                    "AND removed = 0 ORDER BY disc_no, track_no, id",
                    (s, a),
                )
            ]
    raise NotFound(f"there is no album {text!r} (the track page shows its key, like plex:123)")


@click.command("override")
@click.argument("tracks", nargs=-1, metavar="TRACK…")
@click.option("--album", "album", metavar="KEY", help="Every track of this album instead.")
@click.option("--genre", "genres", multiple=True, help="A genre it has; repeatable.")
@click.option("--mood", "moods", multiple=True, help="A mood it has; repeatable.")
@click.option("--label", "labels", multiple=True, help="A label it has; repeatable.")
@click.option(
    "--none",
    "nothing",
    type=click.Choice(FIELDS),
    multiple=True,
    help="It has no genre (mood, label) at all; repeatable.",
)
@click.option(
    "--keep",
    type=click.Choice(FIELDS),
    multiple=True,
    help="Give this field back to genred (drop its override); repeatable.",
)
@click.option("--clear", is_flag=True, help="Drop every override of the track(s).")
@click.option(
    "--write", is_flag=True, help="Also write back to Plex now (else: the next writeback)."
)
@click.option("--by", "who", default=None, help="Who corrects it (default: your user name).")
@pass_state
def override_cmd(
    state: AppState,
    tracks: tuple[str, ...],
    album: str | None,
    genres: tuple[str, ...],
    moods: tuple[str, ...],
    labels: tuple[str, ...],
    nothing: tuple[str, ...],
    keep: tuple[str, ...],
    clear: bool,
    write: bool,
    who: str | None,
) -> None:
    """Set a track's genres (moods, labels) by hand; they always win, and teach the model.

    TRACK is genred's track id, SOURCE:ID (plex:12345) or a title ("Artist - Title").
    The tracks are decided again at once; `--write` also writes them back now.

    \b
      genred override 42 --genre "Drum and Bass" --genre Jungle
      genred override --album plex:678 --genre Jazz
      genred override 42 --keep genre        (genred's genres again)
      genred override 42 --clear
    """
    if bool(tracks) == bool(album):
        _usage("name the TRACK(s) or an --album (one of the two)")
    given = {"genre": list(genres), "mood": list(moods), "label": list(labels)}
    for field in nothing:
        if given[field]:
            _usage(f"--none {field} and --{field} contradict each other")
    correction = Correction(
        genres=given["genre"] or ([] if "genre" in nothing else None),
        moods=given["mood"] or ([] if "mood" in nothing else None),
        labels=given["label"] or ([] if "label" in nothing else None),
        keep=keep,
        clear=clear,
    )
    if correction.empty:
        _usage("say what to set: --genre, --mood, --label, --none, --keep or --clear")
    config = state.config()
    with open_store(config) as store:
        try:
            ids = find_album(store, album) if album else _all_tracks(store, tracks)
            done = apply(
                store,
                taxonomy_from_config(config.taxonomy),
                ids,
                correction,
                origin="cli",
                who=who or _user(),
            )
        except NotFound as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_FAILED)
        except OverrideError as exc:
            _usage(str(exc))
    what = "cleared" if clear else f"{done.set} set, {done.dropped} given back to genred"
    click.echo(f"overrides of {len(ids)} track{'s' if len(ids) != 1 else ''}: {what}")
    run_stage(state, "decide")
    if write:
        run_stage(state, "writeback")
    else:
        click.echo("it reaches Plex with the next writeback (the daemon's, or `genred writeback`)")


def _all_tracks(store: Store, given: Sequence[str]) -> list[int]:
    ids: list[int] = []
    for text in given:
        ids += [i for i in find_tracks(store, text) if i not in ids]
    return ids


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _usage(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_CONFIG)


# --------------------------------------------------------------------------- show


def _list(values: Sequence[str]) -> str:
    return ", ".join(values) if values else "–"


def show_lines(found: story.TrackStory) -> list[str]:
    """The track page as text."""
    t, d = found.track, found.decision
    year = f", {t['year']}" if t.get("year") else ""
    lines = [
        f"track {t['id']}: {t['artist'] or '?'} – {t['title'] or '(untitled)'} "
        f"({t['album'] or 'no album'}{year})"
        + ("  [removed from the source]" if t["removed"] else ""),
        f"source: {t['source']} {t['source_id']}"
        + (f" · album {found.album_key}" if found.album_key else "")
        + (f" · {t['path']}" if t.get("path") else ""),
        f"tags at the source: genres {_list(t['genres'])}; moods {_list(t['moods'])}; "
        f"album genres {_list(t['album_genres'])}; artist genres {_list(t['artist_genres'])}",
    ]
    if d is not None:
        confidence = f" · confidence {d.confidence:.2f}" if d.confidence is not None else ""
        step = f" · cascade step {d.step}" if d.step else ""
        by = f" · by {d.decided_by}" if d.decided_by else ""
        lines.append(
            f"decision: {d.status} · genres {_list(d.genres)}{confidence}{step}{by} · "
            f"{d.decided_at[:16].replace('T', ' ')} UTC"
        )
        if d.moods or d.labels:
            lines.append(f"  moods {_list(d.moods)}; labels {_list(d.labels)}")
    lines.append("why:")
    lines += [f"  {line}" for line in story.why(found)]
    lines.append("predictions:")
    if not found.predictions:
        lines.append("  none yet (`genred classify`)")
    width = max((len(p.classifier) for p in found.predictions), default=0)
    for p in found.predictions:
        said = ", ".join(f"{n} {c:.2f}" for n, c in p.labels[:6]) or "nothing to say"
        lines.append(f"  {p.classifier:<{width}}  {p.label_set:<6} {said}  (v{p.version})")
    for o in found.overrides.values():
        who = f", by {o.created_by}" if o.created_by else ""
        lines.append(
            f"override: {o.field} {_list(o.values)} ({o.origin}{who}, "
            f"{o.created_at[:16].replace('T', ' ')} UTC)"
        )
    for w in found.writes:
        now = _list(w.written) if w.written is not None else f"sending {_list(w.pending or ())}"
        extra = " · edited by hand since" if w.manual_at else ""
        extra += " · reverted" if w.reverted_at else ""
        lines.append(
            f"written: {w.target} {w.kind} {w.field}: before {_list(w.original)} → {now}"
            f" ({(w.written_at or w.first_written_at)[:16].replace('T', ' ')} UTC){extra}"
        )
    for f in found.failures:
        lines.append(f"failure: {f.stage}: {f.error_type}: {f.message} ({f.attempts} attempts)")
    return lines


@click.command("show")
@click.argument("track", metavar="TRACK")
@pass_state
def show_cmd(state: AppState, track: str) -> None:
    """Why a track has its genres: its tags, every prediction, the decision and its
    provenance (cascade step, voters, album smoothing), overrides and writes.

    TRACK is genred's track id, SOURCE:ID (plex:12345) or a title ("Artist - Title").
    """
    config = state.config()
    if not config.db_path.exists():
        click.echo(f"error: no database yet at {config.db_path}: run `genred sync` first", err=True)
        sys.exit(EXIT_FAILED)
    with open_store(config) as store:
        try:
            (track_id,) = find_tracks(store, track)
        except NotFound as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_FAILED)
        found = story.load(store, track_id)
    assert found is not None
    for line in show_lines(found):
        click.echo(line)


COMMANDS = [override_cmd, show_cmd]
