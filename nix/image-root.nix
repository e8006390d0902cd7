# The baked configuration tree: exactly what `render-profiles --image-root` writes,
# with the profiles the contract names.
{
  lib,
  runCommand,
  agentSandbox,
  src,
  contract,
}:
runCommand "agent-sandbox-image-root"
  {
    nativeBuildInputs = [ agentSandbox ];
  }
  ''
    cd ${src}
    render-profiles --image-root "$out" ${lib.escapeShellArgs contract.baked.render_args}
    test -f "$out${contract.baked.manifest.path}" || {
      echo "render-profiles wrote no ${contract.baked.manifest.path}" >&2
      exit 1
    }
  ''
