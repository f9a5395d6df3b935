"""Set up the service for the benchmark through its public API, and nothing else.

With the bootstrap (system) key:
    POST /v1/organizations                     {"name": "Bench", "slug": "bench"}       -> {id}
    POST /v1/organizations/{id}/api-keys       {"name": "bench", "scopes": ["admin"]}   -> {key}
With that admin key:
    POST /v1/clinicians                        {"display_name": "Dr Bench"}             -> {id}
    POST /v1/clients                           {"external_id": "bench-<i>"}             -> {id}
    POST /v1/episodes                          {"client_id", "clinician_id"}            -> {id}

Writes the admin key to --key-file and one episode id per line to --episodes-file.

    .venv/bin/python bench/setup.py --url http://127.0.0.1:8000 --bootstrap-key att_... \\
        --episodes 1000 --key-file key.txt --episodes-file episodes.txt
"""

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import httpx


class SetupError(RuntimeError):
    pass


async def post(client: httpx.AsyncClient, path: str, key: str, body: dict[str, Any]) -> Any:
    response = await client.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
    if response.status_code != 201:
        raise SetupError(f"POST {path} -> {response.status_code}: {response.text[:500]}")
    return response.json()


async def create_episode(
    client: httpx.AsyncClient, key: str, clinician_id: str, i: int, gate: asyncio.Semaphore
) -> str:
    async with gate:
        person = await post(client, "/v1/clients", key, {"external_id": f"bench-{i}"})
        episode = await post(
            client,
            "/v1/episodes",
            key,
            {"client_id": person["id"], "clinician_id": clinician_id},
        )
        return str(episode["id"])


async def set_up(args: argparse.Namespace) -> tuple[str, list[str]]:
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=args.url, timeout=30) as client:
        org = await post(
            client, "/v1/organizations", args.bootstrap_key, {"name": "Bench", "slug": "bench"}
        )
        created = await post(
            client,
            f"/v1/organizations/{org['id']}/api-keys",
            args.bootstrap_key,
            {"name": "bench", "scopes": ["admin"]},
        )
        key = created["key"]
        clinician = await post(client, "/v1/clinicians", key, {"display_name": "Dr Bench"})
        # An EHR subscribed to every event: each submission then also writes its outbox events
        # and one pending delivery each, which the worker delivers to bench/receiver.py (or,
        # with WEBHOOKS=0, nobody: the write side alone is measured).
        await post(client, "/v1/webhooks", key, {"url": args.webhook_url})
        gate = asyncio.Semaphore(8)
        episodes = await asyncio.gather(
            *(create_episode(client, key, clinician["id"], i, gate) for i in range(args.episodes))
        )
    print(
        f"set-up: organization, admin key, clinician and {len(episodes)} clients + episodes "
        f"in {time.monotonic() - started:.1f} s",
        file=sys.stderr,
    )
    return key, episodes


def main(args: argparse.Namespace) -> None:
    key, episodes = asyncio.run(set_up(args))
    Path(args.key_file).write_text(key + "\n")
    Path(args.episodes_file).write_text("".join(f"{e}\n" for e in episodes))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--bootstrap-key", required=True)
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--key-file", required=True)
    parser.add_argument("--episodes-file", required=True)
    parser.add_argument("--webhook-url", default="https://ehr.example.org/bench")
    try:
        main(parser.parse_args())
    except SetupError as error:
        sys.exit(f"set-up failed: {error}")
