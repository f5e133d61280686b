"""Step Functions callback tasks and StopExecution as AWS documents them, where moto's interpreter differs.

moto 5.2's interpreter runs `.waitForTaskToken` tasks (the token in the context object, SendTaskSuccess /
SendTaskFailure / TimeoutSeconds -> States.Timeout), but three things differ from AWS:

1. SendTaskFailure drops `cause`. AWS: "cause - A more detailed explanation of the cause of the failure"; the
   task fails with that error and cause, which a Catch receives as {"Error", "Cause"}
   (https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskFailure.html).
2. StopExecution drops `error` and `cause`. AWS keeps them: DescribeExecution and the "Execution Status Change"
   event of the ABORTED execution carry them
   (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StopExecution.html).
3. StopExecution of an execution waiting for a task token does not end it: the wait goes on until the task's
   TimeoutSeconds and then the States.Timeout error overwrites the stop (the execution ends FAILED). On AWS a
   stopped execution is ABORTED at once and runs no further state; a token sent later is refused
   (https://docs.aws.amazon.com/step-functions/latest/dg/connect-to-resource.html#connect-wait-token: the
   callback ends when the task token is returned, or the task times out or the execution stops).

`install()` patches these (idempotent; `uninstall()` undoes it). Installed by the local cloud and by the state
machine tests' harness.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

_saved: dict[str, tuple[Any, str, Any]] = {}


def _patch(owner: Any, name: str, value: Any) -> None:
    key = f"{owner.__module__}.{owner.__qualname__}.{name}"
    if key not in _saved:
        _saved[key] = (owner, name, owner.__dict__.get(name))
    setattr(owner, name, value)


def _interrupt_callbacks(execution: Any) -> None:
    """Wake every task waiting for a token of this execution (its wait returns; the stop decides the status)."""
    worker = getattr(execution, "exec_worker", None)
    env = getattr(worker, "env", None)
    manager = getattr(env, "callback_pool_manager", None)
    for endpoint in list(getattr(manager, "_pool", {}).values()):
        endpoint.interrupt_all()


def _wait_for_environment(execution: Any, timeout: float = 5.0) -> None:
    """moto builds an execution's environment on its worker thread: a StopExecution right after StartExecution
    found none and raised (AttributeError -> 500). AWS stops any RUNNING execution, so wait for it (briefly)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        env = getattr(execution.exec_worker, "env", None)
        if env is not None and env._program_state is not None:  # ProgramRunning (or already ended): stoppable
            return
        time.sleep(0.005)


def _wait_until_reflected(execution: Any, timeout: float = 5.0) -> None:
    """AWS's StopExecution is synchronous (DescribeExecution says ABORTED once it returns); moto's worker thread
    reflects the stop a moment later."""
    import time

    deadline = time.monotonic() + timeout
    while getattr(execution.exec_status, "value", None) == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.005)


def install() -> None:
    from moto.core.utils import utcnow
    from moto.stepfunctions.models import StateMachine, StepFunctionBackend
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
    from moto.stepfunctions.responses import StepFunctionResponse

    if _saved:
        return

    def send_task_failure(self: Any) -> Any:  # 1. keep the cause
        from moto.core.responses import EmptyResult

        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
        )
        return EmptyResult()

    _patch(StepFunctionResponse, "send_task_failure", send_task_failure)

    def stop_execution_response(self: Any) -> Any:  # 2. keep error and cause
        from moto.core.responses import ActionResult

        execution = self.stepfunction_backend.stop_execution(
            self._get_param("executionArn"), error=self._get_param("error"), cause=self._get_param("cause")
        )
        return ActionResult({"stopDate": execution.stop_date})

    _patch(StepFunctionResponse, "stop_execution", stop_execution_response)

    def backend_stop_execution(self: Any, execution_arn: str, error: str | None = None, cause: str | None = None) -> Any:
        self._validate_execution_arn(execution_arn)
        machine = self._get_state_machine_for_execution(execution_arn)
        return machine.stop_execution(execution_arn, error=error, cause=cause)

    _patch(StepFunctionBackend, "stop_execution", backend_stop_execution)

    original_machine_stop = StateMachine.stop_execution

    def machine_stop_execution(self: Any, execution_arn: str, error: str | None = None, cause: str | None = None) -> Any:
        execution = next((x for x in self.executions if x.execution_arn == execution_arn), None)
        if execution is None or not hasattr(execution, "exec_worker"):
            return original_machine_stop(self, execution_arn)
        _wait_for_environment(execution)
        execution.stop(stop_date=utcnow(), error=error, cause=cause)
        _interrupt_callbacks(execution)  # 3. a waiting task must not outlive the stop
        _wait_until_reflected(execution)
        return execution

    _patch(StateMachine, "stop_execution", machine_stop_execution)

    original_set_error = Environment.set_error
    original_set_timed_out = Environment.set_timed_out

    def set_error(self: Any, error: Any) -> None:
        if isinstance(self._program_state, ProgramStopped):
            return  # 3. stopped stays stopped (ABORTED), whatever the interrupted task raises afterwards
        original_set_error(self, error)

    def set_timed_out(self: Any) -> None:
        if isinstance(self._program_state, ProgramStopped):
            return
        original_set_timed_out(self)

    _patch(Environment, "set_error", set_error)
    _patch(Environment, "set_timed_out", set_timed_out)

    original_reflect = BaseExecutionWorkerCommunication._reflect_execution_status

    def reflect(self: Any) -> None:
        original_reflect(self)
        state = self.execution.exec_worker.env.program_state()
        if isinstance(state, ProgramStopped):  # 2. DescribeExecution shows the stop's error and cause
            self.execution.error = state.error
            self.execution.cause = state.cause

    _patch(BaseExecutionWorkerCommunication, "_reflect_execution_status", reflect)
    log.info("Step Functions callback/stop patches installed (local/sfn_tasks.py)")


def uninstall() -> None:
    for owner, name, value in _saved.values():
        if value is None:
            delattr(owner, name)
        else:
            setattr(owner, name, value)
    _saved.clear()
