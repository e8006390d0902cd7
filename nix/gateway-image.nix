# The credential gateway: the project's Python package with its `agent-gateway` program, run as
# the contract's gateway user (images.gateway). agent-run starts it on the agents' internal
# network and the outside one, with the secrets folder, the ready folder and the log folder
# bind-mounted (docs/image.md).
{
  lib,
  pkgs,
  agentSandbox,
  contract,
  revision,
}:
let
  image = contract.images.gateway;
  python = pkgs.python3.withPackages (_: [ agentSandbox ]);
  parts = import ./image-parts.nix { inherit lib pkgs contract; } { inherit (image) user dirs; };
in
pkgs.dockerTools.streamLayeredImage {
  inherit (image) name tag;
  contents = [
    python
    parts.nologin
    pkgs.cacert
    pkgs.dockerTools.usrBinEnv
  ];
  fakeRootCommands = ''
    set -euo pipefail
    mkdir -p sbin etc/ssl/certs tmp
    ln -sfn ${parts.nologin}/bin/nologin sbin/nologin
    rm -f etc/passwd etc/group
    install -m 0644 ${parts.passwd} etc/passwd
    install -m 0644 ${parts.group} etc/group
    if [ ! -e ".${image.env.SSL_CERT_FILE}" ]; then
      ln -sfn ${pkgs.cacert}/etc/ssl/certs/ca-bundle.crt ".${image.env.SSL_CERT_FILE}"
    fi
    ${parts.dirCommands}
    chmod 1777 tmp
    find . -xdev -type f -perm /6000 -exec chmod ug-s {} +
  '';
  enableFakechroot = false;
  config = image.config // {
    Env = lib.mapAttrsToList (name: value: "${name}=${value}") image.env;
    Labels = {
      "org.opencontainers.image.title" = image.title;
      "org.opencontainers.image.source" = contract.labels.source;
      "org.opencontainers.image.revision" = revision;
      "org.opencontainers.image.version" = agentSandbox.version;
      "io.agent-sandbox.image" = "gateway";
    };
  };
  passthru = {
    inherit python;
    inherit (parts) passwd group;
  };
}
