"""The ``aiolibp2p`` command.

Sub-commands so far:

* ``aiolibp2p id``: create (first run) or load the node's identity and print its peer id.
* ``aiolibp2p build-info``: which twin (compiled or pure) serves each hot path.
* ``aiolibp2p node [--perf]``, ``aiolibp2p ping``, ``aiolibp2p perf``: see :mod:`aiolibp2p.cli.node`
  and :mod:`aiolibp2p.cli.perf`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from aiolibp2p.core.errors import Libp2pError

__all__ = ["default_data_dir", "default_identity_path", "main"]

_KEY_TYPES = ("ed25519", "secp256k1", "ecdsa", "rsa")


def default_data_dir() -> Path:
    """The user's data directory for aiolibp2p (``$AIOLIBP2P_HOME`` wins when set)."""
    if home := os.environ.get("AIOLIBP2P_HOME"):
        return Path(home)
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "aiolibp2p"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "aiolibp2p"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "aiolibp2p"


def default_identity_path() -> Path:
    """Where the node keeps its private key unless ``--identity`` says otherwise."""
    return default_data_dir() / "identity.key"


def _cmd_id(args: argparse.Namespace) -> int:
    from aiolibp2p.core.crypto import KeyType, load_or_create_private_key_file
    from aiolibp2p.core.peer import PeerId

    key_type = {
        "ed25519": KeyType.Ed25519,
        "secp256k1": KeyType.Secp256k1,
        "ecdsa": KeyType.ECDSA,
        "rsa": KeyType.RSA,
    }[args.key_type]
    path = Path(args.identity) if args.identity else default_identity_path()
    key, created = load_or_create_private_key_file(path, key_type)
    peer_id = PeerId.from_public_key(key.public_key())
    if args.json:
        print(
            json.dumps(
                {
                    "peer_id": str(peer_id),
                    "cid": peer_id.to_cid(),
                    "key_type": key.key_type.name,
                    "identity": str(path),
                    "created": created,
                }
            )
        )
    else:
        verb = "created" if created else "loaded"
        print(f"{verb} identity {path} ({key.key_type.name})", file=sys.stderr)
        print(peer_id)
    return 0


def _cmd_node(args: argparse.Namespace) -> int:
    from aiolibp2p.cli.node import run, serve

    if not args.no_tune_malloc:
        from aiolibp2p.cli.tuning import tune_malloc

        tune_malloc()
    path = Path(args.identity) if args.identity else default_identity_path()
    return run(serve(args.listen, path, perf=args.perf))


def _cmd_ping(args: argparse.Namespace) -> int:
    from aiolibp2p.cli.node import ping, run

    return run(ping(args.multiaddr, args.count, args.interval, args.timeout))


def _cmd_perf(args: argparse.Namespace) -> int:
    from aiolibp2p.cli.node import run
    from aiolibp2p.cli.perf import run_perf

    return run(
        run_perf(
            args.multiaddr,
            upload_bytes=args.upload_bytes,
            download_bytes=args.download_bytes,
            iterations=args.iterations,
            new_connection=args.new_connection,
            timeout=args.timeout,
        )
    )


def _byte_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a byte count: {text!r}") from None
    if not 0 <= value < 1 << 64:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**64 - 1], got {value}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def _cmd_build_info(args: argparse.Namespace) -> int:
    import aiolibp2p

    print(json.dumps({"build": aiolibp2p.build_info(), "hot_paths": aiolibp2p.accelerated()}))
    return 0


def _parser() -> argparse.ArgumentParser:
    import aiolibp2p

    parser = argparse.ArgumentParser(prog="aiolibp2p", description="A fast libp2p node.")
    parser.add_argument("--version", action="version", version=f"aiolibp2p {aiolibp2p.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p_id = sub.add_parser("id", help="create or load the node identity and print its peer id")
    p_id.add_argument(
        "--identity",
        metavar="PATH",
        help=f"private key file (default: {default_identity_path()})",
    )
    p_id.add_argument(
        "--key-type",
        choices=_KEY_TYPES,
        default="ed25519",
        help="key type used when the identity is created (default: ed25519)",
    )
    p_id.add_argument("--json", action="store_true", help="print a JSON object")
    p_id.set_defaults(func=_cmd_id)

    p_node = sub.add_parser("node", help="run a node until SIGINT/SIGTERM")
    p_node.add_argument(
        "--listen",
        metavar="MULTIADDR",
        action="append",
        help="listen address, repeatable (default: TCP port 4001 on all interfaces, "
        "or a free port when 4001 is taken)",
    )
    p_node.add_argument(
        "--identity", metavar="PATH", help=f"private key file (default: {default_identity_path()})"
    )
    p_node.add_argument(
        "--perf",
        action="store_true",
        help="serve /perf/1.0.0 (off by default: any client can make the node send any number "
        "of bytes, so do not enable it on publicly reachable nodes)",
    )
    p_node.add_argument(
        "--no-tune-malloc",
        action="store_true",
        help="keep glibc's default malloc thresholds (by default the node raises them: "
        "see aiolibp2p.cli.tuning; about a fifth less receiver CPU at bulk rates)",
    )
    p_node.set_defaults(func=_cmd_node)

    p_ping = sub.add_parser("ping", help="dial a peer and ping it")
    p_ping.add_argument("multiaddr", help="the peer, e.g. /ip4/1.2.3.4/tcp/4001/p2p/12D3KooW...")
    p_ping.add_argument("-n", "--count", type=int, default=5, help="pings to send (default 5)")
    p_ping.add_argument("--interval", type=float, default=0.2, help="seconds between pings")
    p_ping.add_argument("--timeout", type=float, default=10.0, help="seconds per step")
    p_ping.set_defaults(func=_cmd_ping)

    p_perf = sub.add_parser(
        "perf",
        help="measure upload/download against a peer serving /perf/1.0.0",
        description="Print one JSON line per iteration: "
        '{"type": "final", "timeSeconds": ..., "uploadBytes": ..., "downloadBytes": ...}.',
    )
    p_perf.add_argument("multiaddr", help="the peer, e.g. /ip4/1.2.3.4/tcp/4001/p2p/12D3KooW...")
    p_perf.add_argument(
        "--upload-bytes", type=_byte_count, required=True, metavar="N", help="bytes to send"
    )
    p_perf.add_argument(
        "--download-bytes",
        type=_byte_count,
        required=True,
        metavar="M",
        help="bytes to ask the peer to send back",
    )
    p_perf.add_argument(
        "--iterations", type=_positive_int, default=1, metavar="K", help="runs (default 1)"
    )
    p_perf.add_argument(
        "--new-connection",
        action="store_true",
        help="dial a fresh connection for every iteration (its time includes the dial)",
    )
    p_perf.add_argument(
        "--timeout",
        type=_positive_float,
        default=120.0,
        metavar="S",
        help="seconds allowed per iteration, dial included (default 120)",
    )
    p_perf.set_defaults(func=_cmd_perf)

    p_build = sub.add_parser("build-info", help="show which hot paths run compiled code")
    p_build.set_defaults(func=_cmd_build_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aiolibp2p`` console script."""
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except Libp2pError as exc:
        print(f"aiolibp2p: error: {exc}", file=sys.stderr)
        return 1
    except (OSError, asyncio.TimeoutError) as exc:
        print(f"aiolibp2p: error: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
