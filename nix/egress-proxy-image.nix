# The egress proxy: Squid with the configuration render-profiles writes from the profile's
# network allowlist (`render-profiles --image-root DIR --image egress-proxy`). agent-run
# attaches it to the agents' internal network and the outside one.
{
  lib,
  pkgs,
  agentSandbox,
  src,
  contract,
  revision,
}:
let
  image = contract.images.proxy;
  proxyRoot = pkgs.runCommand "agent-sandbox-egress-proxy-root" { nativeBuildInputs = [ agentSandbox ]; } ''
    cd ${src}
    render-profiles --image-root "$out" ${lib.escapeShellArgs image.render_args}
    for file in ${lib.escapeShellArgs image.files}; do
      test -f "$out$file" || { echo "render-profiles wrote no $file" >&2; exit 1; }
    done
  '';
  # only the folders the contract gives an owner or mode; Squid's own log and spool folders below
  parts = import ./image-parts.nix { inherit lib pkgs contract; } {
    dirs = builtins.filter (dir: dir ? owner || dir ? mode) image.dirs;
  };
in
pkgs.dockerTools.streamLayeredImage {
  inherit (image) name tag;
  contents = [
    pkgs.squid
    parts.nologin
    pkgs.cacert
  ];
  # Squid starts as root to bind, then runs as nobody; its logs are what the audit reads.
  fakeRootCommands = ''
    mkdir -p sbin etc/squid var/log/squid var/spool/squid var/cache/squid run tmp
    ln -sfn ${parts.nologin}/bin/nologin sbin/nologin
    cp -r ${proxyRoot}/etc/squid/. etc/squid/
    rm -f etc/passwd etc/group
    install -m 0644 ${parts.passwd} etc/passwd
    install -m 0644 ${parts.group} etc/group
    find etc/squid -type f -exec chmod 0444 {} +
    ${parts.dirCommands}
    chown -R 65534:65534 var/log/squid var/spool/squid var/cache/squid
    chmod 1777 tmp
  '';
  enableFakechroot = false;
  passthru = { inherit (parts) passwd group; };
  config = {
    inherit (image.config) Entrypoint Cmd;
    Env = lib.mapAttrsToList (name: value: "${name}=${value}") image.env;
    ExposedPorts."3128/tcp" = { };
    Labels = {
      "org.opencontainers.image.source" = contract.labels.source;
      "org.opencontainers.image.revision" = revision;
      "org.opencontainers.image.title" = image.title;
      "org.opencontainers.image.version" = agentSandbox.version;
      "io.agent-sandbox.image" = "proxy";
    };
  };
}
