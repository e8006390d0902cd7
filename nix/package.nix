# The project as a Python package. Name, version and runtime dependencies come from
# pyproject.toml (parsed by the flake), so a dependency added there cannot be missing here.
{
  lib,
  python3Packages,
  src,
  pyproject,
}:
let
  project = pyproject.project;
  # "jinja2>=3.1,<4" -> "jinja2"; nixpkgs spells normalised names with dashes
  requirementName =
    spec:
    lib.toLower (
      builtins.replaceStrings [ "_" "." ] [ "-" "-" ] (
        builtins.head (builtins.match "[[:space:]]*([A-Za-z0-9_.-]+).*" spec)
      )
    );
  pythonDependencies = ps: map (spec: ps.${requirementName spec}) project.dependencies;
in
python3Packages.buildPythonPackage {
  pname = project.name;
  inherit (project) version;
  pyproject = true;
  inherit src;
  build-system = [ python3Packages.setuptools ];
  dependencies = pythonDependencies python3Packages;
  pythonImportsCheck = pyproject.tool.setuptools.packages;
  # the suite runs in the flake's `checks.pytest`, with the CLIs and tools it needs
  doCheck = false;
  passthru = { inherit pythonDependencies; };
  meta = {
    inherit (project) description;
    mainProgram = "render-profiles";
    platforms = lib.platforms.unix;
  };
}
