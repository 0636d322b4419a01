#!/usr/bin/env python3
"""xdslog: reads the log of build/xds/server/skiff-xds-server --log-times for bench/xds.sh.

  xdslog.py wait LOG VERSION TYPES MIN_SENDS TIMEOUT SKIFF_PID
      Waits (polling, at most TIMEOUT seconds) until the client has answered (ACK or NACK)
      every response the server sent at VERSION of the types TYPES ("cds": CDS then EDS,
      "lds": LDS then RDS), with at least MIN_SENDS responses of the second type (the
      answer to the old subscription and the one to the new names), and the log has been
      quiet for 0.3 s; or until SKIFF_PID exits. Prints one JSON object: done, why, the times
      of each response sent and answered (wall clock, s), NACK lines.
  xdslog.py window LOG T0 T1
      The responses sent between T0 and T1 (wall clock) and their answers: JSON.
"""
import json
import os
import re
import sys
import time

SHORT = {"envoy.config.cluster.v3.Cluster": "cds", "envoy.config.endpoint.v3.ClusterLoadAssignment": "eds",
         "envoy.config.listener.v3.Listener": "lds", "envoy.config.route.v3.RouteConfiguration": "rds"}
LINE = re.compile(r"^(\d+\.\d+) (SEND|ACK|NACK|STORE|STREAM|STREAM_END|REQUEST) (.*)$")


def parse(path):
    """-> list of events: dict(t, ev, stream, type, version, nonce, resources, rest)"""
    out = []
    try:
        with open(path, errors="replace") as f:
            text = f.read()
    except OSError:
        return out
    for line in text.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        t, ev, rest = float(m.group(1)), m.group(2), m.group(3)
        kv = dict(re.findall(r"(\w+)=(\S*)", rest))
        typ = kv.get("type", "").rsplit("/", 1)[-1]
        out.append(dict(t=t, ev=ev, stream=kv.get("stream"), type=SHORT.get(typ, typ), version=kv.get("version"),
                        nonce=kv.get("nonce"), rest=rest[:300]))
    return out


def responses(evs, pred):
    """The SENDs matching pred, each with its answer (ACK/NACK with the same stream, type, nonce)."""
    answers = {}
    for e in evs:
        if e["ev"] in ("ACK", "NACK"):
            answers.setdefault((e["stream"], e["type"], e["nonce"]), e)
    out = []
    for e in evs:
        if e["ev"] == "SEND" and pred(e):
            a = answers.get((e["stream"], e["type"], e["nonce"]))
            out.append(dict(type=e["type"], t_send=e["t"], nonce=e["nonce"], stream=e["stream"],
                            t_ans=a["t"] if a else None, ans=a["ev"] if a else None,
                            nack=a["rest"] if a and a["ev"] == "NACK" else None,
                            n=len(e["rest"].split("resources=", 1)[-1].split(" removed=")[0].split(","))
                            if "resources=" in e["rest"] else 0))
    return out


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def wait(log, version, kinds, min_sends, timeout, pid):
    types = {"cds": ("cds", "eds"), "lds": ("lds", "rds")}[kinds]
    deadline = time.time() + timeout
    why, done = "timeout", False
    last_size, last_change = -1, time.time()
    while time.time() < deadline:
        size = os.path.getsize(log) if os.path.exists(log) else 0
        if size != last_size:
            last_size, last_change = size, time.time()
        evs = parse(log)
        streams = [e["stream"] for e in evs if e["ev"] == "SEND" and e["version"] == version and e["type"] in types]
        stream = streams[-1] if streams else None
        rs = responses(evs, lambda e: e["version"] == version and e["stream"] == stream and e["type"] in types)
        second = [r for r in rs if r["type"] == types[1]]
        if rs and all(r["ans"] for r in rs) and len(second) >= min_sends and time.time() - last_change >= 0.3:
            done, why = True, "answered"
            break
        if not alive(pid):
            why = "skiff exited"
            break
        time.sleep(0.02)
    evs = parse(log)
    streams = [e["stream"] for e in evs if e["ev"] == "SEND" and e["version"] == version and e["type"] in types]
    stream = streams[-1] if streams else None
    rs = responses(evs, lambda e: e["version"] == version and e["stream"] == stream and e["type"] in types)
    store = [e["t"] for e in evs if e["ev"] == "STORE" and e["version"] == version]
    print(json.dumps(dict(done=done, why=why, version=version, store=store[0] if store else None, responses=rs)))


def window(log, t0, t1):
    evs = parse(log)
    rs = responses(evs, lambda e: t0 <= e["t"] <= t1)
    stores = [e["t"] for e in evs if e["ev"] == "STORE" and t0 <= e["t"] <= t1]
    print(json.dumps(dict(stores=stores, responses=rs)))


if __name__ == "__main__":
    a = sys.argv[1:]
    if a and a[0] == "wait" and len(a) == 7:
        wait(a[1], a[2], a[3], int(a[4]), float(a[5]), a[6])
    elif a and a[0] == "window" and len(a) == 4:
        window(a[1], float(a[2]), float(a[3]))
    else:
        sys.exit(__doc__)
