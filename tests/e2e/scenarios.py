"""What the scripted model tells each CLI to do in the end-to-end runs."""
from tests.conformance.fakes import Scenario
from tests.e2e import walls_rows

SCENARIOS = {
    # A normal job: a commit on a new branch, and a file left uncommitted.
    "normal": Scenario(("git switch -c agent/feature && printf 'done\\n' > feature.txt && git add feature.txt && "
                        "git commit -q -m 'Add the feature' && printf 'draft\\n' > notes.txt",),
                       "Committed the feature."),
    # The hostile agent: tests/e2e/hostile.py, which the user's repository carries as tools/hostile.py.
    "hostile": Scenario(("python3 tools/hostile.py",), "Done."),
    # --mount: a live edit, then the tricks a mount point stops (renaming .git or a folder above an
    # instruction file, writing one) and the ones it cannot (a new protected file, a nested repository).
    "live": Scenario(("git switch -c agent/live && printf 'live\\n' > live.txt && git add live.txt && "
                      "git commit -q -m 'Live edit'",
                      "python3 tools/live_tricks.py"), "Edited live."),
    # An agent that takes its time: the suite stops agent-run with SIGTERM meanwhile.
    "slow": Scenario(("python3 -c 'import time; time.sleep(600)'",), "Slept."),
    # A task of the end-to-end sweep: tests/e2e/neighbours.py (a refused CONNECT naming the
    # repository, what the agent reaches of its neighbours, a commit on a branch).
    "sweep": Scenario(("python3 tools/neighbours.py",), "Swept."),
    # The walls section of the conformance matrix: everyday GitHub work, then every residual-deny
    # effect by several routes, then a search for tokens (tests/e2e/walls_rows.py).
    "walls": Scenario(walls_rows.commands(), "Walls tried."),
    # A run holding a GitHub App's installation token: everyday work, a force push, the search.
    "github-app": Scenario(walls_rows.app_commands(), "Pull request opened."),
    # The rendered Kubernetes pod under podman kube play (tests/renderer/test_kubernetes_play.py):
    # what the agent is there, as a commit the task's collector bundles.
    "pod": Scenario(("git init -q -b main && id -u > uid.txt && grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' "
                     "/proc/self/status > status.txt && (touch /etc/x 2>&1 || true) > root-fs.txt && "
                     "git add -A && git -c user.name=agent -c user.email=a@x commit -q -m 'from the pod'",),
                    "Ran in the pod."),
}
