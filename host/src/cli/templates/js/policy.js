// The {{name}} policy: KubeStellar's routing table; numbers aggregate by
// their minimum, other values stay where every WEC agrees.
//
// Built with componentize-qjs { sync: true, stubWasi: true }: the component
// imports nothing, so Date.now() traps and Math.random() is fixed at build time.

function decide(req) {
  const s = req.wantSingletonReportedState;
  const m = req.wantMultiWecReportedState;
  const set = (l) => [...new Set(l)].sort();
  if (!s && !m) return { tag: "none" };
  if (s && !m) return { tag: "singleton", val: set(req.singletonWecs) };
  const wecs = set([...(s ? req.singletonWecs : []), ...req.multiWecWecs]);
  return wecs.length === 1 ? { tag: "singleton", val: wecs } : { tag: "multi-wec", val: wecs };
}

function aggregate(object, reported) {
  const statuses = reported.map((r) => {
    const status = JSON.parse(r.status);
    if (status === null || typeof status !== "object" || Array.isArray(status)) {
      throw `WEC ${r.wec} reported a status that is not a JSON object`;
    }
    return status;
  });
  const out = {};
  for (const key of [...new Set(statuses.flatMap((s) => Object.keys(s)))].sort()) {
    const values = statuses.map((s) => s[key]);
    if (values.every((v) => v === undefined || typeof v === "number")) {
      out[key] = Math.min(...values.map((v) => (v === undefined ? 0 : v)));
    } else if (values.every((v) => JSON.stringify(v) === JSON.stringify(values[0]))) {
      out[key] = values[0];
    }
  }
  return JSON.stringify(out);
}

export const policy = { decide, aggregate };
