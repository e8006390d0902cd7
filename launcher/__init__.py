"""agent-run: the user's front door. A run's plan, its execution, and the command line."""
