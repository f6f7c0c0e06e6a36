"""Cost from the genai-prices table and from overrides."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from otel_agents.config import ConfigError
from otel_agents.pricing import PriceBook, TokenUsage, load_overrides

genai_prices = pytest.importorskip("genai_prices")

USAGE = TokenUsage(input_tokens=12_000, output_tokens=800, cache_read_tokens=3_000)


def table_price(model: str, provider_id: str, usage: TokenUsage) -> float:
    result = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens or None,
            cache_write_tokens=usage.cache_write_tokens or None,
        ),
        model_ref=model,
        provider_id=provider_id,
    )
    return float(result.total_price)


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-4o-mini"),
        ("openai", "gpt-4.1"),
        ("openai", "o4-mini"),
        ("anthropic", "claude-sonnet-4-6"),  # dated prices (tiered, then flat)
        ("anthropic", "claude-sonnet-4-5"),  # tiered by input tokens (above 200k)
        ("anthropic", "claude-haiku-4-5"),
        ("google", "gemini-2.5-pro"),  # tiered, without cache writes
    ],
)
def test_every_call_matches_the_table(provider: str, model: str) -> None:
    book = PriceBook()
    for usage in (USAGE, TokenUsage(250_000, 9_000, 1_000, 2_000), TokenUsage(10, 1)):
        expected = table_price(model, provider, usage)
        for _ in range(2):  # first call through the table, later ones maybe the fast path
            cost = book.cost(provider, model, usage)
            assert cost is not None
            assert cost[0] == pytest.approx(expected, rel=1e-12)
            assert cost[1] == "price_table"


def test_repeated_calls_skip_the_table_calculation(monkeypatch: pytest.MonkeyPatch) -> None:
    book = PriceBook()
    first = book.cost("anthropic", "claude-sonnet-4-5", USAGE)

    def no_table(*args: object, **kwargs: object) -> None:
        raise AssertionError("priced through calc_price")

    monkeypatch.setattr(genai_prices, "calc_price", no_table)
    for usage in (USAGE, TokenUsage(250_000, 9_000, 1_000, 2_000)):
        assert book.cost("anthropic", "claude-sonnet-4-5", usage) is not None
    assert book.cost("anthropic", "claude-sonnet-4-5", USAGE) == first


def test_usage_the_table_rejects_still_goes_to_the_table() -> None:
    # More cache reads than input tokens: genai-prices refuses it, as before.
    usage = TokenUsage(input_tokens=10, output_tokens=1, cache_read_tokens=50)
    with pytest.raises(ValueError):
        table_price("claude-sonnet-4-5", "anthropic", usage)
    with pytest.raises(ValueError):
        PriceBook().cost("anthropic", "claude-sonnet-4-5", usage)


def test_unknown_models_have_no_cost() -> None:
    book = PriceBook()
    assert book.cost("openai", "no-such-model-7", USAGE) is None
    assert book.cost("openai", "no-such-model-7", USAGE) is None  # cached miss
    assert book.cost("openai", None, USAGE) is None


def test_overrides_win_and_are_validated() -> None:
    overrides = load_overrides({"gpt-4o-mini": {"input": 1, "output": 2, "cache_read": 0.5}})
    book = PriceBook(overrides)
    cost = book.cost("openai", "gpt-4o-mini", USAGE)
    assert cost == (pytest.approx((9_000 * 1 + 3_000 * 0.5 + 800 * 2) / 1e6), "override")
    env = load_overrides(
        environ={"OTEL_AGENTS_PRICES": '{"openai/private-ft": {"input": 3, "output": 6}}'}
    )
    assert PriceBook(env).cost("openai", "private-ft", TokenUsage(1_000_000, 0)) == (
        3.0,
        "override",
    )
    with pytest.raises(ConfigError, match="unknown keys"):
        load_overrides({"m": {"input": 1, "output": 2, "cahce_read": 1}})
    with pytest.raises(ConfigError, match="OTEL_AGENTS_PRICES is not valid JSON"):
        load_overrides(environ={"OTEL_AGENTS_PRICES": "{nope"})


def test_a_genai_prices_with_other_internals_still_prices_through_its_public_api(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("genai_prices")
    from genai_prices import Usage, calc_price

    from otel_agents import pricing

    def moved(*args: object, **kwargs: object) -> None:
        raise AttributeError("find_provider_model")

    monkeypatch.setattr(pricing._TablePrice, "__init__", moved)
    book = PriceBook()
    usage = TokenUsage(1200, 300, cache_read_tokens=200)
    expected = calc_price(
        Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=200),
        model_ref="claude-sonnet-4-5",
        provider_id="anthropic",
    )
    cost = book.cost("anthropic", "claude-sonnet-4-5", usage)
    assert cost is not None and cost[0] == pytest.approx(float(expected.total_price))
    assert book.cost("anthropic", "no-such-model-xyz", usage) is None


def test_instrument_loads_the_price_table_off_the_application_thread() -> None:
    """The first priced call must not import genai-prices on the application's thread: a
    daemon thread started by `instrument()` does, before any call is made."""
    program = textwrap.dedent(
        """
        import sys, threading
        import otel_agents
        otel_agents.instrument(configure_sdk=False)
        [loader] = [t for t in threading.enumerate() if t.name == "otel-agents prices"]
        assert loader.daemon and loader is not threading.current_thread()
        loader.join()
        assert "genai_prices.data_snapshot" in sys.modules
        from genai_prices import data_snapshot
        assert data_snapshot.get_snapshot() is not None
        print("loaded")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "loaded"
