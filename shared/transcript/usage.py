"""Token usage and its estimated price: the one module to touch when a vendor changes its prices.

Adapters fold each format's usage records into :class:`TokenUsage` per model (Claude Code: the Messages API
``usage`` of each response, de-duplicated; Codex: the ``token_count`` events' ``last_token_usage``);
:func:`estimate_cost_usd` prices them.  Unknown models are reported, never guessed.
"""

from __future__ import annotations

import msgspec

from shared.lazy_re import lazy_pattern

__all__ = ["PRICES_USD_PER_MTOK", "TokenUsage", "estimate_cost_usd", "model_price"]


class TokenUsage(msgspec.Struct, frozen=True, gc=False):
    """Token totals.  ``cache_creation_tokens`` includes ``cache_creation_1h_tokens`` (kept apart only
    because 1-hour cache writes are priced higher)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_creation_1h_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_creation_tokens

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_creation_tokens + other.cache_creation_tokens,
            self.cache_creation_1h_tokens + other.cache_creation_1h_tokens,
        )

    def to_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_creation_tokens": self.cache_creation_tokens,
            "total_tokens": self.total_tokens,
        }


#: Anthropic and OpenAI list prices in USD per million tokens, by model family:
#: ``(input, output, cache write 5 min, cache write 1 h, cache read)``.
#: Cache writes cost 1.25x (5 min) / 2x (1 h) input, cache reads 0.1x input.  Long-context (>200k) premium
#: rates, batch discounts and regional (``inference_geo``) multipliers are ignored: this is an estimate for
#: a dashboard, not a bill.  Claude Code's own figure, when written (``cost-state``), is exposed separately
#: as :attr:`TranscriptParser.reported_cost_usd`.
PRICES_USD_PER_MTOK: dict[str, tuple[float, float, float, float, float]] = {
    "opus-4.5+": (5.0, 25.0, 6.25, 10.0, 0.50),  # Opus 4.5, 4.6 and later
    "opus": (15.0, 75.0, 18.75, 30.0, 1.50),  # Claude 3 Opus, Opus 4, 4.1
    "sonnet": (3.0, 15.0, 3.75, 6.0, 0.30),  # Sonnet 3.5, 3.7, 4, 4.5 and later
    "haiku-4.5+": (1.0, 5.0, 1.25, 2.0, 0.10),  # Haiku 4.5 and later
    "haiku-3.5": (0.80, 4.0, 1.0, 1.6, 0.08),
    "haiku-3": (0.25, 1.25, 0.30, 0.50, 0.03),
    # OpenAI (Codex): no cache-write charge, so both write prices are the input price
    "gpt-5": (1.25, 10.0, 1.25, 1.25, 0.125),  # gpt-5, gpt-5-codex, gpt-5.1, gpt-5.1-codex
    "gpt-5-mini": (0.25, 2.0, 0.25, 0.25, 0.025),
    "gpt-5-nano": (0.05, 0.40, 0.05, 0.05, 0.005),
}
_GPT_RE = lazy_pattern(r"^(?:openai/)?gpt-5(?:\.1)?(?:-codex)?(-mini|-nano)?(?:-\d{4}-\d{2}-\d{2})?$")

_MODEL_NEW_RE = lazy_pattern(r"claude-(opus|sonnet|haiku)-(\d+)(?:-(\d{1,2})(?!\d))?")
_MODEL_OLD_RE = lazy_pattern(r"claude-(\d+)(?:[-.](\d))?-(opus|sonnet|haiku)")


def model_price(model: str | None) -> tuple[float, float, float, float, float] | None:
    """Price row for a model id (``claude-sonnet-4-5-20250929``, ``claude-3-5-haiku-…``, ``gpt-5-codex``); None
    if unknown (other OpenAI models are left unpriced rather than guessed)."""
    if not model:
        return None
    if model.startswith(("gpt-", "openai/")):
        gpt = _GPT_RE().match(model)
        return PRICES_USD_PER_MTOK["gpt-5" + (gpt.group(1) or "")] if gpt else None
    match = _MODEL_NEW_RE().search(model)
    if match:
        family, major, minor = match.group(1), int(match.group(2)), int(match.group(3) or 0)
    else:
        match = _MODEL_OLD_RE().search(model)
        if not match:
            return None
        major, minor, family = int(match.group(1)), int(match.group(2) or 0), match.group(3)
    version = (major, minor)
    if family == "opus":
        return PRICES_USD_PER_MTOK["opus-4.5+" if version >= (4, 5) else "opus"]
    if family == "sonnet":
        return PRICES_USD_PER_MTOK["sonnet"]
    if version >= (4, 5):
        return PRICES_USD_PER_MTOK["haiku-4.5+"]
    return PRICES_USD_PER_MTOK["haiku-3.5" if version >= (3, 5) else "haiku-3"]


def estimate_cost_usd(usage_by_model: dict[str, TokenUsage]) -> tuple[float, list[str]]:
    """Estimated cost and the models that could not be priced (their tokens are not included)."""
    cost = 0.0
    unpriced: list[str] = []
    for model, usage in usage_by_model.items():
        price = model_price(model)
        if price is None:
            if usage.total_tokens:
                unpriced.append(model)
            continue
        p_in, p_out, p_w5, p_w1h, p_read = price
        cache_5m = usage.cache_creation_tokens - usage.cache_creation_1h_tokens
        cost += (
            usage.input_tokens * p_in
            + usage.output_tokens * p_out
            + cache_5m * p_w5
            + usage.cache_creation_1h_tokens * p_w1h
            + usage.cache_read_tokens * p_read
        ) / 1_000_000
    return cost, unpriced

