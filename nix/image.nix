# The agent image, built from image/contract.json. `nix build .#agent-image` gives a
# script that streams a docker-archive: `./result | podman load` (or `docker load`).
{
  lib,
  pkgs,
  contract,
  agentSandbox,
  imageRoot,
  revision,
  # nix/clis.nix: the CLIs from package-lock.json, and its pins
  cliBuild,
}:
let
  user = contract.user;
  uid = toString user.uid;
  gid = toString user.gid;
  manifest = contract.baked.manifest;

  python = pkgs.python3.withPackages (_: [ agentSandbox ]);
  clis = cliBuild.clis;
  tools = map (attr: pkgs.${attr}) contract.nix.tool_packages;

  inherit (import ./image-parts.nix { inherit lib pkgs contract; } { inherit user; }) nologin passwd group;

  labels = contract.labels.fixed // {
    "org.opencontainers.image.source" = contract.labels.source;
    "org.opencontainers.image.revision" = revision;
    "org.opencontainers.image.version" = agentSandbox.version;
  }
  # io.agent-sandbox.cli.<name>: the lockfile's pin, which image-verify holds them to
  // builtins.listToAttrs (
    map (name: {
      name = "io.agent-sandbox.cli.${name}";
      value = cliBuild.pins.${name};
    }) (builtins.attrNames cliBuild.pins)
  );

  stickyCommands = lib.concatMapStringsSep "\n" (dir: ''
    mkdir -p ".${dir.path}"
    chown ${toString dir.owner}:${toString dir.owner} ".${dir.path}"
    chmod ${dir.mode} ".${dir.path}"
  '') contract.sticky_dirs;
in
pkgs.dockerTools.streamLayeredImage {
  inherit (contract.images.agent) name tag;

  contents = [
    python
    nologin
    pkgs.dockerTools.usrBinEnv
  ]
  ++ lib.attrValues clis
  ++ tools;

  config = {
    inherit (contract.config) User Entrypoint WorkingDir;
    Env = lib.mapAttrsToList (name: value: "${name}=${value}") contract.env;
    Labels = labels;
  };

  # Runs under fakeroot in the customisation layer (the root of the image); the store
  # layers below it are root-owned and read-only already.
  fakeRootCommands = ''
    set -euo pipefail

    mkdir -p sbin etc/ssl/certs
    ln -sfn ${nologin}/bin/nologin sbin/nologin
    if [ ! -e bin/sh ] && [ ! -L bin/sh ]; then
      ln -s ${pkgs.bashInteractive}/bin/bash bin/sh
    fi
    rm -f etc/passwd etc/group etc/nsswitch.conf
    install -m 0644 ${passwd} etc/passwd
    install -m 0644 ${group} etc/group
    echo "hosts: files dns" > etc/nsswitch.conf
    if [ ! -e ".${contract.env.SSL_CERT_FILE}" ]; then
      ln -sfn ${pkgs.cacert}/etc/ssl/certs/ca-bundle.crt ".${contract.env.SSL_CERT_FILE}"
    fi

    # the rendered configuration tree, then owner and mode of each file from its manifest
    cp -r --no-preserve=mode,ownership ${imageRoot}/. ./
    rm -f .agent-image-root
    ${pkgs.jq}/bin/jq -r '.files | to_entries[] | [.value.mode, (.value.owner | tostring), .key] | @tsv' \
      ".${manifest.path}" |
      while IFS="$(printf '\t')" read -r mode owner path; do
        chown "$owner:$owner" ".$path"
        chmod "$mode" ".$path"
      done
    chown ${toString manifest.owner}:${toString manifest.owner} ".${manifest.path}"
    chmod ${manifest.mode} ".${manifest.path}"

    for dir in ${lib.escapeShellArgs contract.root_only_dirs}; do
      mkdir -p ".$dir"
      chown 0:0 ".$dir"
      chmod 0755 ".$dir"
    done
    for dir in ${lib.escapeShellArgs contract.agent_writable_dirs}; do
      mkdir -p ".$dir"
      chown ${uid}:${gid} ".$dir"
      chmod 0755 ".$dir"
    done
    ${stickyCommands}

    # the store never holds setuid files; this layer must not either
    find . -xdev -type f -perm /6000 -exec chmod ug-s {} +
  '';

  passthru = {
    inherit
      contract
      imageRoot
      python
      passwd
      group
      clis
      ;
  };
}
