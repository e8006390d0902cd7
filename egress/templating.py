"""jinja2 for the text formats that are not data (Squid here; Codex .rules and shell
snippets in the renderer), with the project's one set of template options.

It lives in egress, the lower of the two packages that render templates: the renderer renders the
proxy's files through egress, so egress imports nothing of the renderer.
"""

from __future__ import annotations

import functools

import jinja2


@functools.lru_cache(maxsize=None)
def environment(package: str) -> jinja2.Environment:
    """The templates of `package` (its templates/ folder): a missing value is an error, never an
    empty string."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader(package, "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render_template(name: str, **values) -> str:
    return environment("egress").get_template(name).render(**values)
