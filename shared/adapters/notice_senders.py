"""Notice senders. `log` writes the notice to the structured log; an e-mail or SMS provider
plugs in as another class here, selected by the NOTICE_SENDER setting."""

from __future__ import annotations

import logging

from shared.ports import NoticeSender
from shared.settings import Settings

log = logging.getLogger("outerpark.notices")


class LogNoticeSender:
    def send(self, notice_id: str, customer_id: str, kind: str, message: str) -> None:
        log.info(
            "notice sent",
            extra={"noticeId": notice_id, "customerId": customer_id, "kind": kind, "text": message},
        )


def sender_for(settings: Settings) -> NoticeSender:
    senders: dict[str, type[NoticeSender]] = {"log": LogNoticeSender}
    return senders[settings.notice_sender]()
