"""Command palette (ctrl+p): go to any screen, plus the commands of the screen you are on."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from malaria_tui.tui.screen_table import SCREENS


class MalariaCommands(Provider):
    def _commands(self) -> list[tuple[str, str, object]]:
        app = self.app
        out: list[tuple[str, str, object]] = []
        screen = self.screen
        if hasattr(screen, "palette_commands"):
            out.extend(screen.palette_commands())
        for entry in SCREENS:
            out.append(
                (
                    f"Go to {entry.title}",
                    f"Switch to the {entry.title} screen (key {entry.key})",
                    partial(app.action_show, entry.mode),
                )
            )
        return out

    async def discover(self) -> Hits:
        for title, help_text, callback in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, text=title, help=help_text)
