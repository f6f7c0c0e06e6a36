"""Cost of an LLM call in USD: user overrides first, then the `genai-prices` table.

`genai-prices` is a maintained, offline price table (no network at start-up); it is
imported on the first priced call, not at import time. Unknown models give no cost: an
absent cost is honest, a guessed one is not.

Overrides (private deployments, negotiated prices) come from `instrument(prices=...)` or
`OTEL_AGENTS_PRICES` (JSON): `{"model-name": {"input": 2.5, "output": 10, "cache_read": 1.25,
"cache_write": 3.75}}`, in USD per million tokens. A key may be `provider/model`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NamedTuple

from otel_agents import semconv as sc
from otel_agents.config import ConfigError
from otel_agents.identity_cache import IdentityCache

PRICES_ENV = "OTEL_AGENTS_PRICES"

# Our provider names (gen_ai.provider.name) -> genai-prices provider ids, where they differ.
_PROVIDER_IDS = {
    sc.GenAiProviderNameValues.AWS_BEDROCK: "aws",
    # Both Google endpoints are genai-prices' `google`; the Gemini API is the name its
    # OpenAI-compatible URL is told by (the last one wins in `_PROVIDER_NAMES`).
    sc.GenAiProviderNameValues.GCP_VERTEX_AI: "google",
    sc.GenAiProviderNameValues.GCP_GEMINI: "google",
    sc.GenAiProviderNameValues.AZURE_AI_OPENAI: "azure",
    sc.GenAiProviderNameValues.MISTRAL_AI: "mistral",
    sc.GenAiProviderNameValues.X_AI: "x-ai",
}
_PROVIDER_NAMES = {table_id: name for name, table_id in _PROVIDER_IDS.items()}
# Hosts the SDKs already name correctly (and genai-prices' second OpenAI entry).
_NOT_BY_URL = frozenset({"openai", "openai-decisions", "azure", "anthropic"})


def provider_from_url(url: str) -> str | None:
    """The provider behind an OpenAI-compatible base URL, when genai-prices knows its API
    address (Groq, Together, DeepSeek, Mistral, OpenRouter, xAI, Fireworks, ...), in the
    conventions' spelling where they name it (`mistral_ai`, `x_ai`), else genai-prices' id.
    None for OpenAI itself, unknown hosts, or without genai-prices."""
    try:
        from genai_prices import data_snapshot

        providers = data_snapshot.get_snapshot().providers
    except Exception:  # not installed, or its internals moved: the SDK's provider stays
        return None
    for provider in providers:
        pattern = getattr(provider, "api_pattern", None)
        if provider.id in _NOT_BY_URL or not isinstance(pattern, str):
            continue
        try:
            if re.match(pattern, url):
                return _PROVIDER_NAMES.get(provider.id, provider.id)
        except re.error:
            continue
    return None


class TokenUsage(NamedTuple):
    """Token counts as the GenAI conventions define them: input includes cached tokens.

    A named tuple: one is made for every LLM call, and a tuple is built in C.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0  # included in output_tokens


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None

    def cost(self, usage: TokenUsage) -> float:
        cache_read = self.input if self.cache_read is None else self.cache_read
        cache_write = self.input if self.cache_write is None else self.cache_write
        plain_input = max(
            usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens, 0
        )
        return (
            plain_input * self.input
            + usage.cache_read_tokens * cache_read
            + usage.cache_write_tokens * cache_write
            + usage.output_tokens * self.output
        ) / 1_000_000


class PriceBook:
    def __init__(self, overrides: Mapping[str, ModelPrice] | None = None) -> None:
        self.overrides = dict(overrides or {})
        self._table_lock = threading.Lock()
        self._misses: set[tuple[str, str]] = set()
        self._table_prices: dict[tuple[str, str], _TablePrice | _PublicCalcPrice] = {}

    def cost(
        self,
        provider: str,
        model: str | None,
        usage: TokenUsage,
        service_tier: str | None = None,
    ) -> tuple[float, str] | None:
        """(USD, source) for one call, or None when the price is unknown. `service_tier`
        (`flex`, `priority`, ...) selects the table's rates for that tier, where it has
        them; overrides have one price whatever the tier."""
        if not model:
            return None
        if self.overrides:
            override = self.overrides.get(f"{provider}/{model}") or self.overrides.get(model)
            if override is not None:
                return override.cost(usage), sc.CostSourceValues.OVERRIDE
        table_cost = self._table_cost(provider, model, usage, service_tier)
        if table_cost is None:
            return None
        return table_cost, sc.CostSourceValues.PRICE_TABLE

    def load_in_background(self) -> threading.Thread | None:
        """Import genai-prices and load its table on a daemon thread, so that the first
        priced call does not pay for it (about 150 ms of CPU) on the application's thread.
        A call that comes before it is done waits on the import lock, as it would have.
        None when genai-prices is not installed."""
        if importlib.util.find_spec("genai_prices") is None:
            return None
        loader = threading.Thread(target=_load_price_table, name="otel-agents prices", daemon=True)
        loader.start()
        return loader

    def _table_cost(
        self, provider: str, model: str, usage: TokenUsage, service_tier: str | None
    ) -> float | None:
        key = (provider, model)
        if key in self._misses:
            return None
        table_price: _TablePrice | _PublicCalcPrice | None = self._table_prices.get(key)
        if table_price is None or not table_price.current():
            table_price = self._look_up(key)
            if table_price is None:
                return None
        return table_price.cost(usage, service_tier)

    def _look_up(self, key: tuple[str, str]) -> _TablePrice | _PublicCalcPrice | None:
        try:
            import genai_prices
        except ImportError:
            return None
        provider, model = key
        table_price: _TablePrice | _PublicCalcPrice
        try:
            with self._table_lock:  # the table loads lazily on first use
                table_price = _TablePrice(
                    genai_prices.data_snapshot, model, _PROVIDER_IDS.get(provider, provider)
                )
        except LookupError:
            if len(self._misses) < 1024:
                self._misses.add(key)
            return None
        except Exception:  # a genai-prices whose internals moved: use its public API
            fallback = _PublicCalcPrice(model, _PROVIDER_IDS.get(provider, provider))
            if fallback.unknown():
                return None
            table_price = fallback
        if len(self._table_prices) < 1024:
            self._table_prices[key] = table_price
        return table_price


def _load_price_table() -> None:
    try:
        from genai_prices import data_snapshot

        data_snapshot.get_snapshot()
        # What pricing a model's units imports on first use (see `_UnitPlan._build`).
        import genai_prices.decompose
        import genai_prices.units
        import genai_prices.validation  # noqa: F401
    except Exception as exc:  # a table that cannot load now fails again, visibly, on use
        from otel_agents.runtime import report_internal_error

        report_internal_error("loading the price table", exc)


class _TablePrice:
    """One model's entry in the `genai-prices` table, looked up once.

    `calc_price` finds the model, picks the price in force, decomposes and validates the
    usage on every call: about 150 µs for a tiered, dated Anthropic price. Here the model
    is found once, the price in force is picked once a day when only the date decides it,
    and each price gets a `_UnitPlan` that computes `calc_price`'s sum for our four token
    counts in a few µs. Whatever a plan does not cover (units it cannot read, usage the
    table would reject) still goes through `calc_price`, with its result or its error.
    """

    def __init__(self, data_snapshot: Any, model: str, provider_id: str) -> None:
        self._data_snapshot = data_snapshot
        self._snapshot = data_snapshot.get_snapshot()
        self._model, self._provider_id = model, provider_id
        provider, self._info = self._snapshot.find_provider_model(model, None, provider_id, None)
        prices = self._info.prices
        self._by_date_only = not isinstance(prices, list) or all(
            type(conditional.constraint).__name__ in ("NoneType", "StartDateConstraint")
            for conditional in prices
        )
        self._has_variants = bool(getattr(self._info, "price_variants", None))
        # Per service tier (None: standard): (UTC day number, price in force).
        self._today: dict[str | None, tuple[int, Any]] = {}
        # calc_price adjusts these models' usage itself (a billing minimum for audio).
        self._adjusted = provider.id == "groq" and str(self._info.id).startswith("whisper")
        # Per price in force (prices are unhashable: by identity); a model has a few.
        self._plans: IdentityCache[Any, _UnitPlan | None] = IdentityCache(self._plan_for, 64)

    def current(self) -> bool:
        """False once the application loaded another table (genai-prices' `UpdatePrices`)."""
        return self._data_snapshot.get_snapshot() is self._snapshot

    def cost(self, usage: TokenUsage, service_tier: str | None = None) -> float:
        tier = service_tier if self._has_variants else None  # no tier rates: standard ones
        plan = self._plans.get(self._price_in_force(tier))
        cost = plan.cost(usage) if plan is not None else None
        return self._calc_price(usage, tier) if cost is None else cost

    def _plan_for(self, model_price: Any) -> _UnitPlan | None:
        return None if self._adjusted else _UnitPlan.build(model_price)

    def _price_in_force(self, tier: str | None) -> Any:
        prices = self._info.prices
        if tier is None and not isinstance(prices, list):
            return prices
        context = {"service_tier": tier} if tier is not None else None
        if not self._by_date_only:  # e.g. off-peak hours: may change any minute
            return self._info.get_prices(datetime.now(tz=timezone.utc), context)
        day = int(time.time() // 86_400)
        today = self._today.get(tier)
        if today is None or today[0] != day:
            price = self._info.get_prices(datetime.now(tz=timezone.utc), context)
            today = (day, price)
            if len(self._today) < 16:  # tiers are a handful; unknown ones are not kept
                self._today[tier] = today
        return today[1]

    def _calc_price(self, usage: TokenUsage, tier: str | None = None) -> float:
        return _PublicCalcPrice(self._model, self._provider_id).cost(usage, tier)


class _PublicCalcPrice:
    """The slow but always-right path: genai-prices' public `calc_price` on every call, for
    a genai-prices release whose internals `_TablePrice` does not recognise."""

    def __init__(self, model: str, provider_id: str) -> None:
        self._model, self._provider_id = model, provider_id

    def current(self) -> bool:
        return True

    def unknown(self) -> bool:
        try:
            self.cost(TokenUsage(0, 0))
        except LookupError:
            return True
        return False

    def cost(self, usage: TokenUsage, service_tier: str | None = None) -> float:
        from genai_prices import Usage, calc_price

        priced_usage = Usage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens or None,
            cache_write_tokens=usage.cache_write_tokens or None,
        )
        if service_tier:  # older genai-prices releases have no `price_context`
            result = calc_price(
                priced_usage,
                model_ref=self._model,
                provider_id=self._provider_id,
                price_context={"service_tier": service_tier},
            )
        else:
            result = calc_price(priced_usage, model_ref=self._model, provider_id=self._provider_id)
        return float(result.total_price)


# The usage keys genai-prices gets from a `TokenUsage`, then the count of the `requests`
# unit, then that of any unit we do not report: positions in `_UnitPlan.cost`'s values.
_USAGE_KEYS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
_REQUESTS, _UNREPORTED = len(_USAGE_KEYS), len(_USAGE_KEYS) + 1


@dataclass(frozen=True)
class _PricedUnit:
    source: int  # which count it reads (a position in `_UnitPlan.cost`'s values)
    descendants: tuple[int, ...]  # earlier units whose leaf counts it excludes
    per: int  # the price is per `per` units (a million tokens)
    base: float
    tiers: tuple[tuple[int, float], ...]  # (start, rate), highest start first


class _UnitPlan:
    """genai-prices' `ModelPrice.calc_price` for one price and our four token counts:
    each priced unit's leaf count (input tokens net of cache reads and writes, ...,
    as `genai_prices.decompose` computes them) times its rate, the tier chosen by the
    input tokens, as the table does."""

    def __init__(self, units: tuple[_PricedUnit, ...], tiered: bool) -> None:
        self._units = units
        self._tiered = tiered

    @classmethod
    def build(cls, model_price: Any) -> _UnitPlan | None:
        """The plan for `model_price`, or None when only `calc_price` can price it."""
        try:
            return cls._build(model_price)
        except Exception:  # a table shape or library version we do not know: slow path
            return None

    @classmethod
    def _build(cls, model_price: Any) -> _UnitPlan:
        from genai_prices import Usage
        from genai_prices.decompose import is_descendant_or_self
        from genai_prices.types import TieredPrices, _collect_resolved_model_prices
        from genai_prices.units import _get_registry
        from genai_prices.validation import validate_priced_units

        registry = _get_registry()
        resolved = _collect_resolved_model_prices(model_price, registry)
        validate_priced_units(tuple(unit for unit, _ in resolved), registry)
        # A unit we never report reads as 0, unless the table refuses to infer it from
        # what we report (this raises then, and the calls go to the table).
        probe = Usage(**dict.fromkeys(_USAGE_KEYS, 1))
        rates = {unit.usage_key: rate for unit, rate in resolved}
        for key in rates:
            if key not in _USAGE_KEYS and key != "requests":
                getattr(probe, key)
        # Leaf counts in genai-prices' order (more specific units first), then `requests`.
        counted = sorted(
            (unit for unit, _ in resolved if unit.usage_key != "requests"),
            key=lambda unit: (-len(unit.dimensions), unit.usage_key),
        )
        units = [unit for unit, _ in resolved if unit.usage_key == "requests"]
        plan: list[_PricedUnit] = []
        for unit in [*counted, *units]:
            rate = rates[unit.usage_key]
            key = unit.usage_key
            source = _USAGE_KEYS.index(key) if key in _USAGE_KEYS else _UNREPORTED
            plan.append(
                _PricedUnit(
                    source=_REQUESTS if key == "requests" else source,
                    descendants=tuple(
                        i
                        for i, other in enumerate(counted)
                        if key != "requests"
                        and other is not unit
                        and is_descendant_or_self(unit, other)
                    ),
                    per=int(unit.per),
                    base=float(rate.base if isinstance(rate, TieredPrices) else rate),
                    tiers=tuple(
                        (int(tier.start), float(tier.price)) for tier in reversed(rate.tiers)
                    )
                    if isinstance(rate, TieredPrices)
                    else (),
                )
            )
        tiered = any(isinstance(rate, TieredPrices) for rate in rates.values())
        return cls(tuple(plan), tiered)

    def cost(self, usage: TokenUsage) -> float | None:
        """USD, or None for usage the table would reject (cache counts above input)."""
        values = (
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens,
            1,
            0,
        )
        tier_tokens = usage.input_tokens if self._tiered else 0
        leaves: list[int] = []
        total = 0.0
        for unit in self._units:
            count = values[unit.source]
            for descendant in unit.descendants:
                count -= leaves[descendant]
            if count < 0:
                return None
            leaves.append(count)
            rate = unit.base
            for start, tier_rate in unit.tiers:
                if tier_tokens > start:
                    rate = tier_rate
                    break
            total += rate * count / unit.per
        return total


def load_overrides(
    value: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, ModelPrice]:
    """Parse price overrides from an argument or `OTEL_AGENTS_PRICES`."""
    env = os.environ if environ is None else environ
    source = PRICES_ENV
    if value is None:
        raw = env.get(PRICES_ENV, "").strip()
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{PRICES_ENV} is not valid JSON: {exc}") from None
        if not isinstance(value, Mapping):
            raise ConfigError(f"{PRICES_ENV} must be a JSON object of model -> prices")
    else:
        source = "prices"
    prices: dict[str, ModelPrice] = {}
    for model, entry in value.items():
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{source}[{model!r}] must be an object with input/output prices")
        unknown = set(entry) - {"input", "output", "cache_read", "cache_write"}
        if unknown:
            raise ConfigError(f"{source}[{model!r}] has unknown keys: {sorted(unknown)}")
        try:
            prices[model] = ModelPrice(
                input=float(entry["input"]),
                output=float(entry["output"]),
                cache_read=_optional_float(entry.get("cache_read")),
                cache_write=_optional_float(entry.get("cache_write")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"{source}[{model!r}]: input and output must be numbers ({exc})"
            ) from None
    return prices


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
