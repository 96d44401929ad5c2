"""Finding journeys: one file per journey in the program's journeys folder (journeys/definitions/ for the
shipped program, `<LOYALFLOW_PROGRAM_DIR>/journeys/` for yours) and LOYALFLOW_JOURNEYS_PATH.

A file defines `JOURNEY = Journey(...)`. Loading never stops at the first bad file: every
problem is collected with its file and line, so `loyalflow check` can report them all at once.
"""

from __future__ import annotations

import importlib.util
import os
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from audiences.errors import LoyalflowError, PlacedError
from audiences.program_dir import journeys_folder
from journeys.dsl import Journey
from templates.problems import Problem

DEFINITIONS = Path(__file__).parent / "definitions"


class UnknownJourney(LoyalflowError):
    """A journey name that no file defines; the message lists the known ones."""


class JourneyLoadError(PlacedError):
    """A journey file failed to load; names the file and line."""


@dataclass
class Loaded:
    journeys: dict[str, Journey] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def journey_files() -> list[Path]:
    folders = [journeys_folder()] + [Path(p) for p in os.environ.get("LOYALFLOW_JOURNEYS_PATH", "").split(os.pathsep) if p]
    return sorted(f for folder in folders if folder.is_dir() for f in folder.glob("*.py") if not f.name.startswith("_"))


def _load_file(path: Path) -> Journey:
    spec = importlib.util.spec_from_file_location(f"loyalflow_journey_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    journey = getattr(module, "JOURNEY", None)
    if not isinstance(journey, Journey):
        raise JourneyLoadError(str(path), 1, "defines no `JOURNEY = Journey(...)`")
    return journey


def load_all(files: list[Path] | None = None) -> Loaded:
    loaded = Loaded()
    for path in files if files is not None else journey_files():
        try:
            journey = _load_file(path)
        except SyntaxError as exc:
            loaded.problems.append(Problem(str(path), exc.lineno, f"syntax error: {exc.msg}"))
            continue
        except JourneyLoadError as exc:
            loaded.problems.append(Problem.of(exc))
            continue
        except Exception as exc:  # a broken journey must not hide the others
            frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
            line = frames[-1].lineno if frames else None
            loaded.problems.append(Problem(str(path), line, f"{type(exc).__name__}: {exc}"))
            continue
        if journey.name in loaded.journeys:
            first = loaded.journeys[journey.name].where
            loaded.problems.append(Problem(journey.where.path, journey.where.line,
                                               f"duplicate journey name {journey.name!r} (also defined at {first})"))
            continue
        loaded.journeys[journey.name] = journey
    return loaded


_cache: Loaded | None = None
_cache_key: tuple[str, ...] | None = None


def journeys() -> dict[str, Journey]:
    """Every journey that loads; a file that fails to load raises with its place (cached per program)."""
    global _cache, _cache_key
    key = tuple(str(f) for f in journey_files())
    if _cache is None or key != _cache_key:
        _cache, _cache_key = load_all(), key
    if _cache.problems:
        p = _cache.problems[0]
        raise JourneyLoadError(p.path, p.line or 1, f"{p.message} (run `loyalflow check` for all problems)")
    return _cache.journeys


def get_journey(name: str) -> Journey:
    found = journeys()
    if name not in found and name.startswith("broadcast_"):  # a broadcast is a row, not a file
        from journeys.broadcasts import journey_named

        if (broadcast := journey_named(name)) is not None:
            return broadcast
    if name not in found:
        raise UnknownJourney(f"unknown journey {name!r}; known journeys: {', '.join(sorted(found))}")
    return found[name]


