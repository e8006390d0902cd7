# The agent CLIs, built from the project's own package.json and package-lock.json. The lockfile
# is the one list of versions (`npm install` writes it; the conformance matrix proved its pins),
# so no version is written here, and nixpkgs' claude-code, codex and gemini-cli are not used.
{
  lib,
  stdenv,
  importNpmLock,
  nodejs_22,
  makeWrapper,
  autoPatchelfHook,
  buildPackages,
  contract,
  # a folder holding package.json and package-lock.json, nothing else
  npmRoot,
}:
let
  nodejs = nodejs_22; # Claude Code's package asks for Node >= 22
  isLinux = stdenv.hostPlatform.isLinux;
  package = lib.importJSON (npmRoot + "/package.json");
  packageLock = lib.importJSON (npmRoot + "/package-lock.json");

  # npm leaves `resolved` out of this lockfile (every package is the registry's own tarball), and
  # importNpmLock fetches from `resolved`: spell out the registry's URL for each entry's name and
  # version. The integrity hash stays the lockfile's, so a tarball that differs fails the fetch.
  registry = "https://registry.npmjs.org";
  entryName = key: module: module.name or (lib.last (lib.splitString "node_modules/" key));
  tarball = name: version: "${registry}/${name}/-/${lib.last (lib.splitString "/" name)}-${version}.tgz";
  resolvedLock = packageLock // {
    packages = lib.mapAttrs (
      key: module:
      if key == "" || module ? resolved || (module.link or false) then
        module
      else
        module // { resolved = tarball (entryName key module) module.version; }
    ) packageLock.packages;
  };

  pins = lib.mapAttrs (_: cli: packageLock.packages."node_modules/${cli.npm}".version) contract.clis;

  # The platform packages npm installs here, the ones the CLIs' own launchers pick (glibc on Linux).
  npmPlatform =
    {
      x86_64-linux = "linux-x64";
      aarch64-linux = "linux-arm64";
      x86_64-darwin = "darwin-x64";
      aarch64-darwin = "darwin-arm64";
    }
    .${stdenv.hostPlatform.system};

  nodeModules = stdenv.mkDerivation {
    pname = "agent-sandbox-clis-node-modules";
    inherit (package) version;
    dontUnpack = true;
    npmDeps = importNpmLock {
      inherit package;
      packageLock = resolvedLock;
    };
    nativeBuildInputs = [
      nodejs
      importNpmLock.npmConfigHook
    ];
    # No install script runs: node-pty's node-gyp build and keytar's prebuilt download are not
    # needed (Gemini loads @lydell/node-pty's prebuilt), and Claude's postinstall only links its
    # platform binary, which the claude-code derivation below takes itself.
    npmRebuildFlags = [ "--ignore-scripts" ];
    postPatch = ''
      cp ${npmRoot}/package.json ${npmRoot}/package-lock.json .
    '';
    installPhase = ''
      runHook preInstall
      mkdir -p "$out"
      cp -r node_modules "$out/"
      runHook postInstall
    '';
    passthru = {
      inherit resolvedLock;
      lockfile = npmRoot + "/package-lock.json";
    };
  };
  modules = "${nodeModules}/node_modules";

  # patchelf moves .gnu.version_d without updating DT_VERDEF (NixOS/patchelf#665), after which
  # Claude's Bun-built binary no longer loads; one more branch beside DT_VERNEED's fixes it.
  patchelf = buildPackages.patchelf.overrideAttrs (old: {
    postPatch = (old.postPatch or "") + ''
      substituteInPlace src/patchelf.cc --replace-fail \
        'else if (d_tag == DT_VERSYM)' \
        'else if (d_tag == DT_VERDEF) dyn->d_un.d_ptr = findSectionHeader(".gnu.version_d").sh_addr; else if (d_tag == DT_VERSYM)'
    '';
  });

  cli =
    name: args:
    stdenv.mkDerivation (
      {
        pname = name;
        version = pins.${name};
        dontUnpack = true;
        passthru = {
          npm = contract.clis.${name}.npm;
          inherit nodeModules;
        };
        meta.mainProgram = contract.clis.${name}.bin;
      }
      // args
    );

  clis = {
    # The native binary from Claude's platform package, as its install.cjs links it.
    claude-code = cli "claude-code" {
      dontStrip = true; # the JavaScript rides after the ELF: strip would keep only the runtime
      nativeBuildInputs = [
        makeWrapper
      ]
      ++ lib.optionals isLinux [
        autoPatchelfHook
        patchelf
      ];
      installPhase = ''
        runHook preInstall
        install -Dm755 ${modules}/@anthropic-ai/claude-code-${npmPlatform}/claude "$out/libexec/claude"
        makeWrapper "$out/libexec/claude" "$out/bin/claude" \
          --set DISABLE_AUTOUPDATER 1 --set DISABLE_INSTALLATION_CHECKS 1
        runHook postInstall
      '';
      meta = {
        license = lib.licenses.unfree;
        mainProgram = "claude";
      };
    };
    # codex.js and its platform package (static musl binaries), run by the image's Node.
    codex = cli "codex" {
      nativeBuildInputs = [ makeWrapper ];
      installPhase = ''
        runHook preInstall
        mkdir -p "$out/lib/node_modules/@openai"
        cp -r ${modules}/@openai/codex ${modules}/@openai/codex-${npmPlatform} "$out/lib/node_modules/@openai/"
        makeWrapper ${nodejs}/bin/node "$out/bin/codex" \
          --add-flags "$out/lib/node_modules/@openai/codex/bin/codex.js"
        runHook postInstall
      '';
    };
    # Gemini's self-contained bundle on the image's Node, with the prebuilt pty it loads.
    gemini-cli = cli "gemini-cli" {
      nativeBuildInputs = [ makeWrapper ] ++ lib.optionals isLinux [ autoPatchelfHook ];
      buildInputs = lib.optionals isLinux [ (lib.getLib stdenv.cc.cc) ];
      installPhase = ''
        runHook preInstall
        mkdir -p "$out/lib/node_modules/@google" "$out/lib/node_modules/@lydell"
        cp -r ${modules}/@google/gemini-cli "$out/lib/node_modules/@google/"
        for pty in node-pty node-pty-${npmPlatform}; do
          cp -r ${modules}/@lydell/$pty "$out/lib/node_modules/@lydell/"
        done
        makeWrapper ${nodejs}/bin/node "$out/bin/gemini" \
          --add-flags "$out/lib/node_modules/@google/gemini-cli/bundle/gemini.js" \
          --set-default GEMINI_CLI_NO_RELAUNCH true
        runHook postInstall
      '';
    };
  };
in
assert lib.assertMsg (builtins.attrNames clis == builtins.attrNames contract.clis)
  "nix/clis.nix builds ${toString (builtins.attrNames clis)}, image/contract.json names ${toString (builtins.attrNames contract.clis)}";
{
  inherit
    clis
    nodeModules
    nodejs
    pins
    ;
}
