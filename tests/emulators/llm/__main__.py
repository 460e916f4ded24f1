"""Run the emulator standalone: `python -m tests.emulators.llm --port P --key K`."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable

from ..http import serve_until_signal
from .clock import ScaledClock
from .models import DEFAULT_MODELS, ModelSpec, model_table
from .noise import KINDS, Noise
from .oracle import GroundTruth
from .ratelimits import UNLIMITED
from .server import SERVER_KINDS, LLMEmulator


def _limit(text: str) -> int | None:
    """A limit on the command line: a number, or "none"/"0" for no limit."""
    return None if text.lower() in ("none", "off", "0") else int(text)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.emulators.llm",
        description="Serve an emulated Groq / OpenAI-compatible chat API with a genre oracle.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument("--key", default="test-key", help='the API key; "" accepts any')
    parser.add_argument(
        "--model",
        action="append",
        dest="models",
        help=f"serve this model (repeat; default: {', '.join(m.id for m in DEFAULT_MODELS)})",
    )
    parser.add_argument(
        "--truth",
        choices=("freemusicc", "none"),
        default="freemusicc",
        help="the oracle's ground truth",
    )
    parser.add_argument(
        "--server-kind",
        default="groq",
        choices=SERVER_KINDS,
        help="behave like this server towards response_format (see LLMEmulator)",
    )
    parser.add_argument("--truth-limit", type=int, default=None, help="first N CSV rows only")
    parser.add_argument(
        "--canonical",
        action="store_true",
        help="map the truth's genres through genred's taxonomy (genred.taxonomy.canonicalize)",
    )
    limits = parser.add_argument_group(
        "limits (default: each model's Groq free-plan limits; these override them for every "
        "model; a number, or none)"
    )
    for name in ("rpm", "rpd", "tpm", "tpd"):
        limits.add_argument(f"--{name}", type=_limit, default=argparse.SUPPRESS)
    limits.add_argument("--no-limits", action="store_true")
    limits.add_argument(
        "--clock-speed",
        type=float,
        default=1.0,
        help="run the limits' clock this many times faster than real time",
    )
    noise = parser.add_argument_group("noise")
    noise.add_argument(
        "--noise", default="", help=f"KIND=RATE,… with KIND one of {', '.join(KINDS)}"
    )
    noise.add_argument("--error-status", type=int, default=500)
    noise.add_argument("--latency-ms", type=float, default=0.0)
    noise.add_argument("--noise-seed", type=int, default=0)
    return parser.parse_args(argv)


def build_models(args: argparse.Namespace) -> list[ModelSpec]:
    """The served models; --rpm/--rpd/--tpm/--tpd override those limits of every model."""
    models = list(model_table(args.models).values()) if args.models else list(DEFAULT_MODELS)
    if args.no_limits:
        return [m.with_limits(UNLIMITED) for m in models]
    given = {name: getattr(args, name) for name in ("rpm", "rpd", "tpm", "tpd") if name in args}
    return [m.with_limits(dataclasses.replace(m.limits, **given)) for m in models]


def build_truth(args: argparse.Namespace) -> GroundTruth:
    if args.truth == "none":
        return GroundTruth()
    canonicalize: Callable[[list[str]], list[str]] | None = None
    if args.canonical:
        import genred.taxonomy

        canonicalize = genred.taxonomy.canonicalize
    return GroundTruth.from_freemusicc(limit=args.truth_limit, canonicalize=canonicalize)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    truth = build_truth(args)
    noise = Noise.parse(
        args.noise,
        error_status=args.error_status,
        latency_ms=args.latency_ms,
        seed=args.noise_seed,
    )
    emulator = LLMEmulator(
        truth,
        key=args.key or None,
        models=build_models(args),
        noise=noise,
        server_kind=args.server_kind,
        clock=ScaledClock(args.clock_speed) if args.clock_speed != 1.0 else time.time,
        host=args.host,
        port=args.port,
    ).start()
    print(emulator.url, flush=True)
    limits = ", ".join(
        f"{m.id} (RPM {m.limits.rpm}, RPD {m.limits.rpd}, TPM {m.limits.tpm}, TPD {m.limits.tpd})"
        for m in emulator.models.values()
    )
    print(
        f"# LLM emulator: groq base_url {emulator.url}, openai base_url "
        f"{emulator.openai_base_url}, key {args.key!r}; server kind {args.server_kind}; {len(truth)} ground-truth tracks; "
        f"models {limits}; noise {noise.active() or 'none'}; clock x{args.clock_speed}; "
        f"built in {time.perf_counter() - started:.1f}s",
        file=sys.stderr,
        flush=True,
    )
    serve_until_signal(emulator)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
