// annotation-wecs: the object says which WECs' status counts.
//
// An object sent to several WECs (a canary, a standby region, a WEC being
// drained) often has WECs whose status must not show in the WDS. The
// annotation
//
//   status-router.kubestellar.io/status-wecs: "wec1, wec2"
//
// lists the WECs whose status counts. The policy routes with KubeStellar's
// table (the WECs the flags qualify), then keeps only the listed ones:
// one WEC left gives a singleton copy, several a multi-WEC aggregate, none
// gives no status. A listed WEC that does not qualify is not added: a
// Binding, not an annotation, decides where an object runs. Without the
// annotation the policy is KubeStellar's table, exactly.
//
// Aggregation: numbers take the minimum (a field a WEC omits counts as 0,
// as the API server omits zero counters), booleans AND, strings and other
// values stay where every WEC agrees, objects merge key by key. A report
// that is not a JSON object is refused, naming the WEC.
//
// Built with componentize-qjs { sync: true, stubWasi: true }
// (`cargo xtask build-policies`): the component imports nothing.

export const STATUS_WECS = "status-router.kubestellar.io/status-wecs";

function annotation(object, key) {
  for (const [k, v] of object.annotations) {
    if (k === key) return v;
  }
  return null;
}

function sortedSet(list) {
  return [...new Set(list)].sort();
}

// KubeStellar's table: which WECs count, and whether the count decides.
function route(req) {
  const s = req.wantSingletonReportedState;
  const m = req.wantMultiWecReportedState;
  if (!s && !m) return { kind: "none", wecs: [] };
  if (s && !m) return { kind: "singleton", wecs: sortedSet(req.singletonWecs) };
  const wecs = sortedSet([...(s ? req.singletonWecs : []), ...req.multiWecWecs]);
  return { kind: "by-count", wecs };
}

function decision(kind, wecs) {
  if (kind === "none") return { tag: "none" };
  if (kind === "singleton" || wecs.length === 1) return { tag: "singleton", val: wecs };
  return { tag: "multi-wec", val: wecs };
}

function decide(req) {
  const routed = route(req);
  const listed = annotation(req.object, STATUS_WECS);
  if (listed === null || routed.kind === "none") return decision(routed.kind, routed.wecs);
  const wanted = new Set(listed.split(",").map((w) => w.trim()).filter((w) => w !== ""));
  const wecs = routed.wecs.filter((w) => wanted.has(w));
  if (wecs.length === 0) return { tag: "none" };
  return decision(wecs.length === 1 ? "singleton" : "by-count", wecs);
}

function isObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

function combine(values) {
  const present = values.filter((v) => v !== undefined);
  if (present.length > 0 && present.every((v) => typeof v === "number")) {
    return Math.min(...values.map((v) => (v === undefined ? 0 : v)));
  }
  if (present.length < values.length) return undefined;
  if (values.every((v) => typeof v === "boolean")) return values.every((v) => v);
  if (values.every(isObject)) return merge(values);
  return values.every((v) => same(v, values[0])) ? values[0] : undefined;
}

function merge(statuses) {
  const keys = [...new Set(statuses.flatMap((s) => Object.keys(s)))].sort();
  const out = {};
  for (const key of keys) {
    const value = combine(statuses.map((s) => s[key]));
    if (value !== undefined) out[key] = value;
  }
  return out;
}

function aggregate(object, reported) {
  const statuses = [...reported]
    .sort((a, b) => (a.wec < b.wec ? -1 : a.wec > b.wec ? 1 : 0))
    .map((r) => {
      let status;
      try {
        status = JSON.parse(r.status);
      } catch (e) {
        throw `WEC ${r.wec} reported a status that is not JSON: ${e}`;
      }
      if (!isObject(status)) throw `WEC ${r.wec} reported a status that is not a JSON object`;
      return status;
    });
  return JSON.stringify(merge(statuses));
}

export const policy = { decide, aggregate };
