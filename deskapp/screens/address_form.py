"""The address form: correct an order's receiver, phone and address, checked as you type.

``e`` on the order card (or on the exceptions screen) opens it. Every change is checked a moment
after the last keystroke (:data:`DEBOUNCE_S`) by ``deskapp.services.address`` and ``.phone``, in a
worker thread, and what they found is shown under the fields:

* a **conflict** (西湖区 in 宁波市) blocks saving and shows the reason with its fix — Enter applies
  it ("回车改为 杭州市"); a **legacy** name (闸北区) is offered its current name the same way;
* **ambiguous** names (朝阳区: 北京 or 长春) and split legacy districts show a picker of the
  candidates — Enter in a field goes to it, arrows and Enter pick one;
* pasting a whole address (name and phone mixed in) into the detail field splits it into the fields;
* warnings (landline of another city, a legacy name) never block; blocks (a conflict, an invalid
  phone, a missing receiver / phone / street) refuse Ctrl+S with the reason shown; Ctrl+S again on
  the same fields saves anyway for a supervisor or admin (``override_check`` in ``db.roles``; the
  service layer refuses anyone else, and the hold stays until someone releases it).

Saving is ``db.edits.save_address``: the fields, their derived columns and an ``address`` timeline
event with old → new under the agent; an order held only for address or phone problems is released
in the same transaction. Nothing is ever rewritten without the agent pressing the key that does it.
Everything shown from the order is a stranger's text: Input values and Content objects, never markup.
The card shows the receiver masked; the form reads the real fields itself (:func:`unmasked_fields`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from db.edits import (
    AddressChanged,
    AddressFields,
    AddressSaved,
    NotEditable,
    save_address,
)
from db.roles import Refused
from db.sanitize import clean_text
from db.store import InvalidOrder, OrderNotFound
from deskapp.screens.base import localize_bindings
from deskapp.services.address import (
    AddressCheck,
    Problem,
    Status,
    check_address,
    split_pasted,
)
from deskapp.services.phone import PhoneCheck, check_phone
from widgets.footer import DeskFooter
from widgets.i18n import language, tr

if TYPE_CHECKING:
    from deskapp.app import DeskApp

#: Seconds after the last keystroke before the fields are checked (tests set it to 0).
DEBOUNCE_S = 0.15

#: Form field → the order column it edits, in screen order.
FIELDS = (
    ("name", "receiver_name"),
    ("phone", "receiver_phone"),
    ("province", "province"),
    ("city", "city"),
    ("district", "district"),
    ("detail", "address_detail"),
)
_PLACE_FIELDS = ("province", "city", "district")
SEVERITY_STYLE = {"block": "bold red", "warn": "yellow", "info": "dim"}
SEVERITY_MARK = {"block": "●", "warn": "▲", "info": "·"}


# -- what the checks say about the form's fields (pure: runs in a worker thread) ------------------


@dataclass(frozen=True)
class Assessment:
    """The checks' verdict on one set of fields, as the form shows it.

    ``fix``: the fields a one-key fix would change (conflict or legacy with a single likely fix);
    ``candidates``: places to pick from (ambiguous, or no single fix).
    """

    fields: AddressFields
    address: AddressCheck
    phone: PhoneCheck
    problems: tuple[Problem, ...]
    fix: dict[str, str] = field(default_factory=dict)
    candidates: tuple[dict[str, str], ...] = ()

    @property
    def blocking(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "block"]


def assess(fields: AddressFields) -> Assessment:
    """Check the form's fields: address, phone against the address's city, required fields."""
    address = check_address(province=fields.province, city=fields.city, district=fields.district,
                            detail=fields.address_detail)
    phone = check_phone(fields.receiver_phone, city=address.city or fields.city,
                        province=address.province or fields.province)
    missing = [label for label, value in ((tr("addr.name"), fields.receiver_name),
                                          (tr("addr.phone"), fields.receiver_phone),
                                          (tr("addr.detail"), fields.address_detail)) if not value.strip()]
    problems: list[Problem] = []
    if missing:
        problems.append(Problem("missing_field", "block", tr("addr.missing", what="、".join(missing))))
    problems += address.problems
    problems += phone.problems
    problems.sort(key=lambda p: {"block": 0, "warn": 1}.get(p.severity, 2))
    fix: dict[str, str] = {}
    candidates: tuple[dict[str, str], ...] = ()
    if address.status in (Status.CONFLICT, Status.LEGACY, Status.AMBIGUOUS):
        if address.suggestion:
            fix = fix_changes(fields, address.suggestion)
        elif address.candidates:
            candidates = tuple(address.candidates)
    return Assessment(fields, address, phone, tuple(problems), fix, candidates)


def fix_changes(fields: AddressFields, place: dict[str, str]) -> dict[str, str]:
    """The form fields (province / city / district) that applying ``place`` would change."""
    changes = {}
    for name in _PLACE_FIELDS:
        value = place.get(name) or ""
        if value and value != getattr(fields, name).strip():
            changes[name] = value
    return changes


def place_text(place: dict[str, str]) -> str:
    """'北京市 朝阳区', '吉林省 长春市 朝阳区' (a municipality named once)."""
    parts = [place.get("province", ""), place.get("city", ""), place.get("district", "")]
    if parts[0] and parts[0] == parts[1]:
        parts[1] = ""
    return " ".join(p for p in parts if p)


# -- widgets -----------------------------------------------------------------------------------------


class DetailInput(Input):
    """The detail field: a paste is handed to the form (which may split it) instead of typed in."""

    class Pasted(Message):
        """Text was pasted into the detail field."""

        def __init__(self, input: DetailInput, text: str) -> None:
            super().__init__()
            self.input = input
            self.text = text

        @property
        def control(self) -> DetailInput:
            return self.input

    def _on_paste(self, event: events.Paste) -> None:
        event.prevent_default()  # not Input's own paste (first line typed in)
        event.stop()
        if event.text:
            self.post_message(self.Pasted(self, event.text))


class CandidatePicker(OptionList):
    """The places to pick from: arrows and Enter pick one, Escape goes back to the fields."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "leave", show=False)]

    def action_leave(self) -> None:
        self.screen.focus_previous()


# -- the screen --------------------------------------------------------------------------------------


class AddressForm(ModalScreen[AddressSaved | None]):
    """Edit one order's receiver and address; dismissed with what was saved, or None.

    | Key | Action |
    | :- | :- |
    | enter | Apply the fix shown ("回车改为 …"), or go to the candidates; else the next field. |
    | up/down, enter | In the candidates: pick one. |
    | ctrl+s | Save — refused, with the reason, while a blocking problem stands (again: a supervisor saves anyway). |
    | escape | Close without saving. |
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "bind.save", id="address.save", tooltip="bind.save", priority=True),
        Binding("escape", "cancel", "bind.cancel", id="address.cancel", tooltip="bind.cancel"),
    ]

    DEFAULT_CSS = """
    AddressForm { align: center middle; }
    AddressForm > #address-box {
        width: 78; max-width: 100%; height: auto; max-height: 100%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    AddressForm #address-title { text-style: bold; height: 1; margin-bottom: 1; }
    AddressForm .address-row { height: 1; margin-bottom: 1; }
    AddressForm .address-label { width: auto; min-width: 5; height: 1; padding: 0 1 0 0; color: $text-muted; }
    AddressForm .address-row Input {
        border: none; height: 1; width: 1fr; padding: 0 1; margin-right: 1; background: $boost;
    }
    AddressForm .address-row Input:focus { background: $primary 25%; }
    AddressForm .address-row Input.-changed { color: $warning; }
    AddressForm #address-problems { height: auto; min-height: 1; }
    AddressForm #address-hint { height: auto; color: $text-muted; }
    AddressForm #address-hint.-fix { color: $success; text-style: bold; }
    AddressForm #address-hint.-refused { color: $error; text-style: bold; }
    AddressForm #address-picker { height: auto; max-height: 6; border: none; display: none; }
    AddressForm #address-picker.-shown { display: block; }
    """

    app: DeskApp

    def __init__(self, order_id: int, order_no: str, fields: AddressFields | None = None) -> None:
        """``fields``: what to edit; None reads the order's real (unmasked) fields when the form
        opens (:func:`unmasked_fields`) — the fields stay disabled until they are there."""
        super().__init__()
        self.order_id = order_id
        self.order_no = order_no
        self._loading = fields is None
        fields = fields or AddressFields()
        self.original = AddressFields(**{n: clean_text(v) for n, v in fields.as_dict().items()})
        self.assessment: Assessment | None = None
        self._timer: Timer | None = None
        self._note: tuple[str, AddressFields] | None = None  # what a key just did, while the fields stay so
        self._override: AddressFields | None = None  # refused for a blocking problem: Ctrl+S again overrides
        localize_bindings(self)

    # -- layout

    def compose(self) -> ComposeResult:
        values = self.original
        with Vertical(id="address-box"):
            yield Static(Content(tr("addr.title", no=clean_text(self.order_no))), id="address-title")
            with Horizontal(classes="address-row"):
                yield Label(Content(tr("addr.name")), classes="address-label")
                yield Input(values.receiver_name, id="name", select_on_focus=False)
                yield Label(Content(tr("addr.phone")), classes="address-label")
                yield Input(values.receiver_phone, id="phone", select_on_focus=False)
            with Horizontal(classes="address-row"):
                yield Label(Content(tr("addr.province")), classes="address-label")
                yield Input(values.province, id="province", select_on_focus=False)
                yield Label(Content(tr("addr.city")), classes="address-label")
                yield Input(values.city, id="city", select_on_focus=False)
                yield Label(Content(tr("addr.district")), classes="address-label")
                yield Input(values.district, id="district", select_on_focus=False)
            with Horizontal(classes="address-row"):
                yield Label(Content(tr("addr.detail")), classes="address-label")
                yield DetailInput(values.address_detail, id="detail", placeholder=tr("addr.paste_hint"),
                                  select_on_focus=False)
            yield Static(Content(tr("addr.checking")), id="address-problems")
            yield Static(Content(""), id="address-hint")
            yield CandidatePicker(id="address-picker")
        yield DeskFooter()

    def on_mount(self) -> None:
        self._warm_up()
        if self._loading:
            for name, _ in FIELDS:
                self._input(name).disabled = True
            self._load()
            return
        self.query_one("#detail", Input).focus()
        self._check()

    @work(group="address-load", exit_on_error=False)
    async def _load(self) -> None:
        """The order's real receiver and address into the fields (a card shows them masked)."""
        from deskapp.services.reveal import RevealError

        try:
            fields = await unmasked_fields(self.app.store, self.order_id, self.app.actor, at=self.app.clock())
        except (Refused, RevealError) as refused:
            text = refused.text(language()) if isinstance(refused, Refused) else str(refused)
            self.app.notify(text, severity="error", markup=False, timeout=6)
            self.dismiss(None)
            return
        if not self.is_attached:
            return
        if fields is None:
            self.app.notify(tr("card.not_found"), severity="error", markup=False)
            self.dismiss(None)
            return
        self.original = AddressFields(**{n: clean_text(v) for n, v in fields.as_dict().items()})
        self._loading = False
        for name, column in FIELDS:
            widget = self._input(name)
            widget.value = getattr(self.original, column)
            widget.cursor_position = len(widget.value)
            widget.disabled = False
        self.query_one("#detail", Input).focus()
        self._check()

    @work(group="address-warm", thread=True, exit_on_error=False)
    def _warm_up(self) -> None:
        """phonenumbers takes ~0.5 s to import: now, in a thread, not on the first check."""
        from deskapp.services.phone import warm_up

        warm_up()

    # -- reading and writing the fields

    def _input(self, name: str) -> Input:
        return self.query_one(f"#{name}", Input)

    def fields(self) -> AddressFields:
        """What the form holds now."""
        return AddressFields(**{column: self._input(name).value for name, column in FIELDS})

    def _set(self, values: dict[str, str]) -> None:
        """Put values (form field → text) into the fields; marks the ones that differ from the order."""
        for name, value in values.items():
            widget = self._input(name)
            widget.value = clean_text(value)
            widget.cursor_position = len(widget.value)
        for name, column in FIELDS:
            self._input(name).set_class(self._input(name).value != getattr(self.original, column), "-changed")

    # -- checking as you type

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        event.input.set_class(event.value != getattr(self.original, dict(FIELDS)[event.input.id or ""]),
                              "-changed")
        if self._timer is not None:
            self._timer.stop()
        if DEBOUNCE_S <= 0:
            self._check()
        else:
            self._timer = self.set_timer(DEBOUNCE_S, self._check)

    @work(group="address-check", exclusive=True, exit_on_error=False)
    async def _check(self) -> None:
        """Check what the form holds (in a thread: phonenumbers may still be loading) and show it."""
        fields = self.fields()
        result = await asyncio.to_thread(assess, fields)
        if self.is_attached and fields == self.fields():  # still open, nothing typed meanwhile
            self.show(result)

    def show(self, result: Assessment) -> None:
        """Show the problems, the one-key fix or the candidates."""
        self.assessment = result
        lines = [Text.assemble((f"{SEVERITY_MARK.get(p.severity, '·')} ", SEVERITY_STYLE.get(p.severity, "")),
                               Text(clean_text(p.message), style=SEVERITY_STYLE.get(p.severity, "")))
                 for p in result.problems if p.severity in ("block", "warn")]
        problems = self.query_one("#address-problems", Static)
        problems.update(Text("\n").join(lines) if lines else Text(tr("addr.ok"), style="green"))
        hint = self.query_one("#address-hint", Static)
        hint.set_class(False, "-refused")
        if result.fix:
            hint.update(Content(tr("addr.fix", fix=" ".join(result.fix.values()))))
            hint.set_class(True, "-fix")
        elif result.candidates:
            hint.update(Content(tr("addr.pick")))
            hint.set_class(True, "-fix")
        else:
            note = self._note[0] if self._note is not None and self._note[1] == result.fields else ""
            hint.update(Content(note))
            hint.set_class(False, "-fix")
        self._show_candidates(result.candidates)

    def _show_candidates(self, candidates: Sequence[dict[str, str]]) -> None:
        picker = self.query_one(CandidatePicker)
        shown = [str(option.id) for option in picker.options]
        wanted = [place_text(c) for c in candidates]
        if shown != wanted:
            picker.clear_options()
            picker.add_options([Option(Content(text), id=text) for text in wanted])
            if wanted:
                picker.highlighted = 0
        picker.set_class(bool(wanted), "-shown")

    # -- keys

    @on(Input.Submitted)
    def _enter(self, event: Input.Submitted) -> None:
        """Enter: apply the fix shown, or go to the candidates, or on to the next field."""
        event.stop()
        result = self.assessment
        if result is not None and result.fields == self.fields() and result.fix:
            self.apply(result.fix)
        elif result is not None and result.candidates and self.query_one(CandidatePicker).has_class("-shown"):
            picker = self.query_one(CandidatePicker)
            picker.focus()
            if picker.highlighted is None:
                picker.highlighted = 0
        else:
            self.focus_next()

    @on(OptionList.OptionSelected, "#address-picker")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        result = self.assessment
        if result is None or not 0 <= event.option_index < len(result.candidates):
            return
        self.apply(fix_changes(self.fields(), result.candidates[event.option_index]))
        self.query_one("#district", Input).focus()

    def apply(self, changes: dict[str, str]) -> None:
        """Put a fix into the fields (the agent pressed the key for it) and check again at once."""
        if not changes:
            return
        self._set(changes)
        self._note = (tr("addr.fixed", fix=" ".join(changes.values())), self.fields())
        if self._timer is not None:
            self._timer.stop()
        self._check()

    @on(DetailInput.Pasted)
    def _pasted(self, event: DetailInput.Pasted) -> None:
        """A whole address pasted into the detail field fills the fields; anything else is typed in."""
        event.stop()
        text = clean_text(event.text)
        parts = split_pasted(text)
        found = [k for k in ("name", "phone", "province", "city", "district") if parts.get(k)]
        if not found:
            event.input.insert_text_at_cursor(text.strip())
            return
        values = {k: parts[k] for k in ("name", "phone") if parts.get(k)}
        values.update({k: parts.get(k) or "" for k in ("province", "city", "district")})
        values["detail"] = parts.get("detail") or ""
        what = [tr(f"addr.{k}") for k in ("name", "phone") if k in values]
        if any(parts.get(k) for k in _PLACE_FIELDS):
            what.append(tr("addr.places"))
        what.append(tr("addr.detail"))
        self._set(values)
        self._note = (tr("addr.split", what="、".join(what)), self.fields())
        if self._timer is not None:
            self._timer.stop()
        self._check()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_save(self) -> None:
        if not self._loading:  # nothing to save before the real fields are in
            self._save()

    @work(group="address-save", exclusive=True, exit_on_error=False)
    async def _save(self) -> None:
        fields = self.fields()
        result = await asyncio.to_thread(assess, fields)
        if not self.is_attached:
            return
        self.show(result)
        override = False
        if result.blocking:
            if self._override != fields:
                # The first Ctrl+S is refused with the reason; a second one on the same fields asks
                # to save anyway, which the service layer allows a supervisor only (db.roles).
                self._override = fields
                self._refuse(tr("addr.blocked", reason=clean_text(result.blocking[0].message))
                             + " · " + tr("addr.override_hint"))
                return
            override = True
        self._override = None
        store = await self.app.full_store()
        try:
            saved = await save_address(store, self.order_id, fields, self.app.actor, expected=self.original,
                                       clean=not override, override=override, at=self.app.clock())
        except Refused as refused:
            self._refuse(refused.text(language()))
            return
        except AddressChanged:
            self._refuse(tr("addr.changed_meanwhile"))
            return
        except (NotEditable, OrderNotFound):
            self._refuse(tr("addr.not_editable"))
            return
        except InvalidOrder:
            self._refuse(tr("addr.too_long"))
            return
        if not saved.changed:
            self.app.notify(tr("addr.unchanged"), markup=False, timeout=2)
        else:
            key = "addr.saved_override" if override else "addr.saved_released" if saved.released else "addr.saved"
            self.app.notify(tr(key), markup=False, timeout=3)
        self.dismiss(saved)

    def _refuse(self, why: str) -> None:
        """Saving was refused: say why where the agent is looking, and in a notification."""
        hint = self.query_one("#address-hint", Static)
        hint.update(Content(why))
        hint.set_class(False, "-fix")
        hint.set_class(True, "-refused")
        self.app.notify(why, severity="error", markup=False, timeout=4)


#: What the address form reads unmasked: it edits the receiver's real name, phone and street.
EDIT_REVEAL = frozenset({"name", "phone", "address"})


#: The reason recorded when opening the address form reveals the receiver.
EDIT_REASON = "修改地址"


async def unmasked_fields(store, order_id: int, actor, *, at=None) -> AddressFields | None:  # noqa: ANN001
    """The order's real receiver and address, for editing them; None when the order is gone.

    Cards and lists show these masked (``db.privacy``): reading them for the form is a reveal like
    any other — the ``reveal`` permission checked and one access-log record per field, reason
    「修改地址」 (``deskapp.services.reveal.reveal_card``; raises ``Refused`` / ``RevealError``).
    Saving the edit is checked on its own (``edit_address`` in ``db.edits.save_address``).
    """
    from deskapp.services.reveal import reveal_card

    card = await reveal_card(store, order_id, EDIT_REVEAL, EDIT_REASON, actor, via="address_form", at=at)
    return None if card is None else AddressFields.of(card)


def form_for(card: object) -> AddressForm:
    """The address form of an order card (``db.views.OrderCard``): the card's fields are masked,
    so the form reads the real ones itself when it opens (:func:`unmasked_fields`)."""
    return AddressForm(card.id, card.order_no)  # type: ignore[attr-defined]


__all__ = ["DEBOUNCE_S", "EDIT_REASON", "EDIT_REVEAL", "AddressForm", "Assessment", "assess", "fix_changes", "form_for", "place_text",
           "unmasked_fields"]
