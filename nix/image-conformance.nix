# The conformance matrix inside the Nix-built agent image, as CI runs it inside the Debian
# stand-in: a NixOS VM with podman loads the image and runs tests/conformance/image_matrix.py
# against it (every row, the three CLIs, through the image's own entrypoint, the fake model
# servers on a private network). Needs a Linux builder with KVM. It has NOT run where this
# project is developed: nixpkgs is out of reach there (docs/image.md).
{
  lib,
  pkgs,
  contract,
  image,
  cliBuild,
  python,
  src,
}:
let
  ref = "${contract.images.agent.name}:${contract.images.agent.tag}";
in
pkgs.testers.runNixOSTest {
  name = "agent-image-conformance";
  nodes.machine = {
    virtualisation = {
      podman.enable = true;
      memorySize = 6144;
      cores = 2;
      diskSize = 16384;
    };
    environment.systemPackages = [
      python
      pkgs.git
      pkgs.iproute2
      pkgs.util-linux
    ];
  };
  testScript = ''
    machine.wait_for_unit("multi-user.target")
    machine.succeed("${image} | podman load")
    machine.succeed("cp -r ${src} /root/src && chmod -R u+w /root/src")
    # the versions the matrix compares against: the node_modules the image's CLIs were built from
    machine.succeed("ln -s ${cliBuild.nodeModules}/node_modules /root/src/node_modules")
    print(machine.succeed(
        "cd /root/src && CONTAINERS_CONF=/etc/containers/containers.conf "
        "python3 tests/conformance/image_matrix.py --image ${lib.escapeShellArg ref} 2>&1"
    ))
  '';
}
