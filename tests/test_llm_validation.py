"""LLM answers that are no answer: an echoed input, a missing or empty `genres`, fields that
are not the answer's, confidences outside 0..1. They are asked again, then recorded as
failures; only validated, canonical answers reach `llm_cache`; poisoned rows of older
versions go in migration v10; a model that fails on packed requests is asked one at a time.

The model here is a scripted chat behind the plugins' own `converse` (parse, validate, ask
again), so what it answers is exactly what the test says.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from genred.config import parse_config
from genred.errors import InvalidAnswer
from genred.hookspecs import PluginContext
from genred.loader import LoadedPlugins
from genred.pipeline.classify import classify
from genred.records import TrackRecord, Usage
from genred.store import Store, schema, utcnow
from genred_plugins.llm.chat import Reply, converse
from genred_plugins.llm.labels import check_label_answer
from genred_plugins.llm.metadata import LLMMetadataClassifier
from genred_plugins.llm.prompt import AnswerItem, check_answer
from tests.stored import stored

NAME = "llm-metadata"
Policy = Callable[[list[dict[str, Any]]], dict[str, Any]]


class ScriptedLLM:
    """An LLM plugin whose answers `policy(items asked)` writes; re-asks as the plugins do."""

    name = "scripted"

    def __init__(self, policy: Policy, answer_retries: int = 2) -> None:
        self.policy, self.answer_retries = policy, answer_retries
        self.asked: list[list[str]] = []  # the ids of each request, re-asks included

    def chat(self, messages: Any, schema: Any, *, validate: Any, **_: Any) -> Any:
        items = json.loads(messages[1]["content"])["items"]

        def send(_conversation: Any) -> Reply:
            self.asked.append([i["id"] for i in items])
            return Reply(json.dumps(self.policy(items)), Usage(), "m")

        data, _, _ = converse(
            send, messages, validate=validate, answer_retries=self.answer_retries, who="scripted"
        )
        return SimpleNamespace(data=data)


def classifier(llm: Any, **settings: Any) -> LLMMetadataClassifier:
    context = PluginContext(parse_config("{}", env={}))
    context.plugins = LoadedPlugins()
    context.plugins.by_kind["llm"]["groq"] = llm
    return LLMMetadataClassifier(LLMMetadataClassifier.Config(**settings), context)


def albums(count: int) -> list[TrackRecord]:
    """`count` one-track albums: one question each."""
    return [
        TrackRecord("plex", str(n), title=f"T{n}", artist=f"A{n}", album=f"B{n}")
        for n in range(1, count + 1)
    ]


def jazz(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "items": [
            {"id": i["id"], "genres": [{"name": "Jazz", "confidence": 0.9}], "moods": []}
            for i in items
        ]
    }


def echo(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"items": items}


def failures(store: Store) -> dict[str, str]:
    return dict(store.conn.execute("SELECT item, message FROM failures"))


def cache_rows(store: Store) -> list[Any]:
    return [json.loads(r) for (r,) in store.conn.execute("SELECT response FROM llm_cache")]


# --------------------------------------------------------------------------- the checks


def test_an_echoed_input_is_no_answer() -> None:
    echoed = {"items": [{"id": "1", "artist": "Pump", "album": "Skeleton", "title": "Bone"}]}
    with pytest.raises(InvalidAnswer, match=r'item "1": no "genres" key \(the answer echoed'):
        check_answer(echoed)
    half = {"items": [{"id": "3", "artist": "Pump", "genres": [], "moods": []}]}
    with pytest.raises(InvalidAnswer, match=r'item "3": the answer echoed the input \(artist\)'):
        check_answer(half)


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        ({"id": "1", "moods": []}, 'item "1": no "genres" key'),
        ({"id": "1", "genres": []}, '"genres" is empty and no "reason" says why'),
        ({"id": "1", "genres": [], "reason": "  "}, '"genres" is empty and no "reason"'),
        ({"id": "1", "genres": None}, "genres is not a list"),
        ({"id": "1", "genres": "Jazz"}, "genres is not a list"),
        ({"id": "1", "genres": [{"name": "Jazz", "confidence": 1.7}]}, "not between 0 and 1"),
        ({"id": "1", "genres": [{"name": "Jazz", "confidence": -0.1}]}, "not between 0 and 1"),
        ({"id": "1", "genres": [{"name": "Jazz", "confidence": "0.9"}]}, "is not a number"),
        ({"id": "1", "genres": [{"name": "Jazz", "confidence": True}]}, "is not a number"),
        ({"id": "1", "genres": [{"name": "Jazz"}]}, 'is not {"name": …, "confidence": …}'),
        ({"id": "1", "genres": [{"name": "", "confidence": 0.5}]}, "name is not a name"),
        ({"id": "1", "genres": [{"name": "Jazz", "confidence": 0.5}], "why": 1}, "(why)"),
        ({"id": "1", "genres": [], "reason": 3}, '"reason" is not a string'),
    ],
)
def test_an_unusable_item_says_what_is_wrong(item: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidAnswer) as raised:
        check_answer({"items": [item]})
    assert problem in str(raised.value)


def test_moods_are_required_when_asked_and_a_reason_makes_empty_an_answer() -> None:
    item = {"id": "1", "genres": [{"name": "Jazz", "confidence": 0.8}]}
    assert check_answer({"items": [item]}) == [AnswerItem("1", (("Jazz", 0.8),), ())]
    with pytest.raises(InvalidAnswer, match='item "1": no "moods" key'):
        check_answer({"items": [item]}, moods=True)
    empty = {"id": "2", "genres": [], "moods": [], "reason": "a field recording of birds"}
    assert check_answer({"items": [empty]}) == [
        AnswerItem("2", (), (), "a field recording of birds")
    ]


def test_one_bad_item_fails_alone_and_an_all_bad_answer_is_asked_again() -> None:
    good = {"id": "1", "genres": [{"name": "Jazz", "confidence": 0.8}]}
    bad = {"id": "2", "artist": "Pump", "album": "Skeleton"}
    got = check_answer({"items": [good, bad]})
    assert [(i.id, i.problem) for i in got] == [
        ("1", None),
        ("2", 'item "2": no "genres" key (the answer echoed the input)'),
    ]
    with pytest.raises(InvalidAnswer, match=r"\(and 1 more items\)"):
        check_answer({"items": [bad, {**bad, "id": "3"}]})


def test_label_answers_are_checked_alike() -> None:
    for item, problem in [
        ({"id": "1", "artist": "Pump", "title": "Bone"}, 'no "match" key (the answer echoed'),
        ({"id": "1", "match": True}, 'no "confidence" key'),
        ({"id": "1", "match": True, "confidence": 7}, "not between 0 and 1"),
        ({"id": "1", "match": "yes", "confidence": 0.5}, "is not true or false"),
        ({"id": "1", "match": True, "confidence": 0.5, "genres": []}, "(genres)"),
    ]:
        with pytest.raises(InvalidAnswer) as raised:
            check_label_answer({"items": [item]})
        assert problem in str(raised.value)


# --------------------------------------------------------------------------- classifying


def test_an_echoing_model_leaves_failures_and_caches_nothing() -> None:
    store = stored(albums(3))
    llm = ScriptedLLM(echo)
    counts = classify(store, {NAME: classifier(llm, max_items_per_request=2)})

    assert counts[f"{NAME}.failed"] == 3 and counts[f"{NAME}.predicted"] == 0
    assert store.conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0] == 0
    assert cache_rows(store) == []
    messages = failures(store)
    assert len(messages) == 3
    assert all('no "genres" key (the answer echoed the input)' in m for m in messages.values())
    # Re-asked within the chat's bounds (3 tries a request), never more.
    assert all(len(ids) <= 2 for ids in llm.asked) and len(llm.asked) <= 3 * 4


def test_only_validated_canonical_answers_are_cached() -> None:
    store = stored(albums(3))

    def answer(items: list[dict[str, Any]]) -> dict[str, Any]:
        said = {
            "1": {"genres": [{"name": "Banana", "confidence": 0.9}, {"name": "hip hop",
                                                                      "confidence": 0.8}]},
            "2": {"genres": [], "reason": "birdsong, not music"},
            "3": {"genres": []},  # empty, no reason: no answer
        }  # fmt: skip
        by_artist = {"A1": "1", "A2": "2", "A3": "3"}
        return {"items": [{"id": i["id"], **said[by_artist[i["artist"]]]} for i in items]}

    llm = ScriptedLLM(answer)
    counts = classify(store, {NAME: classifier(llm)})
    assert counts[f"{NAME}.failed"] == 1
    stored_rows = dict(store.conn.execute("SELECT track_id, labels FROM predictions"))
    assert sorted(stored_rows.values()) == ['[["Hip-Hop", 0.8]]', "[]"]  # 2: none fits
    rows = sorted(cache_rows(store), key=json.dumps)
    assert rows == [
        {"genres": [["Hip-Hop", 0.8]], "moods": []},  # "Banana" is not stored
        {"genres": [], "moods": [], "reason": "birdsong, not music"},
    ]
    ids = dict(store.conn.execute("SELECT source_id, id FROM tracks"))
    assert '"genres" is empty and no "reason" says why' in failures(store)[str(ids["3"])]
    # The explained empty answer is an answer: another version reads both from the cache.
    asked = len(llm.asked)
    again = classify(store, {NAME: classifier(llm, min_confidence=0.2)})
    assert again[f"{NAME}.considered"] == 2 and len(llm.asked) == asked


def test_a_model_right_only_one_at_a_time_classifies_every_track() -> None:
    store = stored(albums(20))

    def single(items: list[dict[str, Any]]) -> dict[str, Any]:
        return jazz(items) if len(items) == 1 else echo(items)

    llm = ScriptedLLM(single)
    counts = classify(store, {NAME: classifier(llm, max_items_per_request=8)})
    assert counts[f"{NAME}.predicted"] == 20 and counts[f"{NAME}.failed"] == 0
    sizes = [len(ids) for ids in llm.asked]
    assert sizes[0] == 8 and sizes[-1] == 1
    assert sizes.count(1) >= 20  # every question ended up asked alone
    assert len(sizes) < 3 * 20  # packing shrank: not every request failed first


# --------------------------------------------------------------------------- migration v10


def test_migration_v10_deletes_poisoned_cache_rows(tmp_path: Path) -> None:
    path = tmp_path / "genred.db"
    old = Store(sqlite3.connect(path, isolation_level=None), path)
    assert old.migrate(target=9) == 9
    rows = {
        "echoed": ("1", {"genres": [], "moods": []}),
        "missing": ("1", {"moods": []}),
        "not-json": ("1", "{nope"),
        "explained": ("1", {"genres": [], "moods": [], "reason": "birdsong"}),
        "good": ("1", {"genres": [["Jazz", 0.9]], "moods": []}),
        "label-good": ("labels:1", {"p": 0.2}),
        "label-bad": ("labels:1", {"match": True}),
    }
    with old.transaction() as conn:
        for key, (version, answer) in rows.items():
            text = answer if isinstance(answer, str) else json.dumps(answer)
            conn.execute(
                "INSERT INTO llm_cache (key, model, prompt_version, response, created_at,"
                " used_at) VALUES (?, 'm', ?, ?, ?, ?)",
                (key, version, text, utcnow(), utcnow()),
            )
    old.close()

    with Store.open(path) as store:
        assert store.version == schema.LATEST
        kept = sorted(k for (k,) in store.conn.execute("SELECT key FROM llm_cache"))
    assert kept == ["explained", "good", "label-good"]
