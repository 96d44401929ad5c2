"""The small `---` header of a template file: `key: value` lines, each value a Jinja string.

Kept deliberately tiny (no YAML) so that every value keeps its own line number for error messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class FrontMatterError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        self.line = line
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Field:
    value: str
    line: int


@dataclass(frozen=True, slots=True)
class Document:
    fields: dict[str, Field] = field(default_factory=dict)
    body: str = ""
    body_line: int = 1
    """The file line where the body starts, so body errors report file lines."""

    def get(self, key: str, default: str | None = None) -> str | None:
        item = self.fields.get(key)
        return item.value if item is not None else default


def parse(text: str) -> Document:
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return Document(body=text, body_line=1)
    fields: dict[str, Field] = {}
    for index in range(1, len(lines)):
        raw = lines[index]
        number = index + 1
        if raw.strip() == "---":
            return Document(fields=fields, body="\n".join(lines[index + 1 :]), body_line=number + 1)
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        key, sep, value = raw.partition(":")
        if not sep or not key.strip().isidentifier():
            raise FrontMatterError(number, f"front matter line is not `key: value`: {raw.strip()!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        fields[key.strip()] = Field(value, number)
    raise FrontMatterError(1, "front matter opened with `---` is never closed")
