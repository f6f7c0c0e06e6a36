"""Cost of an LLM call in USD: user overrides first, then the `genai-prices` table.

`genai-prices` is a maintained, offline price table (no network at start-up); it is
imported on the first priced call, not at import time. Unknown models give no cost: an
absent cost is honest, a guessed one is not.

Overrides (private deployments, negotiated prices) come from `instrument(prices=...)` or
`OTEL_AGENTS_PRICES` (JSON): `{"model-name": {"input": 2.5, "output": 10, "cache_read": 1.25,
"cache_write": 3.75}}`, in USD per million tokens. A key may be `provider/model`.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from otel_agents import semconv as sc
from otel_agents.config import ConfigError

PRICES_ENV = "OTEL_AGENTS_PRICES"

# Our provider names (gen_ai.provider.name) -> genai-prices provider ids.
_PROVIDER_IDS = {
    sc.GenAiProviderNameValues.OPENAI: "openai",
    sc.GenAiProviderNameValues.ANTHROPIC: "anthropic",
    sc.GenAiProviderNameValues.AZURE_AI_OPENAI: "azure",
}


@dataclass(frozen=True)
class TokenUsage:
    """Token counts as the GenAI conventions define them: input includes cached tokens."""

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
        self._flat_prices: dict[tuple[str, str], ModelPrice] = {}

    def cost(self, provider: str, model: str | None, usage: TokenUsage) -> tuple[float, str] | None:
        """(USD, source) for one call, or None when the price is unknown."""
        if not model:
            return None
        override = self.overrides.get(f"{provider}/{model}") or self.overrides.get(model)
        if override is not None:
            return override.cost(usage), sc.CostSourceValues.OVERRIDE
        table_cost = self._table_cost(provider, model, usage)
        if table_cost is None:
            return None
        return table_cost, sc.CostSourceValues.PRICE_TABLE

    def _table_cost(self, provider: str, model: str, usage: TokenUsage) -> float | None:
        key = (provider, model)
        if key in self._misses:
            return None
        flat = self._flat_prices.get(key)
        if flat is not None:
            return flat.cost(usage)
        try:
            from genai_prices import Usage, calc_price
        except ImportError:
            return None
        provider_id = _PROVIDER_IDS.get(provider, provider)
        try:
            with self._table_lock:  # the table loads lazily on first use
                result = calc_price(
                    Usage(
                        input_tokens=usage.input_tokens,
                        output_tokens=usage.output_tokens,
                        cache_read_tokens=usage.cache_read_tokens or None,
                        cache_write_tokens=usage.cache_write_tokens or None,
                    ),
                    model_ref=model,
                    provider_id=provider_id,
                )
                flat = _flat_price(model, provider_id)
        except LookupError:
            if len(self._misses) < 1024:
                self._misses.add(key)
            return None
        if flat is not None and len(self._flat_prices) < 1024:
            self._flat_prices[key] = flat
        return float(result.total_price)


def _flat_price(model: str, provider_id: str) -> ModelPrice | None:
    """The table's price for `model` when it is a plain per-token rate (no tiers, no dated
    variants): then later calls compute the cost directly, about 100x faster than a full
    table calculation. Tiered or conditional prices keep going through `calc_price`."""
    from decimal import Decimal

    from genai_prices import data_snapshot

    _, info = data_snapshot.get_snapshot().find_provider_model(model, None, provider_id, None)
    prices = info.prices
    rates = [getattr(prices, name, None) for name in _TABLE_RATE_FIELDS]
    if isinstance(prices, list) or not all(r is None or isinstance(r, Decimal) for r in rates):
        return None
    extra = {k for k, v in vars(prices).items() if v is not None and not k.startswith("_")}
    extra -= {*_TABLE_RATE_FIELDS, "web_searches_kcount", "storage_searches_kcount"}
    if rates[0] is None or rates[1] is None or extra:
        return None
    input_rate, output_rate, cache_read, cache_write = (
        None if r is None else float(r) for r in rates
    )
    assert input_rate is not None and output_rate is not None
    return ModelPrice(input_rate, output_rate, cache_read, cache_write)


_TABLE_RATE_FIELDS = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok")


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
