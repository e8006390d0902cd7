{
  description = "agent-sandbox: Claude Code, Codex and Gemini CLI run unattended only inside a container whose boundary is the protection";

  # Pinned to one revision; flake.lock records its narHash. To move it, change the rev
  # here and run `nix flake lock` on a machine that reaches GitHub.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/0ae2bc1419c3f345984c2629e72e7a631820fa4d";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;

      # The image contract: the same file image-verify and the tests read.
      contract = builtins.fromJSON (builtins.readFile ./image/contract.json);
      pyproject = builtins.fromTOML (builtins.readFile ./pyproject.toml);

      linuxSystems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      allSystems = linuxSystems ++ [
        "aarch64-darwin"
        "x86_64-darwin"
      ];
      isLinux = system: builtins.elem system linuxSystems;

      pkgsFor =
        system:
        import nixpkgs {
          inherit system;
          # claude-code is unfree; allow exactly the packages the contract names
          config.allowUnfreePredicate = pkg: builtins.elem (lib.getName pkg) contract.nix.unfree_allowed;
        };
      forSystems = systems: f: lib.genAttrs systems (system: f system (pkgsFor system));

      revision = self.rev or self.dirtyRev or "unknown";

      # Only what the Python package and the renderer read, so editing docs or tests
      # does not rebuild the image.
      packageSrc = builtins.path {
        name = "agent-sandbox-src";
        path = ./.;
        filter =
          path: _type:
          let
            root = toString ./. + "/";
            relative = builtins.substring (builtins.stringLength root) (-1) (toString path);
            top = builtins.head (builtins.split "/" relative);
          in
          builtins.elem top (
            [
              "pyproject.toml"
              "profiles"
            ]
            ++ pyproject.tool.setuptools.packages
          );
      };

      # The CLIs' one list of versions: package.json and the lockfile `npm install` writes.
      npmRoot = builtins.path {
        name = "agent-sandbox-clis-npm";
        path = ./.;
        filter =
          path: _type:
          dirOf path == toString ./.
          && builtins.elem (baseNameOf path) [
            "package.json"
            "package-lock.json"
          ];
      };

      partsFor =
        system: pkgs:
        let
          agentSandbox = pkgs.callPackage ./nix/package.nix {
            inherit pyproject;
            src = packageSrc;
          };
          imageRoot = pkgs.callPackage ./nix/image-root.nix {
            inherit agentSandbox contract;
            src = packageSrc;
          };
          cliBuild = pkgs.callPackage ./nix/clis.nix { inherit contract npmRoot; };
        in
        {
          inherit agentSandbox imageRoot cliBuild;
          app = pkgs.python3Packages.toPythonApplication agentSandbox;
          inherit (cliBuild) clis;
          image = pkgs.callPackage ./nix/image.nix {
            inherit
              contract
              agentSandbox
              imageRoot
              revision
              cliBuild
              ;
          };
          egressProxyImage = pkgs.callPackage ./nix/egress-proxy-image.nix {
            inherit contract agentSandbox revision;
            src = packageSrc;
          };
          gatewayImage = pkgs.callPackage ./nix/gateway-image.nix { inherit contract agentSandbox revision; };
        };
    in
    {
      packages = forSystems allSystems (
        system: pkgs:
        let
          parts = partsFor system pkgs;
        in
        {
          agent-sandbox = parts.agentSandbox;
          render-profiles = parts.app;
          default = parts.app;
        }
        // lib.optionalAttrs (isLinux system) {
          # the package names are the contract's (images.*.flake_package), like the image names
          ${contract.images.agent.flake_package} = parts.image;
          agent-image-root = parts.imageRoot;
          ${contract.images.proxy.flake_package} = parts.egressProxyImage;
          ${contract.images.gateway.flake_package} = parts.gatewayImage;
        }
      );

      apps = forSystems allSystems (
        system: pkgs:
        let
          app = (partsFor system pkgs).app;
          program = name: {
            type = "app";
            program = "${app}/bin/${name}";
          };
        in
        {
          render-profiles = program "render-profiles";
          image-verify = program "image-verify";
          default = program "render-profiles";
        }
      );

      devShells = forSystems allSystems (
        system: pkgs:
        let
          parts = partsFor system pkgs;
        in
        {
          default = pkgs.mkShell {
            packages = [
              (pkgs.python3.withPackages (ps: parts.agentSandbox.pythonDependencies ps ++ [ ps.pytest ]))
              pkgs.nodejs
              pkgs.git
              pkgs.jq
              pkgs.nixfmt
            ]
            ++ lib.attrValues parts.clis;
          };
        }
      );

      checks = forSystems allSystems (
        system: pkgs:
        let
          parts = partsFor system pkgs;
          testPython = pkgs.python3.withPackages (ps: [
            parts.agentSandbox
            ps.pytest
          ]);
          # These need a container engine, a Debian mirror or the npm-installed CLIs and
          # user namespaces: they run in CI (.ci/run), not in the Nix build sandbox.
          hostOnlyTests = [
            "tests/image_podman"
            "tests/conformance"
            "tests/egress"
            "tests/launcher"
          ];
          inSource =
            name: inputs: script:
            pkgs.runCommand name { nativeBuildInputs = inputs; } ''
              cp -r ${self} source
              chmod -R u+w source
              cd source
              export HOME="$TMPDIR/home"
              mkdir -p "$HOME"
              ${script}
              touch "$out"
            '';
        in
        {
          render-profiles-check = inSource "render-profiles-check" [ parts.app ] "render-profiles --check";
          pytest = inSource "agent-sandbox-pytest" (
            [
              testPython
              pkgs.git
              pkgs.nix
              pkgs.nodejs
              pkgs.fakeroot
              pkgs.jq
            ]
            ++ lib.attrValues parts.clis
          ) "python -m pytest tests -q -p no:cacheprovider ${lib.concatMapStringsSep " " (dir: "--ignore=${dir}") hostOnlyTests}";
        }
        // lib.optionalAttrs (isLinux system) (
          let
            # each real image against its part of the contract the synthetic test images use
            verify = role: image: {
              name = "${contract.images.${role}.flake_package}-verify";
              value = pkgs.runCommand "${contract.images.${role}.flake_package}-verify" { } ''
                ${image} > image.tar
                ${parts.app}/bin/image-verify --image ${role} --lockfile ${npmRoot}/package-lock.json image.tar
                touch "$out"
              '';
            };
          in
          builtins.listToAttrs [
            (verify "agent" parts.image)
            (verify "proxy" parts.egressProxyImage)
            (verify "gateway" parts.gatewayImage)
          ]
          // {
            # the matrix inside the built image, in a NixOS VM with podman (needs KVM)
            agent-image-conformance = pkgs.callPackage ./nix/image-conformance.nix {
              inherit contract;
              inherit (parts) cliBuild;
              image = parts.image;
              python = pkgs.python3;
              src = self;
            };
          }
        )
      );

      formatter = forSystems allSystems (_system: pkgs: pkgs.nixfmt);
    };
}
