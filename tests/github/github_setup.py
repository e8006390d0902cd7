"""The fake GitHub's cast: one App, one installation, the run's repository."""
APP_ID = 424242
OWNER, NAME = "octo", "widgets"
REPOSITORY = f"{OWNER}/{NAME}"
RUN_ID = "20250101-120000-abc123"
# What the installation was granted when the user installed the app: more than a run needs.
INSTALLED = {"metadata": "read", "contents": "write", "pull_requests": "write", "issues": "write",
             "administration": "write", "secrets": "write", "actions_variables": "write", "actions": "write",
             "workflows": "write"}
