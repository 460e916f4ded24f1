"""The shape of the code: no import cycles, the core never imports a plugin, plugins use
only the public API, and the lists that must agree with the stage registry do."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from genred.config import ScheduleConfig
from genred.stages import SCHEDULED, STAGES
from tools.import_graph import ROOT, cycles, graph, modules


def test_the_import_graph_has_no_cycles() -> None:
    edges = graph()
    assert len(edges) > 100  # it really read the tree
    assert cycles(edges) == []


def test_cycles_are_found_when_there_are_some() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(edges) == [["a", "b", "c"]]


def test_the_core_never_imports_a_plugin() -> None:
    leaks = {
        (module, target)
        for module, targets in graph().items()
        if module.startswith("genred.")
        for target in targets
        if target.startswith("genred_plugins")
    }
    assert leaks == set()


def test_plugins_import_genred_only_through_the_public_api() -> None:
    private = {
        (module, target)
        for module, targets in graph().items()
        if module.startswith("genred_plugins")
        for target in targets
        if target.split(".")[0] == "genred" and target != "genred.api"
    }
    assert private == set()


def test_every_package_on_disk_is_installed() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(project["tool"]["setuptools"]["packages"])
    on_disk = {name for name, file in modules().items() if file.name == "__init__.py"}
    assert on_disk <= listed


def test_the_schedule_section_has_one_entry_per_scheduled_stage() -> None:
    fields = set(ScheduleConfig.model_fields) - {"first_sync_after"}
    assert fields == set(SCHEDULED)
    assert all(STAGES[name].lock for name in SCHEDULED)


IGNORE = "type: " + "ignore"  # spelled apart so this file does not match itself


def test_every_type_ignore_says_why() -> None:
    bare = []
    for folder in ("daemon", "plugins", "tests", "bench", "tools"):
        for file in Path(ROOT / folder).rglob("*.py"):
            for number, line in enumerate(file.read_text().splitlines(), 1):
                if IGNORE in line and not re.search(IGNORE + r"\[[^\]]+\]\s*#", line):
                    bare.append(f"{file.relative_to(ROOT)}:{number}")
    assert bare == []
