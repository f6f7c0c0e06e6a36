"""`python -m otel_agents.cli ...`, the same as the `otel-agents` command."""

from otel_agents.cli import main

raise SystemExit(main())
