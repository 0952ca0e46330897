"""ready-sum: KubeStellar's routing, with READY as the sum over WECs.

KubeStellar's most asked-for change to multi-WEC status (kubestellar#2809):
a Deployment sent to three WECs with 2 replicas each should read READY 6/6
in the WDS, not the minimum 2/2. This policy routes exactly as KubeStellar
does (the table in guest/src/table.rs) and aggregates any kind as follows:

- integer counters add up over the WECs (a WEC that omits one, as the API
  server does for a zero counter, adds 0), except `observedGeneration`,
  which takes the minimum: the WDS object is only as observed as its most
  lagging copy;
- `conditions` combine by `type` with three-valued AND (any False is False,
  all True is True, else Unknown); reason and message come from the WEC
  that decided the status (the first by name), so the result is
  deterministic;
- strings and booleans are kept where every WEC agrees, objects merge key by
  key with the same rules, other values are kept only when all are equal;
- a report that is not a JSON object is refused, naming the WEC.

Built with componentize-py --stub-wasi (`cargo xtask build-policies`): the
component imports nothing, so clocks, files, entropy and sockets trap.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.policy import (
    Decision_MultiWec,
    Decision_None_,
    Decision_Singleton,
)

NOT_SUMMED = {"observedGeneration"}


def route(req):
    """KubeStellar's routing table over the qualified WEC sets."""
    singleton = set(req.singleton_wecs) if req.want_singleton_reported_state else set()
    multi = set(req.multi_wec_wecs) if req.want_multi_wec_reported_state else set()
    if req.want_singleton_reported_state and not req.want_multi_wec_reported_state:
        return Decision_Singleton(sorted(singleton))
    if not req.want_singleton_reported_state and not req.want_multi_wec_reported_state:
        return Decision_None_()
    counted = sorted(singleton | multi)
    if len(counted) == 1:
        return Decision_Singleton(counted)
    return Decision_MultiWec(counted)


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def combine_conditions(lists):
    by_type = {}
    order = []
    for conditions in lists:
        for c in conditions if isinstance(conditions, list) else []:
            t = c.get("type") if isinstance(c, dict) else None
            if not isinstance(t, str):
                continue
            if t not in by_type:
                by_type[t] = []
                order.append(t)
            by_type[t].append(c)
    out = []
    for t in sorted(order):
        seen = by_type[t]
        statuses = [c.get("status") for c in seen]
        if len(seen) < len(lists) or any(s not in ("True", "False") for s in statuses):
            status = "False" if "False" in statuses else "Unknown"
        else:
            status = "False" if "False" in statuses else "True"
        source = next((c for c in seen if c.get("status") == status), seen[0])
        merged = dict(source)
        merged["status"] = status
        out.append(merged)
    return out


def combine(key, values):
    """Combines the values the WECs reported for one key (None: omitted)."""
    present = [v for v in values if v is not None]
    if key == "conditions":
        return combine_conditions([v if v is not None else [] for v in values])
    if present and all(is_int(v) for v in present):
        if key in NOT_SUMMED:
            return min(v if v is not None else 0 for v in values)
        return sum(present)
    if len(present) == len(values) and all(isinstance(v, dict) for v in values):
        return merge(values)
    if len(present) == len(values) and all(v == values[0] for v in values):
        return values[0]
    return None


def merge(statuses):
    keys = sorted({k for s in statuses for k in s})
    out = {}
    for key in keys:
        value = combine(key, [s.get(key) for s in statuses])
        if value is not None:
            out[key] = value
    return out


class Policy(exports.Policy):
    def decide(self, req):
        return route(req)

    def aggregate(self, object, reported):
        statuses = []
        for r in sorted(reported, key=lambda r: r.wec):
            try:
                status = json.loads(r.status)
            except ValueError as e:
                raise Err(f"WEC {r.wec} reported a status that is not JSON: {e}")
            if not isinstance(status, dict):
                raise Err(f"WEC {r.wec} reported a status that is not a JSON object")
            statuses.append(status)
        return json.dumps(merge(statuses), separators=(",", ":"), sort_keys=True)
