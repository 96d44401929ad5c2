"""The template library: files by journey, step, channel and locale; compiled once, rendered per recipient.

A locale missing for a template falls back along fr-CA -> fr -> en. Files and names: templates/files.py;
compiled forms: templates/compiled.py.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from audiences.program_dir import templates_folder
from templates.compiled import Compiled, compile_file
from templates.errors import TemplateError, TemplateNotFound
from templates.files import TemplateFile, display_path, split_name
from templates.formatting import formatting_locale
from templates.locales import DEFAULT_LOCALE, fallback_chain, normalize_locale
from templates.rendered import Rendered
from templates.vocabulary import Channel


class TemplateLibrary:
    """Every template file under a root; compiled once per (template, locale), rendered many times."""

    def __init__(self, root: Path, files: Iterable[TemplateFile], default_locale: str = DEFAULT_LOCALE) -> None:
        self.root = root
        self.default_locale = default_locale
        self.files: dict[tuple[str, str], dict[str, TemplateFile]] = {}
        for file in files:
            self.files.setdefault((file.journey, file.step), {})[file.locale] = file
        self._compiled: dict[Path, Compiled] = {}
        self._resolved: dict[tuple[str, str, str], Compiled] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, root: str | os.PathLike[str] | None = None, *, eager: bool = True) -> TemplateLibrary:
        """Find every template under `root` (default: the program's templates folder); with `eager`, compile
        them all now (fail fast on a bad one)."""
        base = Path(root) if root is not None else templates_folder()
        if not base.is_dir():
            raise TemplateNotFound(display_path(base), None, "template folder does not exist")
        files = []
        for path in sorted(base.rglob("*")):
            if path.is_file() and not any(part.startswith(("_", ".")) for part in path.relative_to(base).parts):
                file = split_name(path, base)
                if file is not None:
                    files.append(file)
        library = cls(base, files)
        if eager:
            for file in files:
                library.compiled(file)
        return library

    # -- lookup

    def templates(self) -> list[tuple[str, str]]:
        return sorted(self.files)

    def exists(self, journey: str, step: str) -> bool:
        return (journey, step) in self.files

    def locales(self, journey: str, step: str) -> list[str]:
        return sorted(self._files_of(journey, step))

    def files_for(self, journey: str, step: str) -> list[TemplateFile]:
        """Every locale's file of one template (for checks that read the sources)."""
        return list(self._files_of(journey, step).values())

    def _files_of(self, journey: str, step: str) -> dict[str, TemplateFile]:
        try:
            return self.files[(journey, step)]
        except KeyError:
            known = ", ".join(f"{j}/{s}" for j, s in self.templates()[:40])
            raise TemplateNotFound(display_path(self.root / journey), None,
                                   f"no template {journey}/{step} (known: {known})") from None

    def channel_of(self, journey: str, step: str) -> Channel:
        channels = {f.channel for f in self._files_of(journey, step).values()}
        if len(channels) != 1:
            raise TemplateError(display_path(self.root / journey), None,
                                f"{journey}/{step} has files for several channels: {', '.join(sorted(channels))}")
        return channels.pop()

    def purpose_of(self, journey: str, step: str) -> str:
        return self.compiled(self.resolve(journey, step, self.default_locale)).purpose

    def resolve(self, journey: str, step: str, locale: str | None) -> TemplateFile:
        """The file for `locale`, else the nearest fallback (fr-CA -> fr -> default)."""
        by_locale = self._files_of(journey, step)
        for candidate in fallback_chain(locale, self.default_locale):
            if candidate in by_locale:
                return by_locale[candidate]
        raise TemplateNotFound(display_path(self.root / journey / step), None,
                               f"no file for locale {normalize_locale(locale)!r} and no fallback "
                               f"(tried {', '.join(fallback_chain(locale, self.default_locale))})")

    def compiled(self, file: TemplateFile) -> Compiled:
        found = self._compiled.get(file.path)
        if found is None:
            with self._lock:
                found = self._compiled.get(file.path)
                if found is None:
                    found = compile_file(file)
                    self._compiled[file.path] = found
        return found

    # -- rendering

    def render(self, journey: str, step: str, locale: str | None, context: Mapping[str, Any]) -> Rendered:
        """Personalise one message; numbers and dates format in `locale` and `context["time_zone"]`."""
        key = (journey, step, locale or self.default_locale)
        compiled = self._resolved.get(key)
        if compiled is None:
            compiled = self.compiled(self.resolve(journey, step, locale))
            self._resolved[key] = compiled
        values = dict(context)
        values["locale"] = formatting_locale(locale, compiled.file.locale)  # consistent with the text's language
        return compiled.render(values)
