"""How strict a setting's value is: the one table the install consults before it changes a
scalar the user already set.

Every scalar the interactive profile renders into a file it merges into has an entry here, keyed
by the file's kind and the setting's dotted path (a test holds the renderer to this table). A
value the user set that ranks stricter than the profile's is kept; one that ranks the same is
left alone; one that ranks lower, or that the table cannot rank, is replaced by the profile's
and the summary says so. Lists are unions (more rules, more excluded variables), except the
admin allow-lists of Codex's requirements, where fewer allowed values is stricter: those keep
the values both sides allow.

Pure data and small functions; nothing here touches the disk.
"""

from __future__ import annotations

from dataclasses import dataclass

ABSENT = object()


@dataclass(frozen=True)
class Ranked:
    """Values from the least strict to the strictest; a tuple inside is a set of equals."""

    levels: tuple
    why: str = ""

    def rank(self, value) -> int | None:
        for index, level in enumerate(self.levels):
            if value == level or (isinstance(level, tuple) and value in level):
                return index
        return None


@dataclass(frozen=True)
class ProfileValueStrictest:
    """Switches such as the quiet environment: the profile's value is the strict one, and
    any other value is less strict."""

    why: str = ""


@dataclass(frozen=True)
class AllowList:
    """A list of what may be used: the strict result keeps what both sides allow."""

    why: str = ""


QUIET = "off is quieter: no traffic but the model's"
OFF_IS_STRICTER = Ranked((True, False), QUIET)

# A Codex approval_policy table {granular = {...}}: it asks as on-request does, and rejects the
# categories set to false without asking, so it is at least as strict as on-request.
CODEX_GRANULAR = "granular"

ORDERS: dict[str, dict[str, object]] = {
    "claude-settings": {
        "permissions.defaultMode": Ranked(
            ("bypassPermissions", "auto", "acceptEdits", ("default", "manual"), "dontAsk", "plan"),
            "plan runs nothing that changes files; dontAsk refuses anything not pre-approved; "
            "default asks; acceptEdits, auto and bypassPermissions ask less"),
        "permissions.disableBypassPermissionsMode": Ranked((ABSENT, "disable"), "disable refuses bypass mode"),
        "permissions.disableAutoMode": Ranked((ABSENT, "disable"), "disable refuses auto mode"),
        "env.*": ProfileValueStrictest(QUIET),
    },
    "claude-managed": {
        "permissions.disableBypassPermissionsMode": Ranked((ABSENT, "disable"), "disable refuses bypass mode"),
        "permissions.disableAutoMode": Ranked((ABSENT, "disable"), "disable refuses auto mode"),
        "disableAllHooks": Ranked((True, False), "hooks stay on"),
        "env.*": ProfileValueStrictest(QUIET),
    },
    "codex-config": {
        "approval_policy": Ranked(("never", "on-failure", "on-request", CODEX_GRANULAR, "untrusted"),
                                  "untrusted asks for everything but known read-only commands; on-request "
                                  "lets the model decide; never never asks"),
        "sandbox_mode": Ranked(("danger-full-access", "workspace-write", "read-only"),
                               "read-only writes nothing; workspace-write writes the workspace only"),
        "check_for_update_on_startup": OFF_IS_STRICTER,
        "analytics.enabled": OFF_IS_STRICTER,
        "feedback.enabled": OFF_IS_STRICTER,
        "features.plugins": Ranked((True, False), "plugins off: no third-party code in the session"),
        "features.unbounded_connection_retries": Ranked((True, False), "bounded retries: an unreachable provider fails"),
        "shell_environment_policy.inherit": Ranked(("all", "core", "none"),
                                                   "core and none pass fewer variables to commands"),
        "shell_environment_policy.ignore_default_excludes": Ranked(
            (True, False), "false strips *KEY*, *SECRET* and *TOKEN* variables from commands"),
    },
    "codex-requirements": {
        "allowed_approval_policies": AllowList("fewer allowed approval policies"),
        "allowed_sandbox_modes": AllowList("fewer allowed sandbox modes"),
        "features.hooks": Ranked((False, True), "hooks on"),
        "features.unified_exec_tty": Ranked((True, False), "no interactive shell the hook cannot see"),
    },
    "gemini-settings": {
        "security.disableYoloMode": Ranked((ABSENT, False, True), "yolo mode refused"),
        "privacy.usageStatisticsEnabled": OFF_IS_STRICTER,
        "telemetry.enabled": OFF_IS_STRICTER,
        "general.enableAutoUpdate": OFF_IS_STRICTER,
        "general.enableAutoUpdateNotification": OFF_IS_STRICTER,
        "hooksConfig.enabled": Ranked((False, True), "hooks on"),
    },
}
ORDERS["gemini-system-settings"] = ORDERS["gemini-settings"]


def order_for(kind: str, path: tuple[str, ...]):
    table = ORDERS.get(kind, {})
    dotted = ".".join(path)
    if dotted in table:
        return table[dotted]
    wildcard = ".".join((*path[:-1], "*"))
    return table.get(wildcard)


@dataclass(frozen=True)
class Decision:
    value: object  # what the file gets
    keep_users: bool  # True: the user's value stays (it is at least as strict)
    note: str  # why, in words, for the summary


def decide(kind: str, path: tuple[str, ...], users, ours) -> Decision:
    """The value a setting gets when the user has `users` (ABSENT if not set) and the profile
    says `ours`. Raises KeyError for a path the table does not know: a renderer that starts
    setting a new scalar must say how strict its values are first."""
    order = order_for(kind, path)
    if order is None:
        raise KeyError(f"{kind}: no strictness order for {'.'.join(path)}; add one to renderer/install/strictness.py")
    if users is ABSENT:
        return Decision(ours, False, "")
    if users == ours:
        return Decision(ours, True, "")
    if isinstance(order, ProfileValueStrictest):
        return Decision(ours, False, order.why)
    if isinstance(order, AllowList):
        if not isinstance(users, list):
            return Decision(ours, False, "yours was not a list")
        both = [value for value in users if value in ours]
        if not both:
            return Decision(ours, False, f"yours allowed only {_show(users)}, none of which the profile allows")
        if both == list(users):
            return Decision(list(users), True, f"yours allows no more than the profile's {_show(ours)}")
        return Decision(both, False, f"yours also allowed {_show([v for v in users if v not in both])}; kept what both allow")
    users_rank = order.rank(_rankable(kind, path, users))
    ours_rank = order.rank(ours)
    if ours_rank is None:
        raise KeyError(f"{kind}: the profile's {'.'.join(path)} = {ours!r} is not in its strictness order")
    if users_rank is None:
        return Decision(ours, False, "yours is a value the install cannot rank, so it cannot show it is as strict")
    if users_rank > ours_rank:
        return Decision(users, True, f"yours is stricter than the profile's {_show(ours)}: {order.why}")
    if users_rank == ours_rank:
        return Decision(users, True, "")
    return Decision(ours, False, f"yours was less strict: {order.why}")


def _rankable(kind: str, path: tuple[str, ...], value):
    if kind == "codex-config" and path == ("approval_policy",) and isinstance(value, dict) and set(value) == {"granular"}:
        return CODEX_GRANULAR
    return value


def _show(value) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return repr(value)


show = _show
