"""Reading and writing the user's settings files without losing what the user wrote.

TOML goes through tomlkit, which keeps comments, blank lines, key order and quoting; every TOML
file is also parsed by tomllib first, the stricter parser, so a file the CLI would reject is
refused here too. JSON keeps the key order and the indentation the file already had.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import tomlkit
import tomlkit.exceptions


class DocumentError(Exception):
    """A user file that cannot be merged into; the message names the file and the fix."""


def plain(value):
    """A tomlkit item as the Python value it stands for (dicts, lists and scalars as they are)."""
    if hasattr(value, "unwrap"):
        return value.unwrap()
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def parse(text: str, fmt: str, path: Path):
    """The file's document: a dict for JSON, a tomlkit document for TOML."""
    if fmt == "json":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            if _strip_json_comments(text) is not None:
                raise DocumentError(
                    f"{path}: has comments, which JSON itself does not allow and this install cannot keep; "
                    f"move them out of the file (or into a key such as \"//\") and run again; nothing was changed"
                ) from None
            raise DocumentError(f"{path}: not valid JSON ({exc}); fix or move it away and run again; nothing was changed") from None
        if not isinstance(document, dict):
            raise DocumentError(f"{path}: expected a JSON object at the top, found {type(document).__name__}; "
                                f"fix or move it away and run again; nothing was changed")
        return document
    if fmt == "toml":
        try:
            tomllib.loads(text)
            return tomlkit.parse(text)
        except (tomllib.TOMLDecodeError, tomlkit.exceptions.TOMLKitError) as exc:
            raise DocumentError(f"{path}: not valid TOML ({exc}); fix or move it away and run again; nothing was changed") from None
    raise ValueError(f"cannot merge into a {fmt} file ({path})")


def empty(fmt: str):
    return {} if fmt == "json" else tomlkit.document()


def dump(document, fmt: str, like: str | None = None) -> bytes:
    """Serialized; JSON indented as `like` (the file's text before) was, two spaces otherwise."""
    if fmt == "toml":
        return tomlkit.dumps(document).encode()
    indent = _json_indent(like) if like else "  "
    text = json.dumps(document, indent=indent, ensure_ascii=False)
    return (text + ("" if like is not None and not like.endswith("\n") else "\n")).encode()


def new_value(value, fmt: str):
    """A value to put into a document: long TOML lists one item per line, as the renderer writes them."""
    if fmt == "toml" and isinstance(value, list) and len(value) > 3 and all(isinstance(v, str) for v in value):
        array = tomlkit.array()
        array.extend(value)
        return array.multiline(True)
    return value


def _json_indent(text: str) -> str:
    match = re.search(r"^[{\[][ \t]*\r?\n([ \t]+)\S", text)
    return match.group(1) if match else "  "


def _strip_json_comments(text: str) -> str | None:
    """The text without // and /* */ comments (outside strings), if that makes it valid JSON."""
    out, i, n, in_string = [], 0, len(text), False
    while i < n:
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
            out.append(c)
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                return None
            i = end + 2
            continue
        else:
            out.append(c)
        i += 1
    stripped = "".join(out)
    try:
        json.loads(stripped)
    except json.JSONDecodeError:
        return None
    return stripped
