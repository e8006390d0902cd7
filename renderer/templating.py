"""The renderer's templates (Codex .rules, shell snippets), with the project's one set of jinja2
options (egress/templating.py)."""

from __future__ import annotations

from egress.templating import environment


def render_template(name: str, **context) -> str:
    return environment("renderer").get_template(name).render(**context)
