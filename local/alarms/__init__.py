"""Local CloudWatch alarm evaluator: moto stores alarms and metrics, this package evaluates them.

`AlarmEvaluator(aws_endpoint_url=..., region=..., interval=1.0).start()` / `.stop()` /
`.evaluate_once(now)`; `patch_moto()` (called by the evaluator) makes in-process moto start alarms
in INSUFFICIENT_DATA, keep state across PutMetricAlarm updates and answer DescribeAlarmHistory, and
makes its GetMetricStatistics / GetMetricData / ListMetrics compute as CloudWatch does (`metric_api.py`).
"""

from local.alarms.definition import AlarmDefinition
from local.alarms.evaluator import AlarmEvaluator, Transition
from local.alarms.moto_patches import patch_moto

__all__ = ["AlarmDefinition", "AlarmEvaluator", "Transition", "patch_moto"]
