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
  passwd = pkgs.writeText "passwd" ''
    root:x:0:0:root:/root:/noshell
    nobody:x:65534:65534:nobody:/nonexistent:/noshell
  '';
  group = pkgs.writeText "group" ''
    root:x:0:
    nogroup:x:65534:
  '';
in
pkgs.dockerTools.streamLayeredImage {
  inherit (image) name tag;
  contents = [
    pkgs.squid
    pkgs.cacert
  ];
  # Squid starts as root to bind, then runs as nobody; its logs are what the audit reads.
  fakeRootCommands = ''
    mkdir -p etc/squid var/log/squid var/cache/squid run tmp
    cp -r ${proxyRoot}/etc/squid/. etc/squid/
    cp ${passwd} etc/passwd
    cp ${group} etc/group
    chmod -R a-w etc/squid
    chown -R 65534:65534 var/log/squid var/cache/squid
    chmod 1777 tmp
  '';
  enableFakechroot = false;
  config = {
    inherit (image.config) Entrypoint Cmd;
    Env = lib.mapAttrsToList (name: value: "${name}=${value}") image.env;
    ExposedPorts."3128/tcp" = { };
    Labels = {
      "org.opencontainers.image.source" = contract.labels.source;
      "org.opencontainers.image.revision" = revision;
      "org.opencontainers.image.title" = image.title;
    };
  };
}
