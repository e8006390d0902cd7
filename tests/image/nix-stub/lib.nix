rec {
  genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);
  mapAttrs = builtins.mapAttrs;
  attrValues = builtins.attrValues;
  mapAttrsToList = f: attrs: map (name: f name attrs.${name}) (builtins.attrNames attrs);
  optionalAttrs = cond: attrs: if cond then attrs else { };
  getName = pkg: pkg.pname or (builtins.parseDrvName pkg.name).name;
  escapeShellArg = arg: "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] (toString arg) + "'";
  escapeShellArgs = args: builtins.concatStringsSep " " (map escapeShellArg args);
  concatMapStringsSep = sep: f: list: builtins.concatStringsSep sep (map f list);
  optionalString = cond: string: if cond then string else "";
  toLower = builtins.replaceStrings
    [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ]
    [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];
  optionals = cond: list: if cond then list else [ ];
  importJSON = path: builtins.fromJSON (builtins.readFile path);
  last = list: builtins.elemAt list (builtins.length list - 1);
  # only for separators without regex metacharacters, which is all the flake uses
  splitString = sep: s: builtins.filter builtins.isString (builtins.split sep s);
  getLib = pkg: pkg.lib or pkg;
  assertMsg = cond: msg: if cond then true else throw msg;
  licenses.unfree = {
    free = false;
    shortName = "unfree";
  };
  platforms.unix = [ "x86_64-linux" "aarch64-linux" "aarch64-darwin" "x86_64-darwin" ];
}
