"""What the scripted model tells each CLI to do in the end-to-end runs."""
from tests.conformance.fakes import Scenario

SCENARIOS = {
    # A normal job: a commit on a new branch, and a file left uncommitted.
    "normal": Scenario(("git switch -c agent/feature && printf 'done\\n' > feature.txt && git add feature.txt && "
                        "git commit -q -m 'Add the feature' && printf 'draft\\n' > notes.txt",),
                       "Committed the feature."),
    # The hostile agent: tests/e2e/hostile.py, which the user's repository carries as tools/hostile.py.
    "hostile": Scenario(("python3 tools/hostile.py",), "Done."),
    # An agent that takes its time: the suite stops agent-run with SIGTERM meanwhile.
    "slow": Scenario(("python3 -c 'import time; time.sleep(600)'",), "Slept."),
}
