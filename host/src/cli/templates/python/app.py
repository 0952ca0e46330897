"""The {{name}} policy: KubeStellar's routing table; numbers aggregate by
their minimum, other values stay where every WEC agrees.

Built with componentize-py --stub-wasi: the component imports nothing, so
a clock, a file, os.urandom, print or a socket is a trap.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.policy import Decision_MultiWec, Decision_None_, Decision_Singleton


class Policy(exports.Policy):
    def decide(self, req):
        s = req.want_singleton_reported_state
        m = req.want_multi_wec_reported_state
        if not s and not m:
            return Decision_None_()
        if s and not m:
            return Decision_Singleton(sorted(set(req.singleton_wecs)))
        wecs = sorted(set(req.multi_wec_wecs) | (set(req.singleton_wecs) if s else set()))
        return Decision_Singleton(wecs) if len(wecs) == 1 else Decision_MultiWec(wecs)

    def aggregate(self, object, reported):
        statuses = []
        for r in reported:
            status = json.loads(r.status)
            if not isinstance(status, dict):
                raise Err(f"WEC {r.wec} reported a status that is not a JSON object")
            statuses.append(status)
        out = {}
        for key in sorted({k for s in statuses for k in s}):
            values = [s.get(key) for s in statuses]
            present = [v for v in values if v is not None]
            if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
                out[key] = min(v if v is not None else 0 for v in values)
            elif all(v == values[0] for v in values):
                out[key] = values[0]
        return json.dumps(out)
