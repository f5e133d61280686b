"""Evidence, not eyeballing: pure-Python statistics for shadow/canary verdicts, paired comparison, drift,
data quality and bias on live traffic. Standard library + pydantic only (runs in Lambda)."""
