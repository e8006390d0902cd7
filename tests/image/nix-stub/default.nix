{
  system,
  config ? { },
}:
let
  lib = import ./lib.nix;
  drv =
    name: extra:
    derivation {
      inherit name system;
      builder = "/bin/sh";
      args = [ "-c" "echo stub > $out" ];
    }
    // extra;
  pkg =
    pname: version: extra:
    drv "${pname}-${version}" ({ inherit pname version; } // extra);
  unfree =
    p:
    if (config.allowUnfreePredicate or (_: false)) p then
      p
    else
      throw "stub nixpkgs: unfree package ${p.pname} refused by allowUnfreePredicate";
  unfreeProbe = map (name: pkg name "1" { meta.license.free = false; }) [
    "claude-code"
    "unrar"
    "vscode"
  ];
  pythonPackage = name: pkg name "1.0" { };
  # whatever else pyproject.toml names (tests/image/stub_flake.py lists them), as nixpkgs would have it
  extraPythonPackages = builtins.listToAttrs (
    map (name: {
      inherit name;
      value = pythonPackage name;
    }) (if builtins.pathExists ./python-packages.json then builtins.fromJSON (builtins.readFile ./python-packages.json) else [ ])
  );
  python3Packages = extraPythonPackages // {
    setuptools = pythonPackage "setuptools";
    jinja2 = pythonPackage "jinja2";
    tomli-w = pythonPackage "tomli-w";
    pyyaml = pythonPackage "pyyaml";
    jsonschema = pythonPackage "jsonschema";
    pytest = pythonPackage "pytest";
    buildPythonPackage =
      args:
      pkg args.pname args.version (
        {
          stubArgs = removeAttrs args [ "src" "passthru" ];
          dependencyNames = map lib.getName args.dependencies;
          srcEntries = builtins.attrNames (builtins.readDir args.src);
        }
        // (args.passthru or { })
      );
    toPythonApplication = p: p // { isApplication = true; };
  };
  python3 = pkg "python3" "3.13.0" {
    withPackages = f: pkg "python3-env" "3.13.0" { packageNames = map lib.getName (f python3Packages); };
  };
  pkgs = {
    inherit lib pkgs python3 python3Packages;
    callPackage =
      fn: overrides:
      let
        f = if builtins.isPath fn then import fn else fn;
      in
      f (builtins.intersectAttrs (builtins.functionArgs f) pkgs // overrides);
    runCommand =
      name: env: script:
      drv name {
        stubScript = script;
        stubEnv = env;
      };
    writeText = name: text: drv name { stubText = text; };
    writeShellScriptBin = name: text: drv name { stubText = text; };
    mkShell = args: drv "shell" { packageNames = map lib.getName args.packages; };
    dockerTools = {
      usrBinEnv = pkg "usr-bin-env" "1" { };
      streamLayeredImage =
        args:
        drv "stream-${args.name}" {
          imageArgs = removeAttrs args [ "passthru" ];
          contentNames = map lib.getName args.contents;
          allowedUnfree = map lib.getName (builtins.filter (config.allowUnfreePredicate or (_: false)) unfreeProbe);
        }
        // (args.passthru or { });
    };
    # nixpkgs' own CLI packages lag npm by months: the flake must never reach them.
    claude-code = throw "stub nixpkgs: the flake used nixpkgs' claude-code; the CLIs come from package-lock.json";
    codex = throw "stub nixpkgs: the flake used nixpkgs' codex; the CLIs come from package-lock.json";
    gemini-cli = throw "stub nixpkgs: the flake used nixpkgs' gemini-cli; the CLIs come from package-lock.json";
    stdenv = {
      hostPlatform = {
        inherit system;
        isLinux = builtins.elem system [
          "x86_64-linux"
          "aarch64-linux"
        ];
      };
      cc.cc = pkg "gcc" "14" { lib = pkg "gcc-lib" "14" { }; };
      # records its arguments; an unfree package passes only through allowUnfreePredicate
      mkDerivation =
        args:
        let
          made = pkg args.pname args.version (
            # as with nixpkgs, the arguments are attributes of the result
            removeAttrs args [
              "passthru"
              "pname"
              "version"
            ]
            // {
              stubArgs = removeAttrs args [ "passthru" ];
              meta = args.meta or { };
            }
            // (args.passthru or { })
          );
        in
        if (args.meta.license.free or true) then made else unfree made;
    };
    importNpmLock = {
      __functor =
        _: args:
        drv "npm-deps" {
          stubPackage = args.package;
          stubPackageLock = args.packageLock;
        };
      npmConfigHook = drv "npm-config-hook" { };
    };
    buildPackages.patchelf = pkg "patchelf" "0.15" {
      overrideAttrs = f: pkg "patchelf" "0.15" { stubOverride = f { }; };
    };
    testers.runNixOSTest =
      args:
      drv "vm-test-${args.name}" {
        stubTestScript = args.testScript;
        stubNodes = args.nodes;
      };
    iproute2 = pkg "iproute2" "6.16" { };
    util-linux = pkg "util-linux" "2.41" { };
    makeWrapper = drv "make-wrapper" { };
    autoPatchelfHook = drv "auto-patchelf-hook" { };
    nodejs_22 = pkg "nodejs" "22.20" { };
    bashInteractive = pkg "bash-interactive" "5.3" { };
    coreutils = pkg "coreutils" "9.7" { };
    git = pkg "git" "2.51" { };
    gh = pkg "gh" "2.80" { };
    cacert = pkg "nss-cacert" "3.115" { };
    curl = pkg "curl" "8.16" { };
    jq = pkg "jq" "1.8" { };
    fakeroot = pkg "fakeroot" "1.37" { };
    ripgrep = pkg "ripgrep" "14.1" { };
    squid = pkg "squid" "7.1" { };
    nodejs = pkg "nodejs" "22.19" { };
    nix = pkg "nix" "2.31" { };
    nixfmt = pkg "nixfmt" "1.0" { };
  };
in
pkgs
