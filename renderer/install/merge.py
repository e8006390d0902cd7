"""Merging the profile's settings into a user's document, and taking them out again.

`apply` walks the profile's document and changes the user's in place, key by key: a table the
user lacks is created, a list gets the entries it lacks, a scalar gets the profile's value only
where strictness.decide says so. It returns the changes it made, as plain data (they go into the
install's state file), and notes for the summary. `unapply` reverses recorded changes on the
document as it is now: an entry the user has changed since the install is left as it is, so what
remains is the user's own settings. A re-install is unapply (the last install's changes) then
apply (the profile as it is now): a rule the profile dropped goes, nothing else moves.

Pure: documents in, documents changed, data out; no disk.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from renderer.install import strictness
from renderer.install.documents import new_value, plain
from renderer.install.strictness import ABSENT


class MergeConflict(Exception):
    """The user's document has another type where the profile needs a table or a list."""

    def __init__(self, path: tuple[str, ...], message: str):
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class Note:
    """One thing the summary says about a setting: kept (yours, stricter), set (ours), or
    left (you changed it after the last install; the install left your value)."""

    what: str  # kept | set | left
    path: tuple[str, ...]
    text: str


def _kind_of(value) -> str:
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return f"the value {strictness.show(plain(value))}"


def apply(document, ours: Mapping, kind: str, fmt: str, path: tuple[str, ...] = ()) -> tuple[list[dict], list[Note]]:
    changes: list[dict] = []
    notes: list[Note] = []
    for key, value in ours.items():
        here = (*path, key)
        present = key in document
        order = strictness.order_for(kind, here)
        if isinstance(value, Mapping):
            if not present:
                document[key] = {} if fmt == "json" else _toml_table()
                changes.append({"table": list(here)})
            elif not isinstance(document[key], Mapping):
                raise MergeConflict(here, f"{'.'.join(here)} is {_kind_of(document[key])} in your file; the profile needs a table there")
            more, more_notes = apply(document[key], value, kind, fmt, here)
            changes += more
            notes += more_notes
        elif isinstance(value, list) and not isinstance(order, strictness.AllowList):
            if not present:
                document[key] = new_value(list(value), fmt)
                changes.append({"items": list(here), "added": list(value), "created": True})
            elif not isinstance(document[key], list):
                raise MergeConflict(here, f"{'.'.join(here)} is {_kind_of(document[key])} in your file; the profile needs a list there")
            else:
                have = plain(document[key])
                added = [item for item in value if item not in have]
                if added:
                    document[key].extend(added)
                    changes.append({"items": list(here), "added": added, "created": False})
        else:
            users = plain(document[key]) if present else ABSENT
            decision = strictness.decide(kind, here, users, value)
            if decision.keep_users:
                if decision.note:
                    notes.append(Note("kept", here, f"kept your {'.'.join(here)} = {strictness.show(users)}: {decision.note}"))
                continue
            document[key] = new_value(decision.value, fmt)  # in place: tomlkit keeps the line's comment
            change = {"set": list(here), "had": present, "value": decision.value}
            if present:
                change["before"] = users
            changes.append(change)
            if present:
                notes.append(Note("set", here, f"{'.'.join(here)}: {strictness.show(users)} -> "
                                               f"{strictness.show(decision.value)} ({decision.note})"))
    return changes, notes


def _toml_table():
    import tomlkit

    return tomlkit.table()


MISSING = object()


def _lookup(document, path: list[str]):
    node = document
    for key in path[:-1]:
        if not isinstance(node, Mapping) or key not in node:
            return None, MISSING
        node = node[key]
    if not isinstance(node, Mapping) or path[-1] not in node:
        return node if isinstance(node, Mapping) else None, MISSING
    return node, node[path[-1]]


def unapply(document, changes: list[dict], fmt: str) -> list[Note]:
    """Take recorded changes out of `document` (in place), newest first."""
    notes: list[Note] = []
    for change in reversed(changes):
        if "set" in change:
            path = change["set"]
            parent, current = _lookup(document, path)
            if current is MISSING:
                continue
            if plain(current) != change["value"]:
                notes.append(Note("left", tuple(path), f"left your {'.'.join(path)} = {strictness.show(plain(current))}: "
                                                       f"you changed it after the install"))
                continue
            if change["had"]:
                parent[path[-1]] = new_value(change["before"], fmt)
            else:
                del parent[path[-1]]
        elif "items" in change:
            path = change["items"]
            parent, current = _lookup(document, path)
            if current is MISSING or not isinstance(current, list):
                continue
            for item in change["added"]:
                values = plain(current)
                if item in values:
                    del current[values.index(item)]
            if change["created"] and len(current) == 0:
                del parent[path[-1]]
        elif "table" in change:
            path = change["table"]
            parent, current = _lookup(document, path)
            if isinstance(current, Mapping) and len(current) == 0:
                del parent[path[-1]]
        else:
            raise ValueError(f"unknown change record {change!r}")
    return notes


def leaves(document, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], object]:
    """{path: value} for every scalar, and every list as a whole, in a plain document."""
    out: dict[tuple[str, ...], object] = {}
    if isinstance(document, Mapping):
        for key, value in document.items():
            if isinstance(value, Mapping) and value:
                out.update(leaves(value, (*path, key)))
            else:
                out[(*path, key)] = value
    return out
