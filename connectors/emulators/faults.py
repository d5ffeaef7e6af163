"""Fault injection for the platform emulators: what a bad promotion day does to an API.

A fault SPEC is a comma list of ``kind=fraction`` (of API calls, unless said otherwise), e.g.
``"429=0.05,500=0.05,timeout=0.02,truncate=0.03,shift=0.05,late=0.05,dup=0.05"``; ``""`` or ``"none"``
means no faults. Kinds:

``429``       HTTP 429 with the platform's own rate-limit body and a ``Retry-After`` header
``limit``     the platform's rate-limit body inside an HTTP 200 answer, as the TOP / PDD / Douyin
              gateways really answer (the client must read the body to notice)
``500``       HTTP 500/502/503 with the platform's "service unavailable" body (``5xx`` is an alias)
``timeout``   the answer comes only after ``slow_seconds`` — past the client's timeout
``truncate``  the JSON body is cut off part-way (Content-Length matches the cut body)
``shift``     before a list page is served, one order of the queried window is modified "now", so it
              leaves the window and the rows after it move up a place (rows moving between pages)
``dup``       a list page carries one extra row copied from the neighbouring page
``late``      a fraction of order *changes* (not calls) become visible to list queries only 1–10
              minutes after their modified time, as Taobao lags in big promotions

Response faults (429, limit, 500, timeout, truncate) exclude each other on one call; ``shift`` and
``dup`` are drawn on their own. Control (``/_emu/*``) and token calls never get faults. The dice are
a ``random.Random(seed)``: one seed and one order of calls give one sequence of faults.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from random import Random

#: Faults decided per call, at most one per call, in this order of the cumulative draw.
RESPONSE_FAULTS: tuple[str, ...] = ("429", "limit", "500", "timeout", "truncate")
#: Faults that change which rows a list page holds.
PAGE_FAULTS: tuple[str, ...] = ("shift", "dup")
#: Faults drawn per order change.
CHANGE_FAULTS: tuple[str, ...] = ("late",)
KINDS: tuple[str, ...] = RESPONSE_FAULTS + PAGE_FAULTS + CHANGE_FAULTS
_ALIASES = {"5xx": "500", "503": "500", "502": "500", "slow": "timeout", "cut": "truncate"}


class FaultSpecError(ValueError):
    """A fault SPEC string that cannot be read; the message says what is wrong in plain words."""


@dataclass(frozen=True)
class FaultSpec:
    """Fractions per fault kind (0 ≤ f ≤ 1; response faults together ≤ 1)."""

    rates: dict[str, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: str | None) -> FaultSpec:
        """Read ``"429=0.05,timeout=0.02"``; raise :class:`FaultSpecError` when it is malformed."""
        rates: dict[str, float] = {}
        text = (spec or "").strip()
        if text.lower() in ("", "none", "off", "0"):
            return cls({})
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            if "=" not in part:
                raise FaultSpecError(f"fault {part!r} needs a fraction, like {part}=0.05")
            name, _, value = part.partition("=")
            name = _ALIASES.get(name.strip().lower(), name.strip().lower())
            if name not in KINDS:
                raise FaultSpecError(f"unknown fault {name!r}; known faults: {', '.join(KINDS)}")
            try:
                rate = float(value)
            except ValueError:
                raise FaultSpecError(f"fault {name}={value.strip()!r}: the fraction must be a number like 0.05") from None
            if not 0.0 <= rate <= 1.0:
                raise FaultSpecError(f"fault {name}={rate}: the fraction must be between 0 and 1")
            rates[name] = rate
        if sum(rates.get(k, 0.0) for k in RESPONSE_FAULTS) > 1.0:
            raise FaultSpecError("the response faults (429, limit, 500, timeout, truncate) add up to more than 1")
        return cls(rates)

    def __str__(self) -> str:
        return ",".join(f"{k}={v:g}" for k, v in self.rates.items() if v) or "none"

    def rate(self, kind: str) -> float:
        """The fraction for one kind (0 when absent)."""
        return self.rates.get(kind, 0.0)


class Faults:
    """The dice: decides, call by call, which fault (if any) to inject. Thread-safe."""

    def __init__(self, spec: FaultSpec | str | None = None, *, seed: int = 0) -> None:
        self.spec = spec if isinstance(spec, FaultSpec) else FaultSpec.parse(spec)
        self._rng = Random(seed)
        self._lock = threading.Lock()
        #: How many of each fault were injected so far.
        self.injected: dict[str, int] = {k: 0 for k in KINDS}

    def response(self) -> str | None:
        """The response fault for this call, or None."""
        with self._lock:
            roll = self._rng.random()
            acc = 0.0
            for kind in RESPONSE_FAULTS:
                acc += self.spec.rate(kind)
                if roll < acc:
                    self.injected[kind] += 1
                    return kind
        return None

    def happens(self, kind: str) -> bool:
        """Whether a page or change fault of ``kind`` happens now."""
        rate = self.spec.rate(kind)
        if rate <= 0:
            return False
        with self._lock:
            if self._rng.random() < rate:
                self.injected[kind] += 1
                return True
        return False

    def uniform(self, lo: float, hi: float) -> float:
        """A number from the same dice (for fault details: how late, where to cut)."""
        with self._lock:
            return self._rng.uniform(lo, hi)

    def choice(self, seq: list):  # noqa: ANN201 - any element type
        """An element of ``seq`` from the same dice."""
        with self._lock:
            return seq[int(self._rng.random() * len(seq))]
