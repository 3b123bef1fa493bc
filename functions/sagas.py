"""The saga sweeper's timer: payment deadlines, and sagas that stopped half-way, driven on."""

import logging

import azure.functions as func

from shared.bootstrap import get_services
from shared.handlers.sweeper import sweep
from shared.observability import traced_timer
from shared.settings import get_settings

bp = func.Blueprint()
log = logging.getLogger("outerpark.sweeper")


@bp.timer_trigger(
    arg_name="timer", schedule=get_settings().saga_sweep_schedule, run_on_startup=False
)
@traced_timer
def sweep_sagas(timer: func.TimerRequest) -> None:
    if timer.past_due:
        log.info("saga sweep is past due (the app was down at its time)")
    sweep(get_services().sweep_deps)
