"""Local SageMaker emulator: control plane, runtime, blue/green guardrails, shadow tests (see README.md)."""
