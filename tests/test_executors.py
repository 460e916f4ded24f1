"""The executor interface: `extract.executor` picks the built-in local pool or an
executor plugin by name (enabling it), a missing one fails the stage with the reason, and
the local executor keeps one pool (and one loaded model) per job until released."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pebble")
np = pytest.importorskip("numpy")
sf = pytest.importorskip("soundfile")

from genred.config import Config, ConfigError, parse_config  # noqa: E402
from genred.errors import GenredError  # noqa: E402
from genred.hookspecs import PluginContext  # noqa: E402
from genred.loader import load_plugins  # noqa: E402
from genred.pipeline.executors import LocalExecutor, executor_for  # noqa: E402
from genred.records import FileItem, FileJob, FileWork  # noqa: E402
from tests.fake_extractors import FakeBatchedExtractor, summary  # noqa: E402


def test_extract_executor_enables_the_plugin_it_names() -> None:
    chosen = Config.model_validate({"extract": {"executor": "ray"}})
    assert [(e.name, e.enabled, e.settings) for e in chosen.plugins.executors] == [
        ("ray", True, {})
    ]
    configured = Config.model_validate(
        {"extract": {"executor": "ray"}, "plugins": {"executors": {"ray": {"address": "auto"}}}}
    )
    assert configured.plugins.executors[0].settings == {"address": "auto"}
    assert Config().extract.executor == "local" and Config().plugins.executors == []


def test_an_unknown_executor_is_a_config_error(tmp_path: Path) -> None:
    config = parse_config(f"data_dir: {tmp_path}\nextract: {{executor: nope}}\n", "g.yaml", {})
    with pytest.raises(ConfigError, match="unknown executors plugin"):
        load_plugins(PluginContext(config))


def test_an_executor_that_is_not_available_fails_the_stage_saying_what_to_install() -> None:
    config = Config.model_validate({"extract": {"executor": "ray"}})
    with pytest.raises(GenredError, match=r"genred\[ray\]"):
        executor_for(config, {})
    assert isinstance(executor_for(Config(), {}), LocalExecutor)


def test_the_local_executor_keeps_its_pool_and_model_for_the_job_until_released(
    tmp_path: Path,
) -> None:
    t = np.arange(4000) / 8000
    files = []
    for i in range(4):
        path = tmp_path / f"{i}.wav"
        sf.write(path, (0.2 * np.sin(2 * np.pi * (300 + 50 * i) * t)).astype("f4"), 8000)
        files.append(FileItem(i, str(path)))
    plugin = FakeBatchedExtractor()
    job = FileJob("extract:fake", "1", plugin, FileWork("prepare", "extract_batch", 3), 30, 2)
    executor = LocalExecutor()
    first = dict(executor.run(job, files[:2]))
    pool = executor._pool
    second = dict(executor.run(job, files[2:]))
    assert executor._pool is pool and plugin.loaded == 1 and plugin.unloaded == 0
    for i, item in enumerate(files):
        np.testing.assert_array_equal({**first, **second}[i], summary(Path(item.path)))
    executor.release()
    assert executor._pool is None and plugin.unloaded == 1
    other = FileJob("extract:fake", "2", plugin, FileWork("prepare", "extract_batch", 3), 30, 2)
    dict(executor.run(other, files[:1]))
    assert plugin.loaded == 2  # another job: its own pool and load
    executor.release()
