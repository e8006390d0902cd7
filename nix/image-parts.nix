# What every image writes the same way: /etc/passwd and /etc/group (root with no login shell,
# contract.root.shell; the image's own user when it has one; nobody), the nologin that shell
# names (a two-line script: shadow's nologin comes with su), and the contract's folders with
# their owner and mode, as fakeRootCommands lines.
{
  lib,
  pkgs,
  contract,
}:
{
  user ? null,
  dirs ? [ ],
}:
let
  shell = contract.root.shell;
  own = lib.optionalString (user != null) ''
    ${user.name}:x:${toString user.uid}:${toString user.gid}:${user.name}:${user.home or "/nonexistent"}:${user.shell or shell}
  '';
  ownGroup = lib.optionalString (user != null) ''
    ${user.group}:x:${toString user.gid}:
  '';
in
{
  dirCommands = lib.concatMapStringsSep "\n" (dir: ''
    mkdir -p ".${dir.path}"
    chown ${toString (dir.owner or 0)}:${toString (dir.owner or 0)} ".${dir.path}"
    chmod ${dir.mode or "0755"} ".${dir.path}"
  '') dirs;
  nologin = pkgs.writeShellScriptBin "nologin" ''
    echo "This account is currently not available." >&2
    exit 1
  '';
  passwd = pkgs.writeText "passwd" (
    ''
      root:x:0:0:root:/root:${shell}
    ''
    + own
    + ''
      nobody:x:65534:65534:nobody:/nonexistent:${shell}
    ''
  );
  group = pkgs.writeText "group" (
    ''
      root:x:0:
    ''
    + ownGroup
    + ''
      nogroup:x:65534:
    ''
  );
}
