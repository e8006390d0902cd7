"""Where things are inside the images, and what the images are called: one home for both.

Standard library only, and nothing is read at import: the guard's hook and shims import this on
every tool call. The values are literals because of that; `tests/image/test_layout.py` holds each
one to image/contract.json, which the flake, the Debian stand-in build and image-verify read.
"""

# ---- the agent image ----------------------------------------------------------------------------

AGENT_USER = "agent"
AGENT_UID = 1000
AGENT_GID = 1000
HOME = "/home/agent"
WORKSPACE = "/workspace"

SHIMS_DIR = "/usr/lib/agent-sandbox/shims"
SHIMS_PROFILE_D = "/etc/profile.d/agent-sandbox-shims.sh"  # keeps the shims first for login shells
RUNTIME_PROFILES_DIR = "/etc/agent-sandbox/profiles"  # <profile>.json, read by the guard
MANIFEST = "/etc/agent-sandbox/manifest.json"  # sha256, owner and mode of every baked file
SEED_DIR = "/etc/agent-sandbox/seed/home"  # copied into $HOME where absent at each start


def runtime_profile(name: str) -> str:
    """The runtime profile the guard reads for profile `name`."""
    return f"{RUNTIME_PROFILES_DIR}/{name}.json"


# ---- the credential gateway image ---------------------------------------------------------------

GATEWAY_USER = "gateway"
GATEWAY_UID = 65532
GATEWAY_GID = 65532
GATEWAY_CONFIG = "/etc/agent-gateway/config.json"
GATEWAY_SECRETS_DIR = "/run/agent-gateway/secrets"  # one 0400 file per credential, read once at start
GATEWAY_STATE_DIR = "/var/lib/agent-gateway"
GATEWAY_READY = "/var/lib/agent-gateway/ready"  # created when every route listens
GATEWAY_LOG_DIR = "/var/log/agent-gateway"
GATEWAY_ACCESS_LOG = "/var/log/agent-gateway/access.log"

# ---- the egress proxy image ---------------------------------------------------------------------

PROXY_CONFIG = "/etc/squid/squid.conf"
PROXY_INCLUDE_DIR = "/etc/squid/agent-sandbox.d"
PROXY_LOG_DIR = "/var/log/squid"

# ---- image names --------------------------------------------------------------------------------


class Image:
    """One image: its name and tag, the flake package that builds it, its start command."""

    __slots__ = ("role", "name", "tag", "flake_package", "entrypoint", "cmd")

    def __init__(self, role: str, name: str, tag: str, flake_package: str, entrypoint: tuple, cmd: tuple = ()):
        self.role = role
        self.name = name
        self.tag = tag
        self.flake_package = flake_package
        self.entrypoint = entrypoint
        self.cmd = cmd

    @property
    def ref(self) -> str:
        """`name:tag`, what `podman run` and `docker run` take."""
        return f"{self.name}:{self.tag}"

    def tagged(self, tag: str) -> str:
        return f"{self.name}:{tag}"

    @property
    def nix_build(self) -> str:
        """The command that builds it with Nix and loads it into podman."""
        return f"nix build .#{self.flake_package} && ./result | podman load"

    @property
    def stand_in_build(self) -> str:
        """The command that builds the Debian stand-in (as root, from a checkout) and loads it."""
        return f"python3 image/debian/build.py --image {self.role} --tag {self.tag} --load"

    def __repr__(self) -> str:
        return f"Image({self.role!r}, {self.ref!r})"


AGENT_IMAGE = Image("agent", "agent-image", "latest", "agent-image", ("agent-entrypoint",))
PROXY_IMAGE = Image("proxy", "egress-proxy", "latest", "egress-proxy-image", ("squid",), ("-N", "-f", PROXY_CONFIG))
GATEWAY_IMAGE = Image("gateway", "agent-gateway", "latest", "gateway-image", ("agent-gateway",),
                      ("--config", GATEWAY_CONFIG))
IMAGES = {image.role: image for image in (AGENT_IMAGE, PROXY_IMAGE, GATEWAY_IMAGE)}
