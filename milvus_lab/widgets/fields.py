"""One spec parameter as one form row: its input, the allowed range beside it, a help line, and the reason
a value is refused.

Typed values are never clamped: a number field is a ``Text`` box (ipywidgets' ``BoundedIntText`` would
silently pull 70000 back to 65536), checked with :func:`milvus_lab.spec.check_value` in the context of the
other fields (so a library's cap, such as ANNOY ``search_k`` above annoy's C int, is refused like any range),
and a refused value stays on screen with the reason. Parameters with a finite set of values
(IVF_PQ ``m``) are a dropdown of exactly the values :func:`milvus_lab.spec.allowed_values` allows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from html import escape
from typing import Any

import ipywidgets as widgets

from .. import spec
from ..errors import InvalidParameterError
from ._common import Status, close_tree, small

_INT = re.compile(r"[+-]?[0-9]+")


def parse_int(text: Any) -> int | None:
    """The integer a person typed, or None when the text is not exactly an integer (no rounding, no '1e3')."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    if isinstance(text, str) and _INT.fullmatch(text.strip()):
        try:  # any length Python reads, so a huge number is refused as out of range (the spec's cap), not
            return int(text.strip())  # as "not an integer"
        except ValueError:  # more digits than int() reads (sys.get_int_max_str_digits)
            return None
    return None


def recommended_text(param: spec.IntParam) -> str:
    """The documented advice for a parameter, or ''."""
    if param.recommended:
        return f"recommended: {param.recommended[0]}..{param.recommended[1]}"
    if param.advice_help:
        return f"recommended: {param.advice_help}"
    return ""


class ParamField:
    """A row for one :class:`~milvus_lab.spec.IntParam`: ``input``, ``allowed`` (the range in words),
    ``help`` and ``message`` (why the value is refused). ``bounds`` / ``options`` are the spec's, in context."""

    def __init__(self, index_name: str, param: spec.IntParam, value: int | None,
                 ctx: Mapping[str, Any] | None = None):
        self.index_name = index_name
        self.param = param
        self.name = param.name
        self.ctx: dict[str, Any] = dict(ctx or {})
        self.error: str | None = None
        self._updating = False
        if param.choices is not None:
            options = spec.allowed_values(param, self.ctx) or []
            self.input: widgets.ValueWidget = widgets.Dropdown(
                options=options, value=value if value in options else (options[0] if options else None),
                disabled=not options, layout=widgets.Layout(width="110px", min_width="110px"))
        else:
            self.input = widgets.Text(value="" if value is None else str(value), continuous_update=True,
                                      layout=widgets.Layout(width="110px", min_width="110px"))
        self.input.add_class("milvus-param")
        self.input.add_class(f"milvus-param-{param.name}")
        self.label = widgets.HTML(f"<b>{escape(param.name)}</b>",
                                  layout=widgets.Layout(width="160px", min_width="160px"))
        # at least 280 px wide: the range moves below the input as a whole instead of squeezing into a
        # one-word-wide column, and a long rule wraps within it
        self.allowed = widgets.HTML(layout=widgets.Layout(flex="1 1 280px", min_width="280px"))
        self.allowed.add_class(f"milvus-allowed-{param.name}")
        self.help = widgets.HTML(small(param.help), layout=widgets.Layout(flex="1 1 auto"))
        self.message = Status()
        self.message.add_class(f"milvus-message-{param.name}")
        self.box = widgets.VBox([
            widgets.HBox([self.label, self.input, self.allowed],
                         layout=widgets.Layout(align_items="center", flex_flow="row wrap")),
            widgets.HBox([widgets.HTML(layout=widgets.Layout(width="160px", min_width="160px")),
                          widgets.VBox([self.help, self.message], layout=widgets.Layout(flex="1 1 auto"))]),
        ], layout=widgets.Layout(margin="0 0 4px 0"))
        self._render_allowed()

    # ---------------------------------------------------------------- value
    @property
    def raw(self) -> Any:
        """What the widget holds: the typed text, or the chosen option."""
        return self.input.value

    @property
    def value(self) -> int | None:
        """The integer in the field, or None when the text is not an integer."""
        return parse_int(self.input.value)

    @value.setter
    def value(self, value: Any) -> None:
        """Set as a person would: text for a number box (any text, even a wrong one), an option otherwise."""
        if isinstance(self.input, widgets.Dropdown):
            options = list(self.input.options)
            number = spec.as_int(value)
            if number is None or number not in options:
                raise InvalidParameterError(f"{self.name}={spec.show_value(value)} is not offered; allowed: "
                                            f"{self.allowed_text}")
            self.input.value = number
        elif isinstance(value, str):
            self.input.value = str.__str__(value)
        else:
            number = spec.as_int(value)
            self.input.value = "" if value is None else (str(number) if number is not None and
                                                         number.bit_length() <= 256 else spec.show_value(value))

    # ---------------------------------------------------------------- spec views
    @property
    def bounds(self) -> tuple[int | None, int | None]:
        return spec.bounds(self.param, self.ctx)

    @property
    def options(self) -> list[int] | None:
        return list(self.input.options) if isinstance(self.input, widgets.Dropdown) else None

    @property
    def allowed_text(self) -> str:
        if isinstance(self.input, widgets.Dropdown) and not self.input.options:
            return "no value for this data"
        return spec.describe_allowed(self.param, self.ctx)

    def set_enabled(self, enabled: bool) -> None:
        """Make the input editable or read-only (read-only while the form is busy)."""
        if isinstance(self.input, widgets.Dropdown):
            self.input.disabled = not enabled or not self.input.options
        else:
            self.input.disabled = not enabled

    # ---------------------------------------------------------------- validation
    def own_error(self, ctx: Mapping[str, Any]) -> str | None:
        """Why the value is refused by its own range alone (no other field in ``ctx``), without showing it."""
        value = self.value
        if value is None:
            return "not an integer"
        try:
            spec.check_value(self.index_name, self.param, value, ctx)
        except InvalidParameterError as exc:
            return exc.message
        return None

    def check(self, ctx: Mapping[str, Any]) -> str | None:
        """Validate against the spec in ``ctx``; show and return the reason it is refused (None: valid)."""
        self.ctx = dict(ctx)
        if self.param.choices is not None:
            self._sync_options()
        value = self.value
        if self.param.choices is not None and not self.input.options:
            self.error = f"{self.index_name}: no value of {self.name} is allowed for this data"
            self._render_allowed()
            self.message.show(self.error, "error")
            return self.error
        if value is None and not str(self.raw).strip():
            self.error = f"{self.name} is empty; allowed: {self.allowed_text}"
        else:
            try:
                spec.check_value(self.index_name, self.param, self.raw if value is None else value, self.ctx)
            except InvalidParameterError as exc:
                self.error = exc.message
            else:
                self.error = None
        self._render_allowed()
        if self.error:
            self.message.show(self.error, "error")
        elif (used := self.used_value()) is not None:
            self.message.show(f"{self.name}={self.value} is searched as {self.name}={used} "
                              f"({self.param.used_help})", "warning")
        else:
            self.message.clear()
        return self.error

    def used_value(self) -> int | None:
        """The value the library will really use, when the spec says it differs from the one typed (RNSG
        search_length below top_k); None when it is used as given."""
        if self.param.used_at_least is None or self.value is None:
            return None
        used = spec.effective_value(self.param, self.value, self.ctx)
        return used if used != self.value else None

    def _sync_options(self) -> None:
        options = spec.allowed_values(self.param, self.ctx) or []
        if list(self.input.options) != options:
            keep = self.input.value if self.input.value in options else (options[0] if options else None)
            self._updating = True
            try:
                self.input.options = options
                self.input.value = keep
            finally:
                self._updating = False
        self.input.disabled = not options

    def _render_allowed(self) -> None:
        parts = [f"<span style='color:#1f4e79'>allowed: {escape(self.allowed_text)}</span>"]
        advice = recommended_text(self.param)
        if advice:
            parts.append(f"<span style='white-space:nowrap'>{small(advice, '#8a5a00')}</span>")
        self.allowed.value = " &nbsp; ".join(parts)

    def observe(self, callback: Any) -> None:
        """Call ``callback()`` whenever a person changes the value (not when the form itself syncs options)."""
        def changed(_change: Any) -> None:
            if not self._updating:
                callback()
        self.input.observe(changed, "value")

    def close(self) -> None:
        close_tree(self.box)
