"""The Squid and gateway templates, rendered with the project's one jinja2 configuration."""
from __future__ import annotations

from renderer.templating import environment


def render_template(name: str, **values) -> str:
    return environment("egress").get_template(name).render(**values)
