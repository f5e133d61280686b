"""The operator's tools: the `guardrail` CLI, the demo and its scenarios, replay, traffic, reports, the AWS smoke test.

They drive either the local cloud (`local/`) or a real AWS account (`--aws`); `local/` never imports from here.
"""
