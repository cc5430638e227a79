"""The LitServe peer of the serving benchmark (``mmscale.bench.serving.litserve_peer``): it really serves our
model behind LitServe's batching, scores like our predictor, refuses bad bodies with a 400, and
leaves no process behind when stopped."""

import base64
import json
import os
import sys
import time
from pathlib import Path

import httpx
import psutil

from mmscale.bench.load.payload import build_payloads
from mmscale.bench.load.spawn import SpawnedServer
from mmscale.serve.config import ServeConfig
from mmscale.serve.items import Item
from mmscale.serve.run import build_predictor

ROOT = Path(__file__).resolve().parents[3]


def test_litserve_peer_scores_like_our_predictor_and_stops_cleanly():
    cmd = [sys.executable, "-m", "mmscale.bench.serving.litserve_peer", "--preset", "tiny", "--device", "cpu",
           "--max-batch", "4", "--max-captions", "2", "--cpu-threads", "1"]
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    payload = build_payloads("match", n=1, captions_per_request=2, form="json")[0]
    body = json.loads(payload.body)
    with SpawnedServer([], command=cmd, ready_path="/health", env=env, ready_timeout_s=180) as peer:
        ok = httpx.post(peer.url + payload.path, content=payload.body,
                        headers={"content-type": payload.content_type}, timeout=60)
        bad = httpx.post(peer.url + "/v1/match", json={"image": "x"}, timeout=60)
        pid = peer.proc.pid
    assert ok.status_code == 200, ok.text
    assert bad.status_code == 400
    ours = build_predictor(ServeConfig(device="cpu"), preset="tiny")
    (expected,) = ours.predict("match", [Item("match", base64.b64decode(body["image_b64"]), body["captions"])])
    got = ok.json()
    assert len(got["itm_prob"]) == 2
    for a, b in zip(got["itm_prob"] + got["itc_similarity"], expected.itm_prob + expected.itc_similarity):
        assert abs(a - b) < 1e-4
    assert not live_group_members(pid), "the peer's process group outlived the benchmark"


def live_group_members(pgid: int, wait_s: float = 10.0) -> list[int]:
    """Processes of group ``pgid`` that are still running (zombies awaiting their reaper count as
    gone), after waiting up to ``wait_s`` for the SIGKILLed ones to die."""
    deadline = time.monotonic() + wait_s
    while True:
        members = []
        for proc in psutil.process_iter(["pid", "status"]):
            try:
                if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                    members.append(proc.pid)
            except (ProcessLookupError, psutil.Error):
                continue
        if not members or time.monotonic() > deadline:
            return members
        time.sleep(0.2)
