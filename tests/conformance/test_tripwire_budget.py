"""Issue 13, the reported attack on the hook, in the three real CLIs with every layer on: a branch
bash never runs whose brace groups double the words with every group, then a force push no CLI's
own rules and no shim can see (a flag at the end with a quote in it, git by absolute path). Before
the budget the hook expanded millions of words past each CLI's 10 s hook timeout, every CLI then
ran the push; now the hook refuses it at once, naming the reason."""

from __future__ import annotations

import pytest

from guard.classify import TOO_COMPLEX_REASON

from .drivers import CLIS
from .fakes import Scenario
from .scenarios import FINAL_TEXT
from .session import container_sandbox, image_tree, run_session

REWRITE = "git commit --amend --allow-empty -q -m rewritten-history"
ATTACK = "true || echo " + "{a,b}" * 22 + '; /usr/bin/git push origin HEAD:main --"force"'


@pytest.mark.parametrize("cli", CLIS)
def test_the_brace_attack_is_refused_and_the_push_never_happens(cli, tmp_path):
    tree = image_tree(tmp_path, ("autonomous",))
    with container_sandbox(tree) as sandbox:
        before = sandbox.remote_log("main")
        session = run_session(cli, sandbox, Scenario([REWRITE, ATTACK], FINAL_TEXT), timeout=240)
        assert not session.result.timed_out, session.result.stderr[-3000:]
        assert sandbox.remote_log("main") == before, f"{cli} ran the force push"
        refusal = session.result_for(ATTACK)
        assert TOO_COMPLEX_REASON in refusal, refusal
