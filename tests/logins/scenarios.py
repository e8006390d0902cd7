"""What the scripted model tells the CLI to do in the login runs."""
from tests.conformance.fakes import Scenario

LOGIN_SCENARIOS = {
    # Two turns apart by more than an access token's life at the fake (tests/logins): the second
    # model request meets an expired token, which the gateway refreshes; meanwhile the test looks
    # through the running container from the host for any real token.
    "across-refresh": Scenario(("sleep 8 && printf 'one\\n' > one.txt",
                                "sleep 8 && git switch -q -c agent/login && git add one.txt && "
                                "git commit -q -m 'Work across a token refresh'"),
                               "Worked across a refresh."),
}
