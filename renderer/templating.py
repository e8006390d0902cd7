"""jinja2 for the text formats that are not data (Codex .rules, shell snippets, Squid, nginx)."""

from __future__ import annotations

import functools

import jinja2


@functools.lru_cache(maxsize=None)
def environment(package: str = "renderer") -> jinja2.Environment:
    """The one set of options every template in the project renders with: a missing value is an
    error, never an empty string."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader(package, "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render_template(name: str, **context) -> str:
    return environment().get_template(name).render(**context)
