"""A Playwright page on the demo, with the helpers the browser tests share."""

from __future__ import annotations

from typing import Any


class DemoPage:
    """One browser tab on the demo, with the uncaught page errors it raised."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def send(self, text: str) -> None:
        """Type a message and press Send."""
        self.page.fill("#message-input", text)
        self.page.click("#send")

    def connection_id(self) -> str:
        return str(self.page.inner_text("#connection-id")).strip()

    def message_texts(self) -> list[str]:
        return [str(t) for t in self.page.locator("#messages li.message .text").all_inner_texts()]
