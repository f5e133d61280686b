"""Guardrail Lambda code: one package, thin handlers per state, shared models, one adapter per AWS service."""
